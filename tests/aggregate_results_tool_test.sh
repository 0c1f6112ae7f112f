#!/bin/bash
# tools/aggregate_results as a user runs it: the markdown table and ARG on stdout, the CSV files,
# and a malformed result.csv reported by file and line with the earlier outputs left untouched;
# then arms of seed directories with --skills, --compare and --json.
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

write "$root/moe/b/result.csv" "${header}b_1_best,1e-5,2,0.2,0.2\nb_2_best,1e-5,2,0.4,0.4\n"
# No output may overwrite a result.csv it reads, by any spelling.
cp "$root/moe/b/result.csv" "$root/result_before.csv"
for output in --summary_csv="$root/moe/b/result.csv" --arg_csv="$root/moe/../dense/b/result.csv" \
    --json="$root/dense/a/result.csv"; do
  if err=$("$tool" --results="$root/moe" --baseline="$root/dense" "$output" 2>&1); then
    fail "$output overwrote an input"
  fi
  grep -q "^aggregate_results: the output .* would overwrite the input .*/result.csv; write \
the output somewhere else$" <<<"$err" || fail "$output: $err"
done
cmp -s "$root/moe/b/result.csv" "$root/result_before.csv" ||
  fail "an input result.csv was overwritten"
# Arms of seed directories: results = baseline + 0.1 on every sample, 3 seeds x 2 tasks x 2
# samples; task c is made of a control skill. Seed s3 exists in the results only.
for seed in s1 s2 s3; do
  for task in a c; do
    write "$root/seeds_moe/$seed/$task/result.csv" "${header}${task}_1_best,1,1,0.5,0.6\n${task}_2_best,1,1,0.5,0.4\n"
    [ "$seed" = s3 ] && continue
    write "$root/seeds_dense/$seed/$task/result.csv" "${header}${task}_1_best,1,1,0.5,0.5\n${task}_2_best,1,1,0.5,0.3\n"
  done
done
write "$root/skills.json" '{"skills": [{"name": "sort", "control": false}, {"name": "rot", "control": true}],
 "tasks": [{"name": "a", "skills": ["sort"]}, {"name": "b", "skills": ["sort"]},
           {"name": "c", "skills": ["sort", "rot"]}]}'
out=$("$tool" --results="$root/seeds_moe" --baseline="$root/seeds_dense" --skills="$root/skills.json" \
  --compare="flat:$root/moe:$root/dense" --bootstrap_draws=500 --json="$root/stats.json") ||
  fail "seed layout: $out"
echo "$out"
# Every seed's `_best` rows pooled per task: (0.6 + 0.4) / 2 over 6 rows.
grep -qF '| a | 6 | 0.5000 ± 0.0000 | 0.5000 ± 0.1095 |' <<<"$out" || fail "no pooled task row"
for group in all seen_skill control; do
  grep -qF "| seeds_moe vs seeds_dense | $group | 2 |" <<<"$out" || fail "no $group line"
done
grep -qF '| +10.00 [+10.00, +10.00] |' <<<"$out" || fail "delta is not +10 points"
grep -qF '| flat | all | 1 | 2 | 3 |' <<<"$out" || fail "no --compare line"
grep -qF 'seeds_moe vs seeds_dense: only in the results (left out): s3' <<<"$out" ||
  fail "unpaired seed not listed"
grep -qF 'Holm-adjusted over the 5 p-values' <<<"$out" || fail "Holm not over 5 p-values"
grep -qF 'flat: no control tasks' <<<"$out" || fail "an empty group is not named"
for field in '"delta": {' '"arg": {' '"ratio_of_means": {' '"ci95": [' '"p_value":' \
  '"p_value_holm":' '"n_seeds": 2' '"n_tasks": 2' '"zero_baseline_tasks": []' '"group": "control"'; do
  grep -qF "$field" "$root/stats.json" || fail "stats.json lacks $field: $(cat "$root/stats.json")"
done
[ "$(grep -c '"name":' "$root/stats.json")" = 5 ] || fail "stats.json should hold 5 lines"

# Arms scored on their own: the hierarchical mean (moe 0.5, dense 0.4) with an interval.
out=$("$tool" --arms="moe:$root/seeds_moe,dense:$root/seeds_dense" --bootstrap_draws=500 \
  --json="$root/arms.json") || fail "--arms: $out"
echo "$out"
grep -qF '| moe | 3 | 2 | 12 | 50.00 [' <<<"$out" || fail "no moe arm row"
grep -qF '| dense | 2 | 2 | 8 | 40.00 [' <<<"$out" || fail "no dense arm row"
grep -qF '"test_points": {' "$root/arms.json" || fail "arms.json lacks test_points"

# A seed directory without result files: an error naming it, stats.json left as it was.
cp "$root/stats.json" "$root/stats_before.json"
mkdir -p "$root/seeds_dense/s9/a"
if err=$("$tool" --results="$root/seeds_moe" --baseline="$root/seeds_dense" --json="$root/stats.json" 2>&1); then
  fail "a seed directory without result.csv was accepted"
fi
echo "$err"
grep -qF "$root/seeds_dense/s9" <<<"$err" || fail "the error does not name the seed directory"
cmp -s "$root/stats.json" "$root/stats_before.json" || fail "stats.json was overwritten"
echo PASS
