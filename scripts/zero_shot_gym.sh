#!/usr/bin/env bash
# Zero-shot transfer on the embedded skill gym, MoE against dense, as in the paper:
#   1. dense multi-task model on the 29 train tasks (configs/dense.pbtxt);
#   2. text_emb vectors of all 42 tasks, embedded by that dense model;
#   3. routed MoE on the train tasks, routing from those fixed vectors (configs/zero_shot_moe.pbtxt);
#   4. both models predict the 9 held-out test tasks' few-shot dev/test files without training,
#      the MoE routing each task from its own vector (tools/evaluate_tasks);
#   5. aggregate_results prints the zero-shot ARG table of MoE over dense.
# Usage: bash scripts/zero_shot_gym.sh [output_dir (default runs/zero_shot)]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/zero_shot}"
bazel build //tools:trainer //tools:compute_task_embeddings //tools:evaluate_tasks \
  //tools:aggregate_results
bin=bazel-bin/tools

"$bin/trainer" --config=configs/dense.pbtxt --set=output_dir="$out/dense"
"$bin/compute_task_embeddings" --method=text_emb --model="$out/dense/best" --data_dir=gym_data \
  --split=gym_data/split.json --split_list=all --max_input_length=48 --max_output_length=24 \
  --output_dir="$out/text_emb"
"$bin/trainer" --config=configs/zero_shot_moe.pbtxt --set=output_dir="$out/moe" \
  --set=task_vectors.dir="$out/text_emb"
"$bin/evaluate_tasks" --model="$out/moe/best" --split_list=test --task_vectors="$out/text_emb" \
  --output_dir="$out/moe_zero_shot"
"$bin/evaluate_tasks" --model="$out/dense/best" --split_list=test \
  --output_dir="$out/dense_zero_shot"
"$bin/aggregate_results" --results="$out/moe_zero_shot" --baseline="$out/dense_zero_shot"
