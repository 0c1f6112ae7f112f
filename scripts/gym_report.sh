#!/usr/bin/env bash
# The tables of a scripts/gym_pipeline.sh run, from its output directory, into <out>/report.md:
# calibration figures, upstream test scores per arm, few-shot and zero-shot comparisons
# (tools/aggregate_results) and route–skill agreement per routed arm with its nulls
# (tools/analyze_routes). Every table is the tools' own markdown. Then tools/report turns their
# JSON outputs into <out>/report.html: one self-contained page with the same tables and forest
# plots of delta, ARG and rho. Needs the three tools built (bazel build -c opt
# //tools:aggregate_results //tools:analyze_routes //tools:report), or BIN=<dir> holding them.
#
#   scripts/gym_report.sh OUT [BOOTSTRAP_DRAWS] [PERMUTATIONS] ["SEEDS"]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$1
DRAWS=${2:-10000}
PERMUTATIONS=${3:-9999}
SEEDS=${4:-1 2 3 4 5}
BIN=${BIN:-bazel-bin/tools}  # gym_pipeline.sh exports its BIN
GYM=$OUT/gym
# The arms beyond the paper (gym_pipeline.sh --beyond) join the tables when the run has them.
ARMS="dense stage_one average task_random two_stage shuffled merged polytropon"

# The directory of an arm's run (checkpoints, predictions, losses.csv).
run_dir() {
  case $1 in
    two_stage | shuffled | merged) echo "$OUT/$1/$2/run" ;;
    *) echo "$OUT/$1/$2" ;;
  esac
}

# The upstream predictions of every arm and seed the run has as one-row result.csv files per
# task (<task>_best, lr and bsz 0), so aggregate_results scores them like few-shot results. An
# undefined score (nan, e.g. a correlation of constant predictions) counts as 0, as in the
# trainer's mean.
upstream_results() {
  local arm seed dir
  for arm in $ARMS; do
    [[ -d "$OUT/$arm" ]] || continue
    for seed in $SEEDS; do
      dir=$(run_dir "$arm" "$seed")/predict
      awk -F, -v out="$OUT/upstream/$arm/$seed" '
        FNR == 1 { next }
        { if ($3 ~ /nan/) $3 = 0 }
        FILENAME ~ /dev/ { dev[$1] = $3; next }
        { system("mkdir -p \"" out "/" $1 "\"")
          file = out "/" $1 "/result.csv"
          print "prefix,lr,bsz,dev_performance,test_performance" > file
          print $1 "_best,0,0," dev[$1] "," $3 > file
          close(file) }' "$dir/eval-dev-performance.csv" "$dir/eval-test-performance.csv"
    done
  done
}

# Dense dev performance over the last 20% of training: the largest gain over the evaluation at
# (or just before) 80% of the steps, per seed ("not run" for a seed without evaluations).
dense_curve() {
  local seed file
  echo "| seed | dev at 80% of steps | best dev after | gain |"
  echo "| --- | --- | --- | --- |"
  for seed in $SEEDS; do
    file=$OUT/dense/$seed/losses.csv
    if [[ ! -f "$file" ]] || (( $(wc -l <"$file") < 2 )); then
      echo "| $seed | not run | - | not run |"
      continue
    fi
    awk -F, -v seed="$seed" '
      NR > 1 { step[++n] = $1; dev[n] = $4 }
      END {
        cut = 0.8 * step[n]; base = 0
        for (i = 1; i <= n; i++) if (step[i] <= cut) base = i
        best = dev[base]
        for (i = base + 1; i <= n; i++) if (dev[i] > best) best = dev[i]
        printf "| %s | %.4f (step %d of %d) | %.4f | %+.4f |\n", seed, dev[base], step[base],
               step[n], best, best - dev[base]
      }' "$file"
  done
}

# Each (arm, seed, task) of a result tree ($1, <arm>/<seed>/<task>/result.csv), in path order,
# with whether its test scores (the rows of each few-shot sample's best setting) are all exactly
# 0, and all exactly 1: "arm seed task at_0 at_1". grep's output is one stream however many
# files there are.
pair_extremes() {
  [[ -d "$1" ]] || return 0
  find "$1" -name result.csv -exec grep -H '_best,' {} + | sort | awk -F, -v root="$1/" '
    { split(substr($1, length(root) + 1), part, "/"); key = part[1] " " part[2] " " part[3]
      if (!(key in n)) order[++k] = key
      sum[key] += $NF; n[key]++ }
    END { for (i = 1; i <= k; i++) print order[i], sum[order[i]] == 0, sum[order[i]] == n[order[i]] }'
}

# Per result tree and arm: how many (seed, task) test means are exactly 0 or 1, and which
# (the first few).
extremes() {
  local tree arm pairs
  echo "| results | arm | (seed, task) pairs | at 0 | at 1 |"
  echo "| --- | --- | --- | --- | --- |"
  for tree in "$@"; do
    [[ -d "$tree" ]] || continue
    pairs=$(pair_extremes "$tree")
    for arm in $ARMS; do
      [[ -d "$tree/$arm" ]] || continue
      awk -v arm="$arm" -v label="${tree##*/} | $arm" '
        $1 == arm { total++
          if ($4) { zeros++; if (zeros <= 6) zl = zl " " $2 "/" $3 }
          if ($5) { ones++; if (ones <= 6) ol = ol " " $2 "/" $3 } }
        END { printf "| %s | %d | %d%s | %d%s |\n", label, total, zeros, (zeros > 6 ? zl " ..." : zl),
                     ones, (ones > 6 ? ol " ..." : ol) }' <<<"$pairs"
    done
  done
}

# From an extremes table ($1), the counts of (seed, task) test means at exactly 0 and at 1 over
# every arm of the result trees named next ("upstream", ...): "<zeros> <ones> <pairs>".
extreme_counts() {
  local table=$1
  shift
  awk -F' [|] ' -v trees=" $* " 'NR > 2 && index(trees, " " substr($1, 3) " ") {
      pairs += $3; zeros += $4; ones += $5 }
    END { print zeros + 0, ones + 0, pairs + 0 }' <<<"$table"
}

# The other reading of the target: tasks of a result tree ($1) at exactly 0 in every arm and
# seed, or at 1 in every one (tasks that no arm moves off the floor or the ceiling):
# "<tasks> <n at 0> <n at 1> <those tasks>" ("-" when none); "0 0 0 -" for no results.
saturated_tasks() {
  local pairs
  pairs=$(pair_extremes "$1")
  awk 'NF == 5 { pairs[$3]++; zeros[$3] += $4; ones[$3] += $5 }
    END {
      for (task in pairs) {
        tasks++
        if (zeros[task] == pairs[task]) { z++; list = list " " task "(0)" }
        if (ones[task] == pairs[task]) { o++; list = list " " task "(1)" }
      }
      print tasks + 0, z + 0, o + 0, (list == "" ? "-" : substr(list, 2))
    }' <<<"$pairs"
}

# The dense arm's test score in points ("mean [lo, hi]") from an aggregate_results JSON file,
# empty when the file or the arm is missing.
dense_points() {
  [[ -f "$1" ]] || return 0
  jq -r '.arms[] | select(.name == "dense") | .test_points
    | "\(.mean * 100 | round / 100) [\(.ci95[0] * 100 | round / 100), \(.ci95[1] * 100 | round / 100)]"' "$1"
}

# "yes"/"no": whether the mean of "mean [lo, hi]" lies in [$2, $3]; "not run" when empty.
in_range() {
  if [[ -z "$1" ]]; then echo "not run"; return; fi
  awk -v m="${1%% *}" -v lo="$2" -v hi="$3" 'BEGIN { print (m >= lo && m <= hi) ? "yes" : "no" }'
}

# The calibration targets (docs/experiments.md#calibration-targets), measured and met. "No task at
# 0 or 1 for every arm and seed" is read both ways: no (arm, seed, task) at 0 or 1 at all, and no
# task at 0 (or at 1) in every arm and seed. Both count upstream and few-shot results (the target
# is about trained models); zero-shot is listed beside them. $1 = the dense_curve table, $2 = the
# extremes table.
calibration() {
  local upstream fewshot fewshot_dev gains extreme zero_shot tree saturated counts
  upstream=$(dense_points "$OUT/upstream_stats.json")
  fewshot=$(dense_points "$OUT/finetune_stats.json")
  fewshot_dev=$(dense_points "$OUT/finetune_dev_stats.json")
  gains=$(awk -F' [|] ' 'NR > 2 { print ($4 ~ /not run/ ? "not-run" : $4 + 0) }' <<<"$1" | tr '\n' ' ')
  read -r -a extreme <<<"$(extreme_counts "$2" upstream finetune finetune_dev)"
  read -r -a zero_shot <<<"$(extreme_counts "$2" zero_shot)"
  echo "| target | measured (points; [95% CI]) | met |"
  echo "| --- | --- | --- |"
  echo "| dense upstream test mean in [50, 80] | ${upstream:-not run} | $(in_range "$upstream" 50 80) |"
  echo "| dense few-shot mean of the held-out test tasks in [30, 60] | ${fewshot:-not run} | $(in_range "$fewshot" 30 60) |"
  echo "| (tuning signal) dense few-shot mean of the held-out dev tasks in [30, 60] | ${fewshot_dev:-not run} | $(in_range "$fewshot_dev" 30 60) |"
  if (( extreme[2] == 0 )); then
    echo "| no (seed, task) at 0 or 1, upstream and few-shot, every arm | not run | |"
  else
    echo "| no (seed, task) at 0 or 1, upstream and few-shot, every arm | ${extreme[0]} at 0, ${extreme[1]} at 1 of ${extreme[2]} | $( (( extreme[0] + extreme[1] == 0 )) && echo yes || echo no) |"
  fi
  for tree in upstream:upstream finetune:few-shot finetune_dev:"few-shot dev"; do
    saturated=$(saturated_tasks "$OUT/${tree%%:*}")
    read -r -a counts <<<"$saturated"
    if (( counts[0] == 0 )); then
      echo "| (other reading) no ${tree#*:} task at 0 in every arm and seed, nor at 1 in every one | not run | |"
      continue
    fi
    echo "| (other reading) no ${tree#*:} task at 0 in every arm and seed, nor at 1 in every one | ${counts[1]} at 0, ${counts[2]} at 1 of ${counts[0]} tasks: $(printf '%s\n' "${counts[@]:3}" | sort | paste -sd ' ') | $( (( counts[1] + counts[2] == 0 )) && echo yes || echo no) |"
  done
  echo "| (listed) zero-shot (seed, task) at 0 or 1 | ${zero_shot[0]} at 0, ${zero_shot[1]} at 1 of ${zero_shot[2]} | |"
  echo "| dense dev gain over the last 20% of steps < 0.01, every seed | ${gains% } | $(awk -v g="$gains" 'BEGIN { n = split(g, a, " "); ok = n > 0; for (i = 1; i <= n; i++) if (a[i] == "not-run" || a[i] >= 0.01) ok = 0; print ok ? "yes" : "no" }') |"
}

comparisons() {
  local root=$1 c="" pair
  for pair in "two_stage dense" "stage_one dense" "stage_one average" "average dense" \
    "two_stage shuffled" "merged two_stage" "polytropon stage_one" "polytropon two_stage" \
    "polytropon average"; do
    set -- $pair
    [[ -d "$root/$1" && -d "$root/$2" ]] || continue
    c+="${c:+,}$1 vs $2:$root/$1:$root/$2"
  done
  echo "$c"
}

arms_of() {
  local root=$1 a="" arm
  for arm in $ARMS; do [[ -d "$root/$arm" ]] && a+="${a:+,}$arm:$root/$arm"; done
  echo "$a"
}

# aggregate_results over the arms of one results tree ($1) and the comparisons among them,
# seen-skill/control lines when $2 = skills; into $OUT/$3.json.
aggregate() {
  local root=$1 skills=() compare
  [[ -d "$root" ]] || return 0
  compare=$(comparisons "$root")
  if [[ $2 == skills && -n "$compare" ]]; then skills=(--skills="$GYM/skills.json"); fi
  "$BIN/aggregate_results" --arms="$(arms_of "$root")" --compare="$compare" "${skills[@]}" \
    --bootstrap_draws="$DRAWS" --json="$OUT/$3.json"
}

# Route–skill agreement of one arm over seeds: $1 = arm, $2 = routes file relative to its run.
agreement() {
  local arm=$1 file=$2 routes="" seed
  for seed in $SEEDS; do routes+="${routes:+,}$(run_dir "$arm" "$seed")/$file"; done
  echo
  echo "#### $arm"
  "$BIN/analyze_routes" --routes="$routes" --skills="$GYM/skills.json" \
    --task_vectors="$OUT/task_vectors" --permutations="$PERMUTATIONS" \
    --json="$OUT/routes_$arm.json"
}

# Held-out tasks' nearest train task in route space, over the seeds of one arm: the routes of all
# tasks through each seed's router (gym_pipeline.sh all_routes).
neighbours() {
  local arm=$1 routes="" seed
  for seed in $SEEDS; do routes+="${routes:+,}$OUT/all_routes/$arm/$seed/route.npy"; done
  echo
  echo "#### $arm"
  "$BIN/analyze_routes" --routes="$routes" --skills="$GYM/skills.json" \
    --permutations="$PERMUTATIONS" --json="$OUT/neighbours_$arm.json"
}

upstream_results
curve=$(dense_curve)
extremes_table=$(extremes "$OUT/upstream" "$OUT/finetune" "$OUT/finetune_dev" "$OUT/zero_shot")
{
  echo "# Gym protocol report ($OUT)"
  echo
  echo "Seeds: $SEEDS. Settings and timings: $OUT/timings.tsv."
  echo
  echo "## Upstream: test score of the train tasks per arm"
  aggregate "$OUT/upstream" - upstream_stats
  echo
  echo "## Dense few-shot fine-tuning of the held-out dev tasks (calibration only)"
  aggregate "$OUT/finetune_dev" - finetune_dev_stats
  echo
  echo "## Few-shot fine-tuning of the held-out test tasks"
  aggregate "$OUT/finetune" skills finetune_stats
  echo
  echo "## Zero-shot evaluation of the held-out test tasks"
  aggregate "$OUT/zero_shot" skills zero_shot_stats
  echo
  echo "## Calibration"
  echo
  calibration "$curve" "$extremes_table"
  echo
  echo "### Dense dev curve over the last 20% of steps"
  echo
  echo "$curve"
  echo
  echo "### Tasks at exactly 0 or 1 (upstream, few-shot, zero-shot)"
  echo
  echo "$extremes_table"
  if [[ -d "$OUT/stage_one" ]]; then
    echo
    echo "## Route–skill agreement of the train tasks' routes (best checkpoints)"
    for arm in stage_one two_stage shuffled merged polytropon; do
      if [[ -d "$OUT/$arm" ]]; then agreement "$arm" best/route.npy; fi
    done
    echo
    echo "Nulls:"
    agreement task_random best/route.npy
    agreement untrained predict/route.npy
  fi
  if [[ -d "$OUT/all_routes" ]]; then
    echo
    echo "## Held-out tasks' nearest train task in route space"
    echo
    echo "Routes of all tasks through each seed's router (tools/route_tasks); the rho columns here"
    echo "cover every pair of the train and held-out tasks. Arms whose routes do not come from"
    echo "the task vectors (task-level random, shuffled) have no route for a held-out task."
    for arm in stage_one two_stage merged polytropon; do
      if [[ -d "$OUT/all_routes/$arm" ]]; then neighbours "$arm"; fi
    done
    if [[ -d "$OUT/all_routes/untrained" ]]; then
      echo
      echo "Null (the untrained router on the same task vectors):"
      neighbours untrained
    fi
  fi
} >"$OUT/report.md"
"$BIN/report" --dir="$OUT" --null_arms=task_random,untrained
