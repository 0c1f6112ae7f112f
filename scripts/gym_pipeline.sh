#!/usr/bin/env bash
# The paper's experiment in miniature on the synthetic skill gym, with one command:
#
#   1. dense multi-task baseline (experts 1) on the gym's train tasks;
#   2. task vectors of every task (train and held-out): text embeddings from the dense model;
#   3. stage one: learned routing MoE (frozen task vectors from 2, as the paper's "freeze" runs);
#   4. build_checkpoint: stage one's router + task vectors with experts copied from the dense model;
#   5. stage two: annealed routing from that checkpoint (configs/stage_two.pbtxt);
#   6. average-routing multi-task MoE (the "average vs learned" comparison);
#   7. few-shot fine-tuning of the held-out tasks (split.json "test") from the dense model, stage
#      one, stage two (each new task routed by its vector through the learned router) and the
#      average-routing model (average routes);
#   8. aggregate_results: per-task tables and the ARG tables (MoE vs dense, learned vs average).
#
#   scripts/gym_pipeline.sh            # the miniature experiment (about 12 minutes on 2 cores)
#   scripts/gym_pipeline.sh --quick    # a smoke run with tiny step counts (scores stay near 0,
#                                      # so tasks with a baseline of 0 drop out of the ARG)
#
# Scaled down to minutes on 2 CPU cores: the default gym model of configs/default.pbtxt,
# UPSTREAM_STEPS multi-task steps, FT_STEPS fine-tuning steps, the first PREFIXES few-shot seeds
# of each held-out task (default all 5, as the original), and a single grid point LR x BSZ (the
# original: 1e-5,2e-5,5e-5 x 2,4,8). Every knob is an environment variable.
# Rerunning skips finished stages (each writes its output directory once) and finished
# fine-tuning prefixes; delete $OUT to start over.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
if [[ "${1:-}" == "--quick" ]]; then QUICK=1; fi

OUT=${OUT:-runs/pipeline}
DATA=${DATA:-gym_data}
if (( QUICK )); then
  OUT=${OUT%/}_quick
  : "${UPSTREAM_STEPS:=40}" "${EVAL_PERIOD:=20}" "${FT_STEPS:=6}" "${FT_EVAL_PERIOD:=3}"
  : "${PREFIXES:=1}"
fi
UPSTREAM_STEPS=${UPSTREAM_STEPS:-1000}
EVAL_PERIOD=${EVAL_PERIOD:-250}
FT_STEPS=${FT_STEPS:-60}
FT_EVAL_PERIOD=${FT_EVAL_PERIOD:-20}
PREFIXES=${PREFIXES:-5}
LR=${LR:-5e-4}
BSZ=${BSZ:-8}

bazel build -c opt //tools:trainer //tools:compute_task_embeddings //tools:build_checkpoint \
  //tools:finetune_tasks //tools:aggregate_results
BIN=bazel-bin/tools
mkdir -p "$OUT"

declare -a STAGES=()
# Runs "$@" as stage $1 unless its output $2 exists (empty: always run); records the wall time.
stage() {
  local name=$1 output=$2
  shift 2
  if [[ -n "$output" && -e "$output" ]]; then
    echo "== $name: done before ($output)"
    STAGES+=("$name|skipped (done before)")
    return
  fi
  echo "== $name"
  local start=$SECONDS
  "$@"
  STAGES+=("$name|$((SECONDS - start)) s")
}

# Multi-task training on the train tasks; $1 = run name, then config overrides.
train() {
  local name=$1
  shift
  "$BIN/trainer" --config=configs/default.pbtxt --set=output_dir="$OUT/$name" \
    --set=data.data_dir="$DATA" --set=training.total_steps="$UPSTREAM_STEPS" \
    --set=evaluation.eval_period="$EVAL_PERIOD" "$@"
}

finetune() {
  local name=$1
  shift
  "$BIN/finetune_tasks" --config=configs/pipeline/finetune.pbtxt --set=data.data_dir="$DATA" \
    --set=training.total_steps="$FT_STEPS" --set=evaluation.eval_period="$FT_EVAL_PERIOD" \
    --split_list=test --max_prefixes="$PREFIXES" --learning_rates="$LR" --batch_sizes="$BSZ" \
    --output_dir="$OUT/finetune/$name" "$@"
}

stage "dense multi-task baseline" "$OUT/dense/predict" \
  train dense --set=model.experts=1 --set=routing.plugin=average "--set=routing.params={[type.googleapis.com/taskmoe.AverageRoutingParams] {}}"
stage "task vectors (text_emb, all tasks)" "$OUT/task_vectors/task_vecs.npy" \
  "$BIN/compute_task_embeddings" --method=text_emb --model="$OUT/dense/best" \
  --data_dir="$DATA" --split="$DATA/split.json" --split_list=all --max_input_length=48 \
  --max_output_length=24 --output_dir="$OUT/task_vectors"
stage "stage one (learned routing)" "$OUT/stage_one/predict" \
  train stage_one --set=task_vectors.dir="$OUT/task_vectors" --set=task_vectors.trainable=false
stage "build_checkpoint" "$OUT/stage_two_init" \
  "$BIN/build_checkpoint" --stage_one="$OUT/stage_one/best" --model="$OUT/dense/best" \
  --output_dir="$OUT/stage_two_init"
stage "stage two (annealed routing)" "$OUT/stage_two/predict" \
  "$BIN/trainer" --config=configs/stage_two.pbtxt --set=output_dir="$OUT/stage_two" \
  --set=model.checkpoint="$OUT/stage_two_init" --set=data.data_dir="$DATA" \
  --set=training.total_steps="$UPSTREAM_STEPS" --set=evaluation.eval_period="$EVAL_PERIOD" \
  --set=evaluation.no_eval_until=0 \
  "--set=routing.params={[type.googleapis.com/taskmoe.AnnealedRoutingParams] { router { architecture: LINEAR_LAYER_SPECIFIC hidden_dim: 64 } initial_tau: 300.0 minimum_tau: 1.0 anneal_rate: $(awk -v s="$UPSTREAM_STEPS" 'BEGIN { printf "%.6g", log(300) / (0.95 * s) }') }}"
stage "average-routing multi-task MoE" "$OUT/average/predict" \
  train average --set=routing.plugin=average "--set=routing.params={[type.googleapis.com/taskmoe.AverageRoutingParams] {}}"

# Fine-tuning is resumable per prefix, so it always runs (finished prefixes are skipped).
stage "fine-tune held-out tasks from dense" "" \
  finetune dense --model="$OUT/dense/best"
stage "fine-tune held-out tasks from stage one" "" \
  finetune stage_one --model="$OUT/stage_one/best" --task_vectors="$OUT/task_vectors"
stage "fine-tune held-out tasks from stage two" "" \
  finetune stage_two --model="$OUT/stage_two/best" --task_vectors="$OUT/task_vectors"
stage "fine-tune held-out tasks from average routing" "" \
  finetune average --model="$OUT/average/best"

FT=$OUT/finetune
# ARG of $1 over the baseline $2 (both under $FT). A baseline task scoring 0 has no relative
# gain and is left out (listed); if every task scores 0 there is no ARG and the others still print.
compare() {
  echo
  echo "## $3"
  "$BIN/aggregate_results" --results="$FT/$1" --baseline="$FT/$2" \
    --summary_csv="$FT/$1/summary.csv" --arg_csv="$FT/$1/arg_vs_$2.csv" ||
    echo "(no ARG for $1 vs $2: see the error above)"
}
compare stage_two dense "Two-stage MoE (stage two) vs dense"
compare stage_one dense "Learned routing MoE (stage one) vs dense"
compare stage_two average "Learned routing (stage two) vs average routing"
compare average dense "Average routing vs dense"

echo
echo "## Stage timings (upstream $UPSTREAM_STEPS steps, fine-tuning $FT_STEPS steps, $PREFIXES prefixes per task, lr $LR, bsz $BSZ)"
echo "| stage | wall time |"
echo "| --- | --- |"
for entry in "${STAGES[@]}"; do
  echo "| ${entry%%|*} | ${entry#*|} |"
done
