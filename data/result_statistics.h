#ifndef TASKMOE_DATA_RESULT_STATISTICS_H_
#define TASKMOE_DATA_RESULT_STATISTICS_H_

// Statistics for comparing two arms of few-shot results (e.g. MoE against dense) over several
// training seeds. An arm is a directory of seed directories (any names), each holding
// `<task>/result.csv` as data/results.h reads it; a directory holding `<task>/result.csv` itself
// is one seed (named kTopLevelSeed). The two arms' test scores are paired by (seed directory
// name, task, `_best` prefix), and the comparison reports:
//  - delta: mean difference in points (100 x score difference), averaged hierarchically (per
//    task over its few-shot samples, per seed over its tasks, then over seeds);
//  - ARG: mean over (seed, task) of the relative gain of the task means; (seed, task) pairs whose
//    baseline mean is 0 have no relative gain and are left out (and listed);
//  - ratio of means: the hierarchical mean of the results over that of the baseline;
// each with a 95% percentile interval from one hierarchical bootstrap (resample seeds, then
// tasks within each drawn seed, then few-shot samples within each drawn task), and a paired
// sign-flip permutation p-value over the (seed, task) mean differences. The bootstrap treats
// tasks as nested in seeds and the permutation test treats the (seed, task) differences as
// exchangeable in sign; both are the chosen design, stated here so a reader can judge it.

#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/results.h"

namespace taskmoe {

// The seed name of an arm directory that holds `<task>/result.csv` itself.
inline constexpr char kTopLevelSeed[] = ".";

struct SeedResults {
  std::string name;  // the seed directory's name, or kTopLevelSeed
  std::vector<TaskRows> tasks;
};

struct ArmResults {
  std::string dir;
  std::vector<SeedResults> seeds;  // sorted by name
};

// Reads an arm. Errors name the file or directory: `dir` missing or empty, a seed directory
// without `<task>/result.csv`, a directory mixing `<task>/result.csv` with seed directories, a
// malformed result.csv (with its line), a score outside its task's metric range in `metrics`.
absl::StatusOr<ArmResults> ReadArm(const std::string& dir,
                                   const MetricTable& metrics = MetricTable::CrossFit());

// Per-task mean/std over the `_best` rows of every seed of the arm (for one seed exactly
// SummarizeResultsDirectory's table).
absl::StatusOr<std::vector<TaskSummary>> SummarizeArm(const ArmResults& arm);

// One few-shot sample's test score in both arms (scores as in result.csv, in [0, 1]).
struct PairedSample {
  std::string prefix;
  double result = 0;
  double baseline = 0;
};
struct PairedTask {
  std::string task;
  std::vector<PairedSample> samples;  // sorted by prefix, never empty
};
struct PairedSeed {
  std::string seed;
  std::vector<PairedTask> tasks;  // sorted by task, never empty
};
struct PairedResults {
  std::vector<PairedSeed> seeds;  // sorted by seed
  // Unpaired items, as "seed", "seed/task" or "seed/task/prefix" (the largest unit missing on
  // the other side), sorted; they take no part in the statistics.
  std::vector<std::string> only_in_results;
  std::vector<std::string> only_in_baseline;
};

// Pairs the `_best` rows of two arms. Errors: a prefix twice in one result.csv (named), nothing
// in common between the arms.
absl::StatusOr<PairedResults> PairArms(const ArmResults& results, const ArmResults& baseline);

// Task name -> whether it is a control task (one of its skills has "control": true), from a
// skill gym's skills.json. Errors name the file: unreadable, not JSON, missing fields, a task
// naming a skill the file does not define.
absl::StatusOr<std::map<std::string, bool>> ReadControlTasks(const std::string& skills_path);

// The paired results split into tasks made of seen skills and control tasks (either may be
// empty). Errors: a task that `controls` lacks, named with `skills_path`.
struct SkillSplit {
  PairedResults seen_skill;
  PairedResults control;
};
absl::StatusOr<SkillSplit> SplitBySkills(const PairedResults& paired,
                                         const std::map<std::string, bool>& controls,
                                         const std::string& skills_path);

struct StatisticsOptions {
  int64_t bootstrap_draws = 10000;  // also the number of random sign flips
  uint64_t seed = 1;
};

// A point estimate from the data as observed and the 2.5 and 97.5 percentiles of its bootstrap
// draws; NaN where undefined (e.g. ARG when every baseline task mean is 0).
struct Estimate {
  double mean = std::numeric_limits<double>::quiet_NaN();
  double ci95_lo = std::numeric_limits<double>::quiet_NaN();
  double ci95_hi = std::numeric_limits<double>::quiet_NaN();
};

struct ComparisonStatistics {
  Estimate delta_points;
  Estimate arg;
  Estimate ratio_of_means;
  double p_value = 1;
  int64_t n_seeds = 0;
  int64_t n_tasks = 0;                           // distinct task names
  int64_t n_samples = 0;                         // paired (seed, task, prefix) items
  std::vector<std::string> zero_baseline_tasks;  // "seed/task", left out of the ARG
};

// The bootstrap and the permutation test, each from its own std::mt19937_64 seeded with
// options.seed, so a comparison's numbers do not depend on what else one call computes.
// `paired` must hold at least one seed (CHECK).
ComparisonStatistics CompareArms(const PairedResults& paired, const StatisticsOptions& options);

// One arm's hierarchical mean test score in points (per task over its samples, per seed over its
// tasks, then over seeds) with the interval of CompareArms' hierarchical bootstrap.
struct ArmScore {
  Estimate mean_points;
  int64_t n_seeds = 0;
  int64_t n_tasks = 0;
  int64_t n_samples = 0;
};
absl::StatusOr<ArmScore> ScoreArm(const ArmResults& arm, const StatisticsOptions& options);

// Two-sided paired sign-flip p-value of mean(differences) = 0, statistic |mean|: exact over all
// 2^n sign patterns when 2^n <= draws (p = #{|flipped| >= |observed|} / 2^n), otherwise `draws`
// random patterns (p = (1 + #) / (1 + draws)). `differences` non-empty, draws >= 1 (CHECK).
double SignFlipPValue(const std::vector<double>& differences, int64_t draws, uint64_t seed);

// Holm's step-down adjustment of p-values, returned in the input order.
std::vector<double> HolmAdjust(const std::vector<double>& p_values);

}  // namespace taskmoe

#endif  // TASKMOE_DATA_RESULT_STATISTICS_H_
