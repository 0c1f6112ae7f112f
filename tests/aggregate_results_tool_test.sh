#!/bin/bash
# tools/aggregate_results as a user runs it: the markdown table and ARG on stdout, the CSV files,
# and a malformed result.csv reported by file and line with the earlier outputs left untouched.
set -u
tool="tools/aggregate_results"
root="${TEST_TMPDIR}/aggregate"
rm -rf "$root"
fail() { echo "FAIL: $*"; exit 1; }
write() { mkdir -p "$(dirname "$1")"; printf '%b' "$2" > "$1"; }
header='prefix,lr,bsz,dev_performance,test_performance\n'
# Test means: moe a = 0.5, b = 0.3; dense a = 0.4, b = 0.2; ARG = (0.25 + 0.5) / 2 = 0.375.
write "$root/moe/a/result.csv" "${header}a_1,1e-5,2,0.9,0.9\na_1_best,1e-5,2,0.5,0.4\na_2_best,1e-5,2,0.7,0.6\n"
write "$root/moe/b/result.csv" "${header}b_1_best,1e-5,2,0.2,0.2\nb_2_best,1e-5,2,0.4,0.4\n"
write "$root/dense/a/result.csv" "${header}a_1_best,1e-5,2,0.3,0.3\na_2_best,1e-5,2,0.5,0.5\n"
write "$root/dense/b/result.csv" "${header}b_1_best,1e-5,2,0.2,0.2\n"

out=$("$tool" --results="$root/moe" --baseline="$root/dense") || fail "tool failed: $out"
echo "$out"
grep -qF '| **ARG over 2 tasks** | | | +37.50% |' <<<"$out" || fail "no ARG row"
grep -qF '| a | 0.4000 | 0.5000 | +25.00% |' <<<"$out" || fail "no gain row of a"
grep -qx '0,a,mean,0.6,0.5' "$root/moe/summary.csv" || fail "summary.csv: $(cat "$root/moe/summary.csv")"
grep -qx 'ARG,,,0.375' "$root/moe/arg.csv" || fail "arg.csv: $(cat "$root/moe/arg.csv")"

cp "$root/moe/summary.csv" "$root/summary_before.csv"
write "$root/moe/b/result.csv" "${header}b_1_best,1e-5,2,0.2,0.2\nb_2_best,1e-5,2,oops,0.4\n"
if err=$("$tool" --results="$root/moe" --baseline="$root/dense" 2>&1); then
  fail "a malformed result.csv was accepted"
fi
echo "$err"
grep -qF "$root/moe/b/result.csv:3:" <<<"$err" || fail "the error does not name file and line"
cmp -s "$root/moe/summary.csv" "$root/summary_before.csv" || fail "summary.csv was overwritten"
echo PASS
