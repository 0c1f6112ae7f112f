#!/usr/bin/env bash
# Fuzzes the parsers of user files (tests/fuzz, docs/fuzzing.md) with libFuzzer.
#
#   bash scripts/fuzz.sh SECONDS [FUZZER...]     (default: every fuzzer, one after another)
#
# Builds the tests/fuzz:<name>_fuzzer binaries with clang-14, ASan, UBSan and libFuzzer in a Bazel
# output base of their own (the normal gcc build and its cache stay untouched), then runs each for
# SECONDS on a copy of tests/fuzz/corpus/<name>. New inputs, findings (crash-*, leak-*,
# timeout-*, oom-*) and logs go to $FUZZ_OUT/<name> (default /tmp/taskmoe_fuzz), never into the
# repository: copy a finding into the corpus by hand once it is fixed. Prints one summary line per
# fuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -lt 1 || ! $1 =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 SECONDS [FUZZER...]" >&2
  exit 2
fi
seconds=$1
shift
all=(npy safetensors bart_config experiment_config crossfit tokenizer results id2task trainer_state)
fuzzers=("${@:-${all[@]}}")
out=${FUZZ_OUT:-/tmp/taskmoe_fuzz}
output_base=${FUZZ_OUTPUT_BASE:-$HOME/.cache/taskmoe-fuzz}

# Longest input per fuzzer: room for its largest seed (safetensors: a 68 KB fixture; tokenizer:
# a vocab.json of the 256 byte symbols), short elsewhere so each execution stays fast.
max_len() {
  case $1 in
    safetensors) echo 70000 ;;
    tokenizer) echo 16384 ;;
    crossfit | experiment_config) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

# An output base of its own keeps the shared Bazel server and the gcc build's cache apart (its
# server exits when idle); --symlink_prefix=/ leaves the workspace's bazel-* links on the gcc build.
bazel_fuzz=(bazel --output_base="$output_base" --max_idle_secs=300)
flags=(
  --symlink_prefix=/
  --repo_env=CC=clang-14 --repo_env=CXX=clang++-14
  --copt=-fsanitize=fuzzer-no-link,address,undefined --copt=-fno-sanitize-recover=undefined
  --copt=-O1 --copt=-g --copt=-fno-omit-frame-pointer
  # Bounds checks in libstdc++'s containers: an index past size() but within capacity is no
  # heap overflow for ASan.
  --copt=-D_GLIBCXX_ASSERTIONS
  # .bazelrc's gcc-only warning flags.
  --copt=-Wno-unknown-warning-option
  # Bazel links with clang-14, the C driver, which leaves out UBSan's C++ runtime (the vptr
  # check) unless asked.
  --linkopt=-fsanitize=address,undefined --linkopt=-fsanitize-link-c++-runtime
  # clang compiles the -fopenmp libraries (moe/model, moe/base) against LLVM's OpenMP runtime
  # (__kmpc_*), which libgomp lacks; libomp provides it. Parsers run no parallel region.
  --linkopt=-L/usr/lib/llvm-14/lib --linkopt=-Wl,-rpath,/usr/lib/llvm-14/lib --linkopt=-lomp
)
targets=()
for name in "${fuzzers[@]}"; do targets+=("//tests/fuzz:${name}_fuzzer"); done
# FUZZ_BUILD=0 runs the binaries built before (while another build holds this output base).
if [[ ${FUZZ_BUILD:-1} != 0 ]]; then
  nice -n 10 "${bazel_fuzz[@]}" build "${flags[@]}" "${targets[@]}"
fi
bin=$output_base/execroot/taskmoe/bazel-out/k8-opt/bin  # .bazelrc builds with -c opt

# The value of libFuzzer's final "stat::<key>: <value>" line.
stat() { sed -n "s/^stat::$2: *//p" "$1" | tail -1; }

for name in "${fuzzers[@]}"; do
  work=$out/$name
  mkdir -p "$work/corpus" "$work/findings"
  cp -r tests/fuzz/corpus/"$name"/. "$work/corpus/"
  status=0
  # -timeout: an input that runs 10 s is a finding (an endless loop); -rss_limit_mb: so is one
  # that makes the parser allocate more than 4 GB.
  nice -n 10 "$bin/tests/fuzz/${name}_fuzzer" "$work/corpus" \
    -max_total_time="$seconds" -max_len="$(max_len "$name")" -rss_limit_mb=4096 -timeout=10 \
    -artifact_prefix="$work/findings/" -print_final_stats=1 >"$work/log" 2>&1 || status=$?
  findings=$(find "$work/findings" -type f | wc -l)
  coverage=$(grep -o 'cov: [0-9]*' "$work/log" | tail -1 | cut -d' ' -f2)
  format='%-18s seconds=%s execs=%s exec/s=%s new_units=%s cov=%s corpus=%s findings=%s'
  printf "$format exit=%s log=%s\n" \
    "$name" "$seconds" "$(stat "$work/log" number_of_executed_units)" \
    "$(stat "$work/log" average_exec_per_sec)" "$(stat "$work/log" new_units_added)" "$coverage" \
    "$(find "$work/corpus" -type f | wc -l)" "$findings" "$status" "$work/log"
done
