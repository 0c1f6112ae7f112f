#!/bin/bash
# The speed and memory comparison of TaskMoE's tools/bench with the eager PyTorch reference
# (../shared/bench: ref_moe.py, ref_generate.py, gemm_peak.py, moe_flops.py), side by side, as one
# markdown table on stdout (progress on stderr):
#   - the fp32 GEMM peak (gemm_peak.py);
#   - training steps, small preset, E=3, batch 6, source 48, target 24: soft routes (batched
#     experts, the default, and one job per expert) and hard routes (--route_gradient=all and
#     selected);
#   - training steps, bart-base, E=3, batch 8, source 64, target 16, soft: s/step, % of the GEMM
#     peak (moe_flops.py; also with one job per expert, and with malloc instead of the tensor
#     memory cache), peak resident memory (/usr/bin/time -v) and the largest batch that fits in
#     MEM_LIMIT_GB, estimated from a line through the peak RSS of batches 8 and 32 (one run each of
#     one warm-up and one timed step, so that the optimizer state exists);
#   - generation with key/value caches, bart-base, E=3, batch 8, source 64, 64 new tokens: greedy on
#     both sides, beam search (4 beams) on TaskMoE only (the reference has none).
#   - what explains the bart-base step's distance from the peak: its phases (bench's stderr) and its
#     GEMMs alone at their own shapes (scripts/gemm_shapes.py, run once after the rounds).
# Both sides run alternately in each of ROUNDS rounds with the same --threads and allocator tunables;
# the table shows medians over the rounds. The BLAS kernels are the environment's (OPENBLAS_CORETYPE
# is never changed here); the header says which.
#
#   scripts/perf_table.sh > perf.md          # full run
#   QUICK=1 scripts/perf_table.sh            # smoke test: tiny preset, 1 round, batch 2, few steps
#
# Environment: BIN (directory of a prebuilt bench; unset: `bazel build -c opt //tools:bench` and
# bazel-bin/tools), REF (default ../shared/bench from the repository root), THREADS (2), ROUNDS (3),
# STEPS_SMALL (10 timed steps, 2 warm-up), STEPS_BASE (3 timed, 2 warm-up), GEN_REPEATS (3 timed, 1
# warm-up), MEM_LIMIT_GB (24), OUT (directory for the raw JSON lines and logs; default a new
# temporary one).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
REF=${REF:-../shared/bench}
THREADS=${THREADS:-2}
QUICK=${QUICK:-0}
MEM_LIMIT_GB=${MEM_LIMIT_GB:-24}
OUT=${OUT:-$(mktemp -d /tmp/perf_table.XXXXXX)}
mkdir -p "$OUT"
export GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184

if [[ $QUICK == 1 ]]; then
  ROUNDS=${ROUNDS:-1}; SMALL=tiny; BASE=tiny; B_SMALL=2; B_BASE=2; MEM_B1=2; MEM_B2=4
  SRC_S=16 TGT_S=8 SRC_B=16 TGT_B=8 NEW=8
  STEPS_SMALL=${STEPS_SMALL:-2}; WARM_SMALL=1; STEPS_BASE=${STEPS_BASE:-1}; WARM_BASE=1; GEN_REPEATS=${GEN_REPEATS:-1}
else
  ROUNDS=${ROUNDS:-3}; SMALL=small; BASE=bart-base; B_SMALL=6; B_BASE=8; MEM_B1=8; MEM_B2=32
  SRC_S=48 TGT_S=24 SRC_B=64 TGT_B=16 NEW=64
  STEPS_SMALL=${STEPS_SMALL:-10}; WARM_SMALL=2; STEPS_BASE=${STEPS_BASE:-3}; WARM_BASE=2; GEN_REPEATS=${GEN_REPEATS:-3}
fi
if [[ -z ${BIN:-} ]]; then
  echo "[perf_table] bazel build -c opt //tools:bench" >&2
  bazel build -c opt //tools:bench >&2
  BIN=bazel-bin/tools
fi
BENCH=$BIN/bench
for f in "$BENCH" "$REF/ref_moe.py" "$REF/ref_generate.py" "$REF/gemm_peak.py" "$REF/moe_flops.py"; do
  [[ -e $f ]] || { echo "[perf_table] missing $f" >&2; exit 1; }
done
"$PY" -c 'import torch' 2> /dev/null ||
  { echo "[perf_table] the reference needs PyTorch for $PY: apt-get install python3-torch" >&2; exit 1; }

# The flags of each row; the reference and TaskMoE take the same ones, plus the extras below.
F_SMALL="--preset $SMALL --experts 3 --batch $B_SMALL --src_len $SRC_S --tgt_len $TGT_S --steps $STEPS_SMALL --warmup $WARM_SMALL --threads $THREADS --mode train"
F_BASE="--preset $BASE --experts 3 --batch $B_BASE --src_len $SRC_B --tgt_len $TGT_B --steps $STEPS_BASE --warmup $WARM_BASE --threads $THREADS --mode train --routing soft"
F_MEM="--preset $BASE --experts 3 --src_len $SRC_B --tgt_len $TGT_B --steps 1 --warmup 1 --threads $THREADS --mode train --routing soft"
F_GEN="--preset $BASE --experts 3 --batch $B_BASE --src_len $SRC_B --new_tokens $NEW --threads $THREADS"
declare -A CMD   # the command line of each run name, listed below the table

# run NAME COMMAND...: the command's last JSON line is appended to $OUT/NAME.jsonl, its peak RSS
# (kB, /usr/bin/time -v) to $OUT/NAME.rss, its stderr to $OUT/NAME.log.
run() {
  local name=$1; shift
  CMD[$name]="$*"
  echo "[perf_table] $(date +%T) $name: $*" >&2
  if ! /usr/bin/time -v -o "$OUT/$name.time" "$@" > "$OUT/$name.out" 2>> "$OUT/$name.log"; then
    echo "[perf_table] $name failed; the end of $OUT/$name.log:" >&2
    tail -n 20 "$OUT/$name.log" >&2
    exit 1
  fi
  grep '^{' "$OUT/$name.out" | tail -n 1 >> "$OUT/$name.jsonl"
  sed -n 's/.*Maximum resident set size (kbytes): //p' "$OUT/$name.time" >> "$OUT/$name.rss"
}
ref_moe() { local name=$1; shift; run "$name" "$PY" "$REF/ref_moe.py" "$@"; }
bench() { local name=$1; shift; run "$name" "$BENCH" "$@"; }

for round in $(seq "$ROUNDS"); do
  echo "[perf_table] round $round of $ROUNDS" >&2
  run gemm "$PY" "$REF/gemm_peak.py" --threads "$THREADS"
  ref_moe small_soft_ref $F_SMALL --routing soft
  bench small_soft $F_SMALL --routing soft
  bench small_soft_per_expert $F_SMALL --routing soft --batched_experts=false
  ref_moe small_hard_ref $F_SMALL --routing hard
  bench small_hard_all $F_SMALL --routing hard --route_gradient=all
  bench small_hard_selected $F_SMALL --routing hard --route_gradient=selected
  ref_moe base_ref $F_BASE
  bench base_taskmoe $F_BASE
  bench base_per_expert $F_BASE --batched_experts=false
  bench base_malloc $F_BASE --tensor_memory_cache=false
  run gen_ref "$PY" "$REF/ref_generate.py" $F_GEN --repeats "$GEN_REPEATS"
  bench gen_greedy --mode generate $F_GEN --steps "$GEN_REPEATS" --warmup 1 --num_beams 1
  bench gen_beam4 --mode generate $F_GEN --steps "$GEN_REPEATS" --warmup 1 --num_beams 4
done
echo "[perf_table] peak RSS at batches $MEM_B1 and $MEM_B2 (one run each)" >&2
for b in "$MEM_B1" "$MEM_B2"; do
  ref_moe "mem${b}_ref" $F_MEM --batch "$b"
  bench "mem${b}_taskmoe" $F_MEM --batch "$b"
done

# The bart-base step's GEMMs alone at their own shapes (its preset only); the table goes without
# that row if the script fails.
rm -f "$OUT/gemm_shapes.md"
if [[ $BASE == bart-base ]]; then
  shapes_cmd=("$PY" scripts/gemm_shapes.py --threads "$THREADS" --batch "$B_BASE" --src_len "$SRC_B" --tgt_len "$TGT_B")
  CMD[gemm_shapes]="${shapes_cmd[*]}"
  echo "[perf_table] $(date +%T) gemm_shapes: ${CMD[gemm_shapes]}" >&2
  if ! "${shapes_cmd[@]}" > "$OUT/gemm_shapes.md" 2>> "$OUT/gemm_shapes.log"; then
    echo "[perf_table] gemm_shapes failed (the end of $OUT/gemm_shapes.log below); its row is left out" >&2
    tail -n 20 "$OUT/gemm_shapes.log" >&2
    rm -f "$OUT/gemm_shapes.md"
  fi
fi

# Helpers (python for JSON and arithmetic).
py() { "$PY" -c "$@"; }
median() {  # median FILE KEY: of KEY over the JSON lines of FILE
  py 'import json,statistics,sys; print(statistics.median(json.loads(l)[sys.argv[2]] for l in open(sys.argv[1]) if l.strip()))' "$@"
}
median_rss_mb() { py 'import statistics,sys; print(statistics.median(int(l) for l in open(sys.argv[1]) if l.strip()) / 1024)' "$1"; }
calc() { py "import sys; print(format($1, sys.argv[1]))" "$2"; }   # calc EXPRESSION FORMAT
meets() { py "print('met' if $1 else 'missed')"; }                  # meets CONDITION
# pct_peak NAME: % of the GEMM peak of NAME's median step, from moe_flops.py (its last column).
pct_peak() {
  py 'import json,sys
lines=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
r=lines[-1]; r["sec_per_step"]=float(sys.argv[2]); print(json.dumps(r))' \
    "$OUT/$1.jsonl" "$(median "$OUT/$1.jsonl" sec_per_step)" > "$OUT/$1.median.json"
  "$PY" "$REF/moe_flops.py" --gemm_gflops "$GEMM" "$OUT/$1.median.json" > "$OUT/$1.flops.txt"
  awk 'NR == 2 { print $NF }' "$OUT/$1.flops.txt"
}
# fit_batch NAME: the largest batch under MEM_LIMIT_GB on the line through the two peak RSS values.
fit_batch() {
  py 'import math,sys
b1,b2,r1,r2,limit=int(sys.argv[1]),int(sys.argv[2]),float(sys.argv[3]),float(sys.argv[4]),float(sys.argv[5])*1024
slope=(r2-r1)/(b2-b1); a=r1-slope*b1
fit=math.floor((limit-a)/slope) if slope > 0 else "n/a"
print(f"{fit} (batch {b1}: {r1:.0f} MB, {b2}: {r2:.0f} MB)")' \
    "$MEM_B1" "$MEM_B2" "$(median_rss_mb "$OUT/mem${MEM_B1}_$1.rss")" \
    "$(median_rss_mb "$OUT/mem${MEM_B2}_$1.rss")" "$MEM_LIMIT_GB"
}

# phases NAME: medians over the rounds of bench's per-phase step medians (its stderr), in seconds.
phases() {
  py 'import re,statistics,sys
rounds=[dict(re.findall(r"(\w+)=([0-9.e-]+)", l)) for l in open(sys.argv[1]) if "median phases" in l]
keys=("forward", "backward", "clip", "optimizer")
print(" / ".join(format(statistics.median(float(r[k]) for r in rounds), ".3f") for k in keys) if rounds else "n/a")' \
    "$OUT/$1.log"
}
# shapes SPLIT: gemm_shapes.py's % of the peak for a step of nothing but GEMMs, split as named.
shapes() { sed -n "s/^- $1 split: .*, \([0-9.]*%\) of the .*/\1/p" "$OUT/gemm_shapes.md"; }

GEMM=$(median "$OUT/gemm.jsonl" gflops)
s() { calc "$(median "$OUT/$1.jsonl" "${2:-sec_per_step}")" .3f; }           # median seconds
ratio() { calc "$(median "$OUT/$1.jsonl" "${3:-sec_per_step}") / $(median "$OUT/$2.jsonl" "${3:-sec_per_step}")" .2f; }
target_row() {  # target_row LABEL REF TASKMOE [MINIMUM]: a training row, against its ratio target
  local r target=""; r=$(ratio "$2" "$3")
  [[ -z ${4:-} ]] || target=">= ${4}x: $(meets "$r >= $4")"
  echo "| $1 | $(s "$2") | $(s "$3") | ${r}x | | $target |"
}

commit=$(git rev-parse --short HEAD)
[[ -z $(git status --porcelain --untracked-files=no) ]] || commit="$commit (work tree modified)"
echo "## TaskMoE vs eager PyTorch reference"
echo
echo "- machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; commit $commit; $(date -u +%F)"
echo "- BLAS kernels: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; --threads $THREADS; GLIBC_TUNABLES=$GLIBC_TUNABLES"
echo "- medians over $ROUNDS alternating round(s)$([[ $QUICK == 1 ]] && echo '; QUICK=1: tiny preset and batch 2 in every row, not a measurement')"
echo "- raw JSON lines and logs: $OUT"
echo
echo "| measurement | reference | TaskMoE | TaskMoE / reference, tokens/s | % of GEMM peak (reference / TaskMoE) | target |"
echo "| --- | --- | --- | --- | --- | --- |"
echo "| fp32 GEMM peak [gemm] | $(calc "$GEMM" .1f) GFLOP/s | | | 100% | |"
target_row "$SMALL E=3 b$B_SMALL train soft, s/step [small_soft_ref, small_soft]" small_soft_ref small_soft 1.5
target_row "$SMALL E=3 b$B_SMALL train soft, --batched_experts=false, s/step [small_soft_ref, small_soft_per_expert]" small_soft_ref small_soft_per_expert
target_row "$SMALL E=3 b$B_SMALL train hard, --route_gradient=all, s/step [small_hard_ref, small_hard_all]" small_hard_ref small_hard_all 2.0
target_row "$SMALL E=3 b$B_SMALL train hard, --route_gradient=selected, s/step [small_hard_ref, small_hard_selected]" small_hard_ref small_hard_selected 2.5
p_ref=$(pct_peak base_ref); p_tm=$(pct_peak base_taskmoe); p_per_expert=$(pct_peak base_per_expert)
echo "| $BASE E=3 b$B_BASE train soft, s/step [base_ref, base_taskmoe] | $(s base_ref) | $(s base_taskmoe) | $(ratio base_ref base_taskmoe)x | $p_ref / $p_tm | TaskMoE >= 85%: $(meets "${p_tm%\%} >= 85") |"
echo "| $BASE E=3 b$B_BASE train soft, --batched_experts=false, s/step [base_ref, base_per_expert] | $(s base_ref) | $(s base_per_expert) | $(ratio base_ref base_per_expert)x | $p_ref / $p_per_expert | |"
p_malloc=$(pct_peak base_malloc)
echo "| $BASE E=3 b$B_BASE train soft, --tensor_memory_cache=false, s/step [base_ref, base_malloc] | $(s base_ref) | $(s base_malloc) | $(ratio base_ref base_malloc)x | $p_ref / $p_malloc | |"
echo "| $BASE E=3 b$B_BASE train soft, TaskMoE's step by phase, s: forward / backward / clipping / AdamW [base_taskmoe] | | $(phases base_taskmoe) | | | |"
if [[ -e $OUT/gemm_shapes.md ]]; then
  echo "| $BASE E=3 b$B_BASE train soft: the step's GEMMs alone at their own shapes, as % of the GEMM peak gemm_shapes.py measured alongside [gemm_shapes] | | a block of rows per worker, one thread each (the model's split): $(shapes rows); the whole batch on all threads: $(shapes threads) | | | |"
fi
rss_ref=$(median_rss_mb "$OUT/base_ref.rss"); rss_tm=$(median_rss_mb "$OUT/base_taskmoe.rss")
echo "| peak RSS of the $BASE training run, MB (/usr/bin/time -v) [base_ref, base_taskmoe] | $(calc "$rss_ref" .0f) | $(calc "$rss_tm" .0f) | | | TaskMoE <= reference: $(meets "$rss_tm <= $rss_ref") |"
echo "| largest $BASE batch in $MEM_LIMIT_GB GiB, estimated from batches $MEM_B1 and $MEM_B2 (peak RSS, one run each) [mem*_ref, mem*_taskmoe] | $(fit_batch ref) | $(fit_batch taskmoe) | | | |"
tps() { calc "$(median "$OUT/$1.jsonl" tokens_per_sec)" .1f; }
echo "| generation, $BASE E=3 b$B_BASE, $NEW new tokens, greedy, tokens/s (s/call) [gen_ref, gen_greedy] | $(tps gen_ref) ($(s gen_ref sec)) | $(tps gen_greedy) ($(s gen_greedy sec)) | $(ratio gen_ref gen_greedy sec)x | | |"
echo "| generation, beam search, 4 beams, tokens/s of the returned sequences (s/call) [gen_beam4] | - | $(tps gen_beam4) ($(s gen_beam4 sec)) | - | | |"
echo
echo "Commands (names in brackets above; GLIBC_TUNABLES as in the header, run from the repository root):"
echo
for name in gemm small_soft_ref small_soft small_soft_per_expert small_hard_ref small_hard_all \
    small_hard_selected base_ref base_taskmoe base_per_expert base_malloc "mem${MEM_B1}_ref" "mem${MEM_B1}_taskmoe" \
    "mem${MEM_B2}_ref" "mem${MEM_B2}_taskmoe" gen_ref gen_greedy gen_beam4 gemm_shapes; do
  [[ -z ${CMD[$name]:-} ]] || echo "- $name: \`${CMD[$name]}\`"
done
