#!/bin/bash
# Runs tests under a sanitizer in a separate Bazel output base (docs/sanitizers.md).
#   tests/sanitizers/run.sh asan [flags...] [targets...]   # default: //...
#   tests/sanitizers/run.sh tsan [flags...] [targets...]   # default: the tests of our concurrent code
# A separate output base keeps the long cold instrumented build off the shared Bazel server, and
# --experimental_convenience_symlinks=ignore leaves bazel-bin/bazel-testlogs pointing at the normal
# build; the instrumented test logs are under $(bazel --output_base=... info bazel-testlogs).
set -euo pipefail
workspace="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$workspace"
sanitizer="${1:?usage: tests/sanitizers/run.sh asan|tsan [flags...] [targets...]}"
shift
# Arguments that start with - are Bazel flags (as --name=value); with no target among the others, the
# default set runs.
has_target=false
for arg in "$@"; do [[ $arg == -* ]] || has_target=true; done
extra=()
case "$sanitizer" in
  asan)
    $has_target || set -- "$@" //...
    # Third-party leaks at exit (fontconfig's cache); the file needs an absolute path.
    extra+=("--test_env=LSAN_OPTIONS=suppressions=$workspace/tests/sanitizers/lsan.supp")
    ;;
  tsan)
    # distributed_test is not in the default set: its data-parallel test reports races inside
    # LibTorch's c10d/Gloo threads, which are not instrumented (docs/sanitizers.md).
    $has_target || set -- "$@" //tests:concurrent_experts_test //tests:route_gradient_test \
      //tests:batched_matmul_test //tests:optimization_test //tests:batching_test
    # The options of .bazelrc's test:tsan line plus the suppressions file, which needs an absolute path.
    extra+=("--test_env=TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$workspace/tests/sanitizers/tsan.supp")
    ;;
  *)
    echo "unknown sanitizer '$sanitizer' (asan or tsan)" >&2
    exit 2
    ;;
esac
exec bazel --output_base="${TASKMOE_SANITIZER_OUTPUT_BASE:-$HOME/.cache/taskmoe-$sanitizer}" test \
  --config="$sanitizer" --keep_going --experimental_convenience_symlinks=ignore "${extra[@]}" "$@"
