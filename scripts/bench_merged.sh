#!/usr/bin/env bash
# Training step of merged expert parameters (model.expert_execution: MERGE_PARAMETERS) against
# mixed expert outputs (the paper's), soft routes, with tools/bench: small and bart-base presets,
# E = 3 and 8, in alternating rounds; prints a markdown table of the medians (docs/performance.md).
#
#   scripts/bench_merged.sh [ROUNDS]        # default 3
#
# Merged execution runs one layer per group of examples with equal routes, so its cost depends on
# how many tasks a batch holds: each example draws its task from --n_tasks tasks (16: a batch of 8
# holds about 6 tasks; 1: one task per batch). Mixing does not depend on it. Environment: PRESETS,
# EXPERTS, THREADS, BATCH, SRC_LEN, TGT_LEN, STEPS; BIN=<dir> runs the bench of <dir> instead of
# building it. The allocator tunables of docs/performance.md are exported for every run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
PRESETS=${PRESETS:-small bart-base}
EXPERTS=${EXPERTS:-3 8}
THREADS=${THREADS:-2}
BATCH=${BATCH:-8}
SRC_LEN=${SRC_LEN:-64}
TGT_LEN=${TGT_LEN:-16}
STEPS=${STEPS:-5}
if [[ -z "${BIN:-}" ]]; then
  bazel build -c opt //tools:bench
  BIN=$PWD/bazel-bin/tools
fi
export GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184
LINES=$(mktemp)
trap 'rm -f "$LINES"' EXIT

for round in $(seq "$ROUNDS"); do
  for preset in $PRESETS; do
    for experts in $EXPERTS; do
      for setting in "mix 16" "merge 16" "merge 1"; do
        set -- $setting
        "$BIN/bench" --preset="$preset" --experts="$experts" --batch="$BATCH" --src_len="$SRC_LEN" \
          --tgt_len="$TGT_LEN" --steps="$STEPS" --warmup=1 --threads="$THREADS" --mode=train \
          --routing=soft --expert_execution="$1" --n_tasks="$2" 2>/dev/null >>"$LINES"
        echo "round $round: $preset E=$experts $1 (tasks $2): $(tail -1 "$LINES" | grep -o '"sec_per_step":[0-9.e-]*')" >&2
      done
    done
  done
done

python3 - "$LINES" <<'EOF'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    key = (r["preset"], r["experts"], r["expert_execution"], r["n_tasks"])
    runs.setdefault(key, []).append(r)
print("| preset | E | execution | tasks drawn from | s/step (rounds) | median s/step | vs mix | peak RSS MB |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for (preset, experts, execution, tasks), rs in runs.items():
    times = [r["sec_per_step"] for r in rs]
    median = statistics.median(times)
    mix = statistics.median(r["sec_per_step"] for r in runs[(preset, experts, "mix", 16)])
    rss = max(r["peak_rss_mb"] for r in rs)
    print(f"| {preset} | {experts} | {execution} | {tasks} | {', '.join(f'{t:.3f}' for t in times)} "
          f"| {median:.3f} | {mix / median:.2f}x | {rss:.0f} |")
EOF
