#!/usr/bin/env bash
# The paper's experiment on the synthetic skill gym, as a protocol whose numbers can be trusted
# (docs/experiments.md): every arm starts from one denoising-pretrained model and trains the same
# number of upstream steps, every arm runs over several seeds (chained and paired by seed), and
# comparisons come with bootstrap intervals and permutation p-values.
#
#   1. make_gym: the gym (opaque task ids) into $OUT/gym;
#   2. pre-training: make_denoising_data (text infilling of the train tasks' unlabeled inputs),
#      a dense model trained on it (configs/pipeline/pretrain.pbtxt), exported as a Hugging
#      Face directory $OUT/pretrained that every arm starts from;
#   3. task vectors of every task: text_emb of the pretrained model (it never saw a label);
#   4. per seed s, UPSTREAM_STEPS steps each: dense (one expert), learned routing (stage one,
#      frozen task vectors), average routing, task-level random routing, and the untrained
#      router (0 steps: the null of the route analysis);
#   5. per seed s: two-stage (stage one's router, experts re-initialised from the pretrained
#      model, annealed routing for UPSTREAM_STEPS steps) and the shuffled-routes control (the
#      same, every task routed by another task's learned route);
#   6. per arm and seed: the routes of every task (held-out ones too) through each learned
#      router and the untrained one (tools/route_tasks), few-shot fine-tuning of the held-out
#      test tasks (the first PREFIXES few-shot samples, the LEARNING_RATES grid chosen on dev)
#      and zero-shot evaluation of every arm that can route an unseen task; the dense arm is
#      also fine-tuned on the held-out dev tasks, the figure that sizes (K_*, FT_STEPS) may be
#      tuned against;
#   7. tables: upstream test means, aggregate_results comparisons (Δ points, ARG, ratio of
#      means with 95% hierarchical-bootstrap intervals, sign-flip p-values, Holm), and the
#      route–skill agreement (analyze_routes) per routed arm with its nulls; all into
#      $OUT/report.md (also printed), and with forest plots into $OUT/report.html
#      (tools/report: one self-contained page to open in a browser).
#
#   scripts/gym_pipeline.sh [--quick] [--jobs=N] [--beyond] [--calibrate]
#
# --calibrate: only what calibration is judged on (docs/experiments.md#calibration-targets): the
# gym, pre-training, the dense arm and its few-shot fine-tuning on the held-out dev tasks (never
# the test tasks), then the calibration tables; for tuning sizes before a full run.
# --quick: 2 seeds, small budgets and a 2-point learning-rate grid (a smoke test of the whole
# protocol; its numbers mean little).
# --jobs: independent runs in parallel, one thread each (default: the number of cores).
# --beyond: two more arms beyond the paper (docs/beyond.md): `merged`, two-stage with merged expert
# parameters (model.expert_execution: MERGE_PARAMETERS), and `polytropon`, a learned task x expert
# allocation from the task vectors.
# Every knob is an environment variable (see the defaults below). Rerunning skips every run
# that finished (each leaves a .done marker); delete $OUT to start over. BIN=<dir> runs the tools
# of <dir> instead of building them.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
BEYOND=0
CALIBRATE=0
JOBS=$(nproc)
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    --jobs=*) JOBS=${arg#--jobs=} ;;
    --beyond) BEYOND=1 ;;
    --calibrate) CALIBRATE=1 ;;
    *) echo "usage: $0 [--quick] [--jobs=N] [--beyond] [--calibrate]" >&2; exit 2 ;;
  esac
done

if (( QUICK )); then
  : "${OUT:=runs/gym_pipeline_quick}" "${SEEDS:=1 2}" "${PRETRAIN_STEPS:=300}"
  : "${UPSTREAM_STEPS:=200}" "${FT_STEPS:=12}" "${LEARNING_RATES:=1e-3,3e-3}" "${PREFIXES:=1}"
  : "${BOOTSTRAP_DRAWS:=2000}" "${PERMUTATIONS:=999}"
fi
OUT=${OUT:-runs/gym_pipeline}
SEEDS=${SEEDS:-1 2 3 4 5}
# 64 examples per train task and 4,000 upstream steps: the sizes that calibration was tuned to
# (docs/experiments.md, "What it would take"); with more data or fewer steps the dense dev curve
# still rises over the last fifth of the steps.
TRAIN_EXAMPLES=${TRAIN_EXAMPLES:-64}
PRETRAIN_STEPS=${PRETRAIN_STEPS:-2000}
UPSTREAM_STEPS=${UPSTREAM_STEPS:-4000}
UPSTREAM_BSZ=${UPSTREAM_BSZ:-32}
UPSTREAM_LR=${UPSTREAM_LR:-1e-3}
FT_STEPS=${FT_STEPS:-40}
PREFIXES=${PREFIXES:-1}
LEARNING_RATES=${LEARNING_RATES:-3e-4,1e-3,3e-3}
FT_BSZ=${FT_BSZ:-8}
K_CLASSIFICATION=${K_CLASSIFICATION:-16}
K_TEXT=${K_TEXT:-32}
BOOTSTRAP_DRAWS=${BOOTSTRAP_DRAWS:-10000}
PERMUTATIONS=${PERMUTATIONS:-9999}
# Upstream runs are evaluated after every fifth of their steps, so that the dense curve's gain over
# the last 20% (a calibration target) is measured over exactly those steps.
EVAL_PERIOD=$(( UPSTREAM_STEPS / 5 > 0 ? UPSTREAM_STEPS / 5 : 1 ))
FT_EVAL_PERIOD=$(( FT_STEPS / 3 > 0 ? FT_STEPS / 3 : 1 ))

if [[ -z "${BIN:-}" ]]; then
  bazel build -c opt //tools:make_gym //tools:make_denoising_data //tools:trainer \
    //tools:extract_task_model //tools:compute_task_embeddings //tools:build_checkpoint \
    //tools:finetune_tasks //tools:evaluate_tasks //tools:aggregate_results //tools:analyze_routes \
    //tools:route_tasks //tools:report
  BIN=$PWD/bazel-bin/tools
fi
GYM=$OUT/gym
PRE=$OUT/pretrained
VECTORS=$OUT/task_vectors
mkdir -p "$OUT/logs"
TIMINGS=$OUT/timings.tsv
export BIN GYM PRE VECTORS OUT TIMINGS UPSTREAM_STEPS UPSTREAM_BSZ UPSTREAM_LR EVAL_PERIOD FT_STEPS \
  FT_EVAL_PERIOD PREFIXES LEARNING_RATES FT_BSZ

# Runs "$@" unless $1's .done marker exists; the log goes to $OUT/logs/<name>.log and the wall
# time to $TIMINGS. $1 = the run's directory (its name is the log's).
once() {
  local dir=$1
  shift
  local name=${dir#"$OUT"/}
  name=${name//\//_}
  if [[ -e "$dir/.done" ]]; then return 0; fi
  local start=$SECONDS
  if ! "$@" >"$OUT/logs/$name.log" 2>&1; then
    echo "FAILED: $name (log: $OUT/logs/$name.log)" >&2
    tail -5 "$OUT/logs/$name.log" >&2
    return 1
  fi
  mkdir -p "$dir"
  touch "$dir/.done"
  printf '%s\t%d\n' "$name" $((SECONDS - start)) >>"$TIMINGS"
}

# Upstream multi-task training from the pretrained model: $1 = arm, $2 = seed, then overrides.
upstream() {
  local arm=$1 seed=$2
  shift 2
  once "$OUT/$arm/$seed" "$BIN/trainer" --config=configs/default.pbtxt \
    --set=output_dir="$OUT/$arm/$seed" --set=model.hf_dir="$PRE" --set=data.data_dir="$GYM" \
    --set=training.total_steps="$UPSTREAM_STEPS" --set=training.train_batch_size="$UPSTREAM_BSZ" \
    --set=optimizer.lr="$UPSTREAM_LR" --set=training.seed="$seed" --set=training.threads=1 \
    --set=evaluation.eval_period="$EVAL_PERIOD" --set=evaluation.do_predict=true "$@"
}

# Stage two from stage one's router: $1 = arm (two_stage, shuffled or merged), $2 = seed.
stage_two() {
  local arm=$1 seed=$2 shuffle=() execution=()
  if [[ $arm == shuffled ]]; then shuffle=(--shuffle_routes_seed="$seed"); fi
  if [[ $arm == merged ]]; then execution=(--set=model.expert_execution=MERGE_PARAMETERS); fi
  once "$OUT/$arm/$seed/init" "$BIN/build_checkpoint" --stage_one="$OUT/stage_one/$seed/best" \
    --model="$PRE" --output_dir="$OUT/$arm/$seed/init" --seed="$seed" --overwrite "${shuffle[@]}"
  local rate
  rate=$(awk -v s="$UPSTREAM_STEPS" 'BEGIN { printf "%.6g", log(300) / (0.95 * s) }')
  once "$OUT/$arm/$seed/run" "$BIN/trainer" --config=configs/stage_two.pbtxt \
    --set=output_dir="$OUT/$arm/$seed/run" --set=model.checkpoint="$OUT/$arm/$seed/init" \
    --set=data.data_dir="$GYM" --set=training.total_steps="$UPSTREAM_STEPS" \
    --set=training.train_batch_size="$UPSTREAM_BSZ" --set=optimizer.lr="$UPSTREAM_LR" \
    --set=training.seed="$seed" --set=training.threads=1 \
    --set=evaluation.eval_period="$EVAL_PERIOD" \
    --set=evaluation.no_eval_until=0 --set=evaluation.do_predict=true "${execution[@]}" \
    "--set=routing.params={[type.googleapis.com/taskmoe.AnnealedRoutingParams] { router { architecture: LINEAR_LAYER_SPECIFIC hidden_dim: 64 } initial_tau: 300.0 minimum_tau: 1.0 anneal_rate: $rate }}"
}

# The trained model of an arm and seed.
model_of() {
  case $1 in
    two_stage | shuffled | merged) echo "$OUT/$1/$2/run/best" ;;
    untrained) echo "$OUT/$1/$2/last" ;;  # saved by its 0-step run (--save_initial_model)
    *) echo "$OUT/$1/$2/best" ;;
  esac
}

# Few-shot fine-tuning of held-out tasks from an arm's model: $1 = arm, $2 = seed, $3 = the
# split (test, or dev for calibration) and the results go to $OUT/finetune (test) or
# $OUT/finetune_dev.
finetune() {
  local arm=$1 seed=$2 split=${3:-test} routing=() out=$OUT/finetune
  if [[ $split == dev ]]; then out=$OUT/finetune_dev; fi
  case $arm in
    stage_one | two_stage | shuffled | merged | polytropon) routing=(--task_vectors="$VECTORS") ;;
    task_random) routing=(--routing=task_random) ;;
  esac
  once "$out/$arm/$seed" "$BIN/finetune_tasks" --config=configs/pipeline/finetune.pbtxt \
    --model="$(model_of "$arm" "$seed")" --set=data.data_dir="$GYM" \
    --set=training.total_steps="$FT_STEPS" --set=evaluation.eval_period="$FT_EVAL_PERIOD" \
    --set=training.threads=1 --set=training.seed="$seed" --split_list="$split" \
    --max_prefixes="$PREFIXES" --learning_rates="$LEARNING_RATES" --batch_sizes="$FT_BSZ" \
    --output_dir="$out/$arm/$seed" "${routing[@]}"
}

# Zero-shot evaluation of the held-out test tasks: $1 = arm, $2 = seed.
zero_shot() {
  local arm=$1 seed=$2 routing=()
  case $arm in
    stage_one | two_stage | shuffled | merged | polytropon) routing=(--task_vectors="$VECTORS") ;;
  esac
  once "$OUT/zero_shot/$arm/$seed" "$BIN/evaluate_tasks" --model="$(model_of "$arm" "$seed")" \
    --set=data.data_dir="$GYM" --set=training.threads=1 --split_list=test \
    --max_prefixes="$PREFIXES" --output_dir="$OUT/zero_shot/$arm/$seed" "${routing[@]}"
}

# The routes of all tasks, held-out ones included, through an arm's router: $1 = arm, $2 = seed.
all_routes() {
  once "$OUT/all_routes/$1/$2" "$BIN/route_tasks" --model="$(model_of "$1" "$2")" \
    --task_vectors="$VECTORS" --output_dir="$OUT/all_routes/$1/$2" --overwrite
}

# One job of the parallel phases: $1 = kind, $2 = arm, $3 = seed.
job() {
  case $1 in
    upstream)
      case $2 in
        dense) upstream dense "$3" --set=model.experts=1 --set=routing.plugin=average \
                 "--set=routing.params={[type.googleapis.com/taskmoe.AverageRoutingParams] {}}" ;;
        stage_one) upstream stage_one "$3" --set=task_vectors.dir="$VECTORS" \
                     --set=task_vectors.trainable=false ;;
        average) upstream average "$3" --set=routing.plugin=average \
                   "--set=routing.params={[type.googleapis.com/taskmoe.AverageRoutingParams] {}}" ;;
        task_random) upstream task_random "$3" --set=routing.plugin=task_random \
                       "--set=routing.params={[type.googleapis.com/taskmoe.TaskRandomRoutingParams] { top_n: 1 }}" ;;
        untrained) upstream untrained "$3" --set=task_vectors.dir="$VECTORS" \
                     --set=task_vectors.trainable=false --set=training.total_steps=0 \
                     --save_initial_model ;;
        polytropon) upstream polytropon "$3" --set=task_vectors.dir="$VECTORS" \
                      --set=task_vectors.trainable=false --set=routing.plugin=polytropon \
                      "--set=routing.params={[type.googleapis.com/taskmoe.PolytroponRoutingParams] { router { architecture: LINEAR_LAYER_SPECIFIC hidden_dim: 64 } temperature: 1.0 init_probability: 0.5 }}" ;;
      esac ;;
    stage_two) stage_two "$2" "$3" ;;
    finetune) finetune "$2" "$3" ;;
    finetune_dev) finetune "$2" "$3" dev ;;
    zero_shot) zero_shot "$2" "$3" ;;
    all_routes) all_routes "$2" "$3" ;;
  esac
}
export -f once upstream stage_two model_of finetune zero_shot all_routes job

# Runs the "kind arm seed" lines of stdin, $JOBS at a time; fails if any failed.
parallel() {
  xargs -r -P "$JOBS" -L 1 bash -c 'job "$@"' _
}

phase() {
  local name=$1 start=$SECONDS
  shift
  echo "== $name"
  "$@"
  printf 'phase: %s\t%d\n' "$name" $((SECONDS - start)) >>"$TIMINGS"
}

ARMS="dense stage_one average task_random two_stage shuffled"
UPSTREAM_ARMS="dense stage_one average task_random untrained"
STAGE_TWO_ARMS="two_stage shuffled"
if (( BEYOND )); then
  ARMS+=" merged polytropon"
  UPSTREAM_ARMS+=" polytropon"
  STAGE_TWO_ARMS+=" merged"
fi
# Calibration needs only the dense arm (it overrides --beyond, whose stage-two arm needs stage one).
if (( CALIBRATE )); then
  ARMS="" UPSTREAM_ARMS="dense" STAGE_TWO_ARMS=""
fi

prepare() {
  once "$GYM" "$BIN/make_gym" --output_dir="$GYM" --train_examples="$TRAIN_EXAMPLES" \
    --k_classification="$K_CLASSIFICATION" --k_text_to_text="$K_TEXT"
  once "$OUT/pretrain_data" "$BIN/make_denoising_data" --data_dir="$GYM" \
    --output_dir="$OUT/pretrain_data"
  # One thread, as every other run (runs go side by side, one per core; a run reproduces for a
  # given seed and number of threads: docs/training.md#the-training-loop).
  once "$OUT/pretrain" "$BIN/trainer" --config=configs/pipeline/pretrain.pbtxt \
    --set=output_dir="$OUT/pretrain" --set=data.data_dir="$OUT/pretrain_data" \
    --set=training.total_steps="$PRETRAIN_STEPS" --set=training.threads=1 \
    --set=evaluation.eval_period="$(( PRETRAIN_STEPS / 4 > 0 ? PRETRAIN_STEPS / 4 : 1 ))"
  # The last checkpoint: exact-match reconstruction of random word lists is a poor selector.
  once "$PRE" "$BIN/extract_task_model" --model="$OUT/pretrain/last" --task=denoise \
    --output_dir="$PRE" --overwrite
  once "$VECTORS" "$BIN/compute_task_embeddings" --method=text_emb --model="$PRE" \
    --data_dir="$GYM" --split="$GYM/split.json" --split_list=all --max_input_length=48 \
    --max_output_length=24 --output_dir="$VECTORS"
}

phase "gym, pre-training, task vectors" prepare
phase "upstream arms" parallel < <(for seed in $SEEDS; do
  for arm in $UPSTREAM_ARMS; do echo "upstream $arm $seed"; done
done)
phase "two-stage and shuffled routes" parallel < <(for seed in $SEEDS; do
  for arm in $STAGE_TWO_ARMS; do echo "stage_two $arm $seed"; done
done)
phase "few-shot fine-tuning and zero-shot evaluation" parallel < <(for seed in $SEEDS; do
  echo "finetune_dev dense $seed"
  if [[ " $UPSTREAM_ARMS " == *" untrained "* ]]; then echo "all_routes untrained $seed"; fi
  for arm in $ARMS; do
    echo "finetune $arm $seed"
    if [[ $arm != task_random ]]; then echo "zero_shot $arm $seed"; fi
    case $arm in stage_one | two_stage | merged | polytropon) echo "all_routes $arm $seed" ;; esac
  done
done)
phase "tables" scripts/gym_report.sh "$OUT" "$BOOTSTRAP_DRAWS" "$PERMUTATIONS" "$SEEDS"
cat "$OUT/report.md"
echo "The report with plots: $OUT/report.html"
