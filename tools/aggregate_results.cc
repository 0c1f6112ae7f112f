// Aggregates few-shot results (result.csv per task, as tools/finetune_tasks and the original code
// write them) into per-task mean/std over seeds, and with a baseline the average relative gain
// (ARG) and statistics of the difference; CSV/JSON files + markdown on stdout.
//
//   aggregate_results --results=runs/ft_moe [--baseline=runs/ft_dense]
//                     [--compare=name:results_dir:baseline_dir,name2:...]
//                     [--arms=name:dir,name2:dir2,...]
//                     [--skills=gym_data/skills.json] [--json=runs/stats.json]
//                     [--bootstrap_draws=10000] [--seed=1]
//                     [--summary_csv=runs/ft_moe/summary.csv] [--arg_csv=runs/ft_moe/arg.csv]
//
// An arm (--results, --baseline, each side of --compare) is a directory of seed directories (any
// names) each holding <task>/result.csv, or one seed: <task>/result.csv directly. --results
// gives the per-task table (mean/std over every seed's `_best` rows) and, with --baseline, the
// ARG table as before; every pair of arms (--results/--baseline, named "<results> vs
// <baseline>" by the directories' names, and each --compare entry; names and paths without ':'
// or ',') gets one statistics line (data/result_statistics.h): delta in points, ARG and ratio of
// means with 95% hierarchical-bootstrap intervals, and the sign-flip p-value, raw and
// Holm-adjusted over every p-value of the call. --skills adds a line for the tasks of seen skills
// and one for the control tasks per comparison. --arms scores arms on their own: each arm's mean
// test score in points with its 95% hierarchical-bootstrap interval.
//
// Every input is read and checked before anything is written; files are replaced atomically.

#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "data/result_statistics.h"
#include "data/results.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "nlohmann/json.hpp"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, results, "",
          "Arm directory: seed directories of <task>/result.csv, or <task>/result.csv directly.");
ABSL_FLAG(std::string, baseline, "",
          "The baseline arm of --results (same layout); empty: no ARG and no statistics.");
ABSL_FLAG(std::vector<std::string>, compare, {},
          "More comparisons, comma-separated, each name:results_dir:baseline_dir.");
ABSL_FLAG(std::vector<std::string>, arms, {},
          "Arms to score on their own, comma-separated, each name:dir: mean test score in points "
          "with its 95% hierarchical-bootstrap interval.");
ABSL_FLAG(std::string, skills, "",
          "A skill gym's skills.json: adds seen-skill and control-task lines per comparison.");
ABSL_FLAG(std::string, json, "", "Where to write the statistics as JSON; empty: nowhere.");
ABSL_FLAG(int64_t, bootstrap_draws, 10000,
          "Hierarchical bootstrap draws (and random sign flips) per statistics line.");
ABSL_FLAG(uint64_t, seed, 1, "Seed of the bootstrap and sign-flip random numbers.");
ABSL_FLAG(std::string, summary_csv, "",
          "Where to write the per-task mean/std CSV; empty: <results>/summary.csv.");
ABSL_FLAG(std::string, metrics, "",
          "Task -> metric table (a metrics.json such as the gym's) whose metric ranges bound each "
          "task's scores; empty: CrossFit's. Tasks it does not list are held to [-1, 1].");
ABSL_FLAG(std::string, arg_csv, "",
          "Where to write the per-task gains and the ARG; empty: <results>/arg.csv.");

namespace taskmoe {
namespace {

struct Comparison {
  std::string name;
  std::string results_dir;
  std::string baseline_dir;
};

struct ScoredArm {
  std::string name;
  std::string dir;
  ArmScore score;
};

// One reported line: a comparison restricted to a group of tasks.
struct StatisticsLine {
  size_t outcome = 0;  // index into the call's ComparisonOutcomes
  std::string group;   // "all", "seen_skill" or "control"
  ComparisonStatistics stats;
  double p_holm = 1;
};

struct ComparisonOutcome {
  Comparison comparison;
  PairedResults paired;
  std::vector<std::string> empty_groups;
};

std::string DirName(const std::string& dir) {
  const std::string name = std::filesystem::path(dir).lexically_normal().filename().string();
  return name.empty() ? dir : name;
}

absl::StatusOr<std::vector<Comparison>> ParseComparisons() {
  std::vector<Comparison> comparisons;
  const std::string results = absl::GetFlag(FLAGS_results);
  const std::string baseline = absl::GetFlag(FLAGS_baseline);
  if (!results.empty() && !baseline.empty()) {
    comparisons.push_back(
        {absl::StrCat(DirName(results), " vs ", DirName(baseline)), results, baseline});
  }
  for (const std::string& entry : absl::GetFlag(FLAGS_compare)) {
    const std::vector<std::string> parts = absl::StrSplit(entry, ':');
    if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[2].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--compare entry '", entry, "': expected name:results_dir:baseline_dir"));
    }
    comparisons.push_back({parts[0], parts[1], parts[2]});
  }
  return comparisons;
}

// "mean [lo, hi]", each number through `format`.
template <typename Format>
std::string Interval(const Estimate& e, Format format) {
  if (std::isnan(e.mean)) return "undefined";
  return absl::StrCat(format(e.mean), " [", format(e.ci95_lo), ", ", format(e.ci95_hi), "]");
}

std::string StatisticsMarkdown(const std::vector<ComparisonOutcome>& outcomes,
                               const std::vector<StatisticsLine>& lines,
                               const StatisticsOptions& options) {
  std::string md = absl::StrFormat(
      "\nPaired by (seed directory, task, prefix); 95%% intervals from a hierarchical bootstrap "
      "(seeds, tasks, few-shot samples; %d draws, seed %d); p: sign-flip over seed x task, "
      "Holm-adjusted over the %d p-values of this call.\n\n"
      "| comparison | group | seeds | tasks | samples | delta (points) [95%% CI] | ARG [95%% CI] "
      "| ratio of means [95%% CI] | p | p (Holm) |\n"
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
      options.bootstrap_draws, options.seed, lines.size());
  for (const StatisticsLine& l : lines) {
    const ComparisonStatistics& s = l.stats;
    absl::StrAppend(
        &md, absl::StrFormat(
                 "| %s | %s | %d | %d | %d | %s | %s | %s | %.4g | %.4g |\n",
                 outcomes[l.outcome].comparison.name, l.group, s.n_seeds, s.n_tasks, s.n_samples,
                 Interval(s.delta_points, [](double v) { return absl::StrFormat("%+.2f", v); }),
                 Interval(s.arg, [](double v) { return absl::StrFormat("%+.2f%%", 100 * v); }),
                 Interval(s.ratio_of_means, [](double v) { return absl::StrFormat("%.4f", v); }),
                 s.p_value, l.p_holm));
  }
  for (const ComparisonOutcome& o : outcomes) {
    const std::string& name = o.comparison.name;
    if (!o.paired.only_in_results.empty()) {
      absl::StrAppend(&md, "\n", name, ": only in the results (left out): ",
                      absl::StrJoin(o.paired.only_in_results, ", "), "\n");
    }
    if (!o.paired.only_in_baseline.empty()) {
      absl::StrAppend(&md, "\n", name, ": only in the baseline (left out): ",
                      absl::StrJoin(o.paired.only_in_baseline, ", "), "\n");
    }
    if (!o.empty_groups.empty()) {
      absl::StrAppend(&md, "\n", name, ": no ", absl::StrJoin(o.empty_groups, " or "), " tasks\n");
    }
  }
  for (const StatisticsLine& l : lines) {
    if (l.stats.zero_baseline_tasks.empty() || l.group != "all") continue;
    absl::StrAppend(&md, "\n", outcomes[l.outcome].comparison.name,
                    ": baseline task mean 0, relative gain undefined (left out of the ARG): ",
                    absl::StrJoin(l.stats.zero_baseline_tasks, ", "), "\n");
  }
  return md;
}

nlohmann::ordered_json EstimateJson(const Estimate& e) {
  // NaN (undefined) is written as null.
  return {{"mean", e.mean}, {"ci95", {e.ci95_lo, e.ci95_hi}}};
}

std::string StatisticsJson(const std::vector<ComparisonOutcome>& outcomes,
                           const std::vector<StatisticsLine>& lines,
                           const std::vector<ScoredArm>& arms, const StatisticsOptions& options) {
  nlohmann::ordered_json scored = nlohmann::ordered_json::array();
  for (const ScoredArm& a : arms) {
    scored.push_back({{"name", a.name},
                      {"dir", a.dir},
                      {"test_points", EstimateJson(a.score.mean_points)},
                      {"n_seeds", a.score.n_seeds},
                      {"n_tasks", a.score.n_tasks},
                      {"n_samples", a.score.n_samples}});
  }
  nlohmann::ordered_json comparisons = nlohmann::ordered_json::array();
  for (const StatisticsLine& l : lines) {
    const ComparisonOutcome& o = outcomes[l.outcome];
    comparisons.push_back({{"name", o.comparison.name},
                           {"group", l.group},
                           {"results", o.comparison.results_dir},
                           {"baseline", o.comparison.baseline_dir},
                           {"delta", EstimateJson(l.stats.delta_points)},
                           {"arg", EstimateJson(l.stats.arg)},
                           {"ratio_of_means", EstimateJson(l.stats.ratio_of_means)},
                           {"p_value", l.stats.p_value},
                           {"p_value_holm", l.p_holm},
                           {"n_seeds", l.stats.n_seeds},
                           {"n_tasks", l.stats.n_tasks},
                           {"n_samples", l.stats.n_samples},
                           {"zero_baseline_tasks", l.stats.zero_baseline_tasks},
                           {"only_in_results", o.paired.only_in_results},
                           {"only_in_baseline", o.paired.only_in_baseline}});
  }
  const nlohmann::ordered_json json = {
      {"units", "delta in points (100 x score difference); arg as a fraction"},
      {"bootstrap_draws", options.bootstrap_draws},
      {"seed", options.seed},
      {"holm", "over every p_value of this file"},
      {"arms", scored},
      {"comparisons", comparisons}};
  return json.dump(2) + "\n";
}

// The --arms entries, each read and scored.
absl::StatusOr<std::vector<ScoredArm>> ScoreArms(const StatisticsOptions& options,
                                                 const MetricTable& metrics) {
  std::vector<ScoredArm> arms;
  for (const std::string& entry : absl::GetFlag(FLAGS_arms)) {
    const std::vector<std::string> parts = absl::StrSplit(entry, ':');
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--arms entry '", entry, "': expected name:dir"));
    }
    TASKMOE_ASSIGN_OR_RETURN(const ArmResults arm, ReadArm(parts[1], metrics));
    TASKMOE_ASSIGN_OR_RETURN(ArmScore score, ScoreArm(arm, options));
    arms.push_back({parts[0], parts[1], score});
  }
  return arms;
}

std::string ArmsMarkdown(const std::vector<ScoredArm>& arms, const StatisticsOptions& options) {
  std::string md = absl::StrFormat(
      "\nMean test score in points; 95%% intervals from a hierarchical bootstrap (seeds, tasks, "
      "few-shot samples; %d draws, seed %d).\n\n"
      "| arm | seeds | tasks | samples | test score (points) [95%% CI] |\n"
      "| --- | --- | --- | --- | --- |\n",
      options.bootstrap_draws, options.seed);
  for (const ScoredArm& a : arms) {
    absl::StrAppend(&md, absl::StrFormat("| %s | %d | %d | %d | %s |\n", a.name,
                                         a.score.n_seeds, a.score.n_tasks, a.score.n_samples,
                                         Interval(a.score.mean_points, [](double v) {
                                           return absl::StrFormat("%.2f", v);
                                         })));
  }
  return md;
}

// Reads each comparison's arms, pairs them and computes every line; Holm over all of them.
absl::StatusOr<std::vector<StatisticsLine>> ComputeLines(std::vector<ComparisonOutcome>& outcomes,
                                                         const StatisticsOptions& options,
                                                         const MetricTable& metrics) {
  std::optional<std::map<std::string, bool>> controls;
  const std::string skills = absl::GetFlag(FLAGS_skills);
  if (!skills.empty()) {
    TASKMOE_ASSIGN_OR_RETURN(controls, ReadControlTasks(skills));
  }
  std::vector<StatisticsLine> lines;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    ComparisonOutcome& o = outcomes[i];
    TASKMOE_ASSIGN_OR_RETURN(const ArmResults results,
                             ReadArm(o.comparison.results_dir, metrics));
    TASKMOE_ASSIGN_OR_RETURN(const ArmResults baseline,
                             ReadArm(o.comparison.baseline_dir, metrics));
    TASKMOE_ASSIGN_OR_RETURN(o.paired, PairArms(results, baseline));
    std::vector<std::pair<std::string, const PairedResults*>> groups = {{"all", &o.paired}};
    SkillSplit split;
    if (controls.has_value()) {
      TASKMOE_ASSIGN_OR_RETURN(split, SplitBySkills(o.paired, *controls, skills));
      groups.push_back({"seen_skill", &split.seen_skill});
      groups.push_back({"control", &split.control});
    }
    for (const auto& [group, paired] : groups) {
      if (paired->seeds.empty()) {
        o.empty_groups.push_back(group);
        continue;
      }
      lines.push_back({i, group, CompareArms(*paired, options)});
    }
  }
  std::vector<double> p_values;
  for (const StatisticsLine& l : lines) p_values.push_back(l.stats.p_value);
  const std::vector<double> holm = HolmAdjust(p_values);
  for (size_t i = 0; i < lines.size(); ++i) lines[i].p_holm = holm[i];
  return lines;
}

std::string OutputPath(const std::string& flag_value, const std::string& results_dir,
                       const char* default_name) {
  if (!flag_value.empty() || results_dir.empty()) return flag_value;
  return results_dir + "/" + default_name;
}

// Every result.csv the command reads (of --results, --baseline, --compare and --arms), so that
// no output overwrites one: a flag's value only names the arm's directory.
absl::Status CheckOutputsSpareResults(const std::vector<Comparison>& comparisons,
                                      const std::vector<std::string>& outputs,
                                      const MetricTable& metrics) {
  std::vector<std::string> arm_dirs = {absl::GetFlag(FLAGS_results),
                                       absl::GetFlag(FLAGS_baseline)};
  for (const Comparison& c : comparisons) {
    arm_dirs.push_back(c.results_dir);
    arm_dirs.push_back(c.baseline_dir);
  }
  for (const std::string& entry : absl::GetFlag(FLAGS_arms)) {  // name:dir
    if (const size_t colon = entry.find(':'); colon != std::string::npos) {
      arm_dirs.push_back(entry.substr(colon + 1));
    }
  }
  std::vector<std::string> inputs;
  for (const std::string& dir : arm_dirs) {
    if (dir.empty()) continue;
    TASKMOE_ASSIGN_OR_RETURN(const ArmResults arm, ReadArm(dir, metrics));
    for (const SeedResults& seed : arm.seeds) {
      for (const TaskRows& task : seed.tasks) inputs.push_back(task.path);
    }
  }
  return CheckOutputsSpareInputs(outputs, inputs);
}

absl::Status Run() {
  const std::string results_dir = absl::GetFlag(FLAGS_results);
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<Comparison> comparisons, ParseComparisons());
  if (results_dir.empty() && comparisons.empty() && absl::GetFlag(FLAGS_arms).empty()) {
    return absl::InvalidArgumentError("--results, --compare or --arms is required");
  }
  const StatisticsOptions options{absl::GetFlag(FLAGS_bootstrap_draws), absl::GetFlag(FLAGS_seed)};
  if (options.bootstrap_draws < 1) {
    return absl::InvalidArgumentError("--bootstrap_draws must be at least 1");
  }
  if (comparisons.empty() && !absl::GetFlag(FLAGS_skills).empty()) {
    return absl::InvalidArgumentError("--skills needs --baseline or --compare");
  }
  if (comparisons.empty() && absl::GetFlag(FLAGS_arms).empty() &&
      !absl::GetFlag(FLAGS_json).empty()) {
    return absl::InvalidArgumentError("--json needs --baseline, --compare or --arms");
  }
  MetricTable metrics = MetricTable::CrossFit();
  if (!absl::GetFlag(FLAGS_metrics).empty()) {
    TASKMOE_ASSIGN_OR_RETURN(metrics, MetricTable::Load(absl::GetFlag(FLAGS_metrics)));
  }
  const std::string summary_csv =
      OutputPath(absl::GetFlag(FLAGS_summary_csv), results_dir, "summary.csv");
  const std::string arg_csv = OutputPath(absl::GetFlag(FLAGS_arg_csv), results_dir, "arg.csv");
  TASKMOE_RETURN_IF_ERROR(CheckOutputsSpareResults(
      comparisons, {summary_csv, arg_csv, absl::GetFlag(FLAGS_json)}, metrics));
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<ScoredArm> arms, ScoreArms(options, metrics));
  std::vector<TaskSummary> summaries;
  std::optional<ArgReport> report;
  if (!results_dir.empty()) {
    TASKMOE_ASSIGN_OR_RETURN(const ArmResults results, ReadArm(results_dir, metrics));
    TASKMOE_ASSIGN_OR_RETURN(summaries, SummarizeArm(results));
    if (!absl::GetFlag(FLAGS_baseline).empty()) {
      TASKMOE_ASSIGN_OR_RETURN(const ArmResults baseline,
                               ReadArm(absl::GetFlag(FLAGS_baseline), metrics));
      TASKMOE_ASSIGN_OR_RETURN(const std::vector<TaskSummary> base, SummarizeArm(baseline));
      TASKMOE_ASSIGN_OR_RETURN(report, ComputeArg(summaries, base));
    }
  }
  std::vector<ComparisonOutcome> outcomes;
  for (const Comparison& c : comparisons) outcomes.push_back({c, {}, {}});
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<StatisticsLine> lines,
                           ComputeLines(outcomes, options, metrics));

  std::string markdown;
  if (!results_dir.empty()) {
    TASKMOE_RETURN_IF_ERROR(WriteFileAtomically(summary_csv, SummaryCsv(summaries)));
    if (report.has_value()) {
      TASKMOE_RETURN_IF_ERROR(WriteFileAtomically(arg_csv, GainsCsv(*report)));
    }
    markdown = MarkdownReport(summaries, report);
  }
  if (!absl::GetFlag(FLAGS_json).empty()) {
    TASKMOE_RETURN_IF_ERROR(WriteFileAtomically(absl::GetFlag(FLAGS_json),
                                                StatisticsJson(outcomes, lines, arms, options)));
  }
  if (!arms.empty()) markdown += ArmsMarkdown(arms, options);
  if (!lines.empty()) markdown += StatisticsMarkdown(outcomes, lines, options);
  std::cout << markdown;
  return absl::OkStatus();
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "aggregate_results";
  tool.output_flags = {"summary_csv", "arg_csv", "json"};
  tool.usage =
      "Aggregates few-shot results (result.csv per task): mean/std per task, ARG against a "
      "baseline, and bootstrap intervals and p-values over seed directories.";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
