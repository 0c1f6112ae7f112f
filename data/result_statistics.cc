#include "data/result_statistics.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "data/skills_file.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Whether `dir` holds a `<task>/result.csv`, i.e. is a seed directory rather than a task's.
bool HoldsResultFiles(const fs::path& dir) {
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    if (entry.is_directory() && fs::exists(entry.path() / kResultFile)) return true;
  }
  return false;
}

// "seed/task/prefix" with the top-level seed left out, so a one-seed arm reads as before.
std::string ItemName(const std::string& seed, const std::string& rest = "") {
  if (rest.empty()) return seed;
  return seed == kTopLevelSeed ? rest : absl::StrCat(seed, "/", rest);
}

// Calls `visit(key, a_value_or_null, b_value_or_null)` for every key of either map, in order.
template <typename A, typename B, typename Visit>
void ForEachKey(const std::map<std::string, A>& a, const std::map<std::string, B>& b, Visit visit) {
  std::set<std::string> keys;
  for (const auto& [key, unused] : a) keys.insert(key);
  for (const auto& [key, unused] : b) keys.insert(key);
  for (const std::string& key : keys) {
    auto in_a = a.find(key);
    auto in_b = b.find(key);
    visit(key, in_a == a.end() ? nullptr : &in_a->second,
          in_b == b.end() ? nullptr : &in_b->second);
  }
}

// Test score of every `_best` prefix of one task's file; a repeated prefix could not be paired.
absl::StatusOr<std::map<std::string, double>> BestScores(const TaskRows& task) {
  std::map<std::string, double> scores;
  for (const ResultRow& row : task.rows) {
    if (!absl::EndsWith(row.prefix, kBestRowSuffix)) continue;
    if (!scores.emplace(row.prefix, row.test_performance).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(task.path, ": prefix '", row.prefix, "' appears twice"));
    }
  }
  return scores;
}

// Pairs the tasks of one seed present in both arms; unpaired items go to `paired`'s lists.
absl::StatusOr<PairedSeed> PairSeed(const std::string& seed, const SeedResults& results,
                                    const SeedResults& baseline, PairedResults& paired) {
  std::map<std::string, const TaskRows*> result_tasks, baseline_tasks;
  for (const TaskRows& t : results.tasks) result_tasks[t.task] = &t;
  for (const TaskRows& t : baseline.tasks) baseline_tasks[t.task] = &t;
  PairedSeed out{seed, {}};
  absl::Status status;
  ForEachKey(
      result_tasks, baseline_tasks,
      [&](const std::string& task, const TaskRows* const* r, const TaskRows* const* b) {
        if (!status.ok()) return;
        if (r == nullptr || b == nullptr) {
          (r ? paired.only_in_results : paired.only_in_baseline).push_back(ItemName(seed, task));
          return;
        }
        absl::StatusOr<std::map<std::string, double>> r_scores = BestScores(**r);
        absl::StatusOr<std::map<std::string, double>> b_scores = BestScores(**b);
        if (!r_scores.ok() || !b_scores.ok()) {
          status = r_scores.ok() ? b_scores.status() : r_scores.status();
          return;
        }
        PairedTask paired_task{task, {}};
        ForEachKey(*r_scores, *b_scores,
                   [&](const std::string& prefix, const double* rs, const double* bs) {
                     if (rs && bs) {
                       paired_task.samples.push_back({prefix, *rs, *bs});
                     } else {
                       (rs ? paired.only_in_results : paired.only_in_baseline)
                           .push_back(ItemName(seed, absl::StrCat(task, "/", prefix)));
                     }
                   });
        if (!paired_task.samples.empty()) out.tasks.push_back(std::move(paired_task));
      });
  if (!status.ok()) return status;
  return out;
}

// Index in [0, n) from one 64-bit draw (multiply-shift): unlike std::uniform_int_distribution
// it is the same on every standard library, so a seed gives the same intervals everywhere.
size_t UniformIndex(std::mt19937_64& rng, size_t n) {
  return static_cast<size_t>((static_cast<unsigned __int128>(rng()) * n) >> 64);
}

struct Draw {
  double delta_points = 0;
  double arg = kNaN;
  double ratio_of_means = kNaN;
};

// The three statistics on one draw; `pick(n, i)` chooses the i-th of n units at each level
// (the identity for the observed data, uniform with replacement for a bootstrap draw).
template <typename Pick>
Draw Evaluate(const PairedResults& paired, Pick&& pick) {
  const size_t seeds = paired.seeds.size();
  double result_sum = 0, baseline_sum = 0, gain_sum = 0;
  int64_t gains = 0;
  for (size_t i = 0; i < seeds; ++i) {
    const PairedSeed& seed = paired.seeds[pick(seeds, i)];
    const size_t tasks = seed.tasks.size();
    double seed_result = 0, seed_baseline = 0;
    for (size_t j = 0; j < tasks; ++j) {
      const PairedTask& task = seed.tasks[pick(tasks, j)];
      const size_t samples = task.samples.size();
      double result = 0, baseline = 0;
      for (size_t k = 0; k < samples; ++k) {
        const PairedSample& sample = task.samples[pick(samples, k)];
        result += sample.result;
        baseline += sample.baseline;
      }
      result /= samples;
      baseline /= samples;
      if (baseline != 0) {
        gain_sum += (result - baseline) / baseline;
        ++gains;
      }
      seed_result += result;
      seed_baseline += baseline;
    }
    result_sum += seed_result / tasks;
    baseline_sum += seed_baseline / tasks;
  }
  const double result_mean = result_sum / seeds, baseline_mean = baseline_sum / seeds;
  Draw draw;
  draw.delta_points = 100 * (result_mean - baseline_mean);
  if (gains > 0) draw.arg = gain_sum / gains;
  if (baseline_mean != 0) draw.ratio_of_means = result_mean / baseline_mean;
  return draw;
}

// Linear-interpolated percentile (numpy's default) of the defined values; NaN if none is.
double Percentile(std::vector<double> values, double q) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return std::isnan(v); }),
               values.end());
  if (values.empty()) return kNaN;
  std::sort(values.begin(), values.end());
  const double position = q * (values.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, values.size() - 1);
  return values[below] + (position - below) * (values[above] - values[below]);
}

Estimate MakeEstimate(double observed, const std::vector<double>& draws) {
  Estimate estimate;
  estimate.mean = observed;
  if (std::isnan(observed)) return estimate;
  estimate.ci95_lo = Percentile(draws, 0.025);
  estimate.ci95_hi = Percentile(draws, 0.975);
  return estimate;
}

}  // namespace

absl::StatusOr<ArmResults> ReadArm(const std::string& dir, const MetricTable& metrics) {
  std::error_code error;
  TASKMOE_RETURN_IF_ERROR(CheckDirectory(dir, "results directory"));
  std::vector<std::string> task_dirs, other_dirs;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    if (!entry.is_directory()) continue;
    (fs::exists(entry.path() / kResultFile) ? task_dirs : other_dirs)
        .push_back(entry.path().filename().string());
  }
  if (error) return absl::InternalError(absl::StrCat("cannot list ", dir, ": ", error.message()));
  ArmResults arm{dir, {}};
  if (!task_dirs.empty()) {
    for (const std::string& other : other_dirs) {
      if (HoldsResultFiles(fs::path(dir) / other)) {
        return absl::InvalidArgumentError(
            absl::StrCat(dir, " mixes task directories (", task_dirs.front(),
                         "/result.csv) with seed directories (", other, "/<task>/result.csv)"));
      }
    }
    TASKMOE_ASSIGN_OR_RETURN(std::vector<TaskRows> tasks, ReadResultsDirectory(dir, metrics));
    arm.seeds.push_back({kTopLevelSeed, std::move(tasks)});
    return arm;
  }
  if (other_dirs.empty()) {
    return absl::NotFoundError(
        absl::StrCat(dir, ": neither <task>/result.csv nor seed directories of <task>/result.csv"));
  }
  std::sort(other_dirs.begin(), other_dirs.end());
  for (const std::string& seed : other_dirs) {
    TASKMOE_ASSIGN_OR_RETURN(std::vector<TaskRows> tasks,
                             ReadResultsDirectory(absl::StrCat(dir, "/", seed), metrics));
    arm.seeds.push_back({seed, std::move(tasks)});
  }
  return arm;
}

absl::StatusOr<std::vector<TaskSummary>> SummarizeArm(const ArmResults& arm) {
  std::map<std::string, TaskRows> pooled;
  for (const SeedResults& seed : arm.seeds) {
    for (const TaskRows& t : seed.tasks) {
      // Each file must hold `_best` rows itself, not merely the pool of them.
      TASKMOE_RETURN_IF_ERROR(SummarizeTask(t.task, t.rows, t.path).status());
      TaskRows& all = pooled[t.task];
      all.path =
          arm.seeds.size() == 1 ? t.path : absl::StrCat(arm.dir, "/*/", t.task, "/", kResultFile);
      all.rows.insert(all.rows.end(), t.rows.begin(), t.rows.end());
    }
  }
  std::vector<TaskSummary> summaries;
  for (const auto& [task, all] : pooled) {
    TASKMOE_ASSIGN_OR_RETURN(TaskSummary summary, SummarizeTask(task, all.rows, all.path));
    summaries.push_back(std::move(summary));
  }
  return summaries;
}

absl::StatusOr<PairedResults> PairArms(const ArmResults& results, const ArmResults& baseline) {
  std::map<std::string, const SeedResults*> result_seeds, baseline_seeds;
  for (const SeedResults& s : results.seeds) result_seeds[s.name] = &s;
  for (const SeedResults& s : baseline.seeds) baseline_seeds[s.name] = &s;
  PairedResults paired;
  absl::Status status;
  ForEachKey(
      result_seeds, baseline_seeds,
      [&](const std::string& seed, const SeedResults* const* r, const SeedResults* const* b) {
        if (!status.ok()) return;
        if (r == nullptr || b == nullptr) {
          (r ? paired.only_in_results : paired.only_in_baseline).push_back(seed);
          return;
        }
        absl::StatusOr<PairedSeed> paired_seed = PairSeed(seed, **r, **b, paired);
        if (!paired_seed.ok()) {
          status = paired_seed.status();
        } else if (!paired_seed->tasks.empty()) {
          paired.seeds.push_back(*std::move(paired_seed));
        }
      });
  if (!status.ok()) return status;
  if (paired.seeds.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no (seed directory, task, prefix) in common between the results ",
                     results.dir, " and the baseline ", baseline.dir,
                     "; only in the results: ", absl::StrJoin(paired.only_in_results, ", "),
                     "; only in the baseline: ", absl::StrJoin(paired.only_in_baseline, ", ")));
  }
  std::sort(paired.only_in_results.begin(), paired.only_in_results.end());
  std::sort(paired.only_in_baseline.begin(), paired.only_in_baseline.end());
  return paired;
}

absl::StatusOr<std::map<std::string, bool>> ReadControlTasks(const std::string& skills_path) {
  TASKMOE_ASSIGN_OR_RETURN(const TaskSkillTable table, ReadSkillsJson(skills_path));
  std::map<std::string, bool> controls;
  for (const auto& entry : table.skills) controls[entry.first] = table.IsControlTask(entry.first);
  return controls;
}

absl::StatusOr<SkillSplit> SplitBySkills(const PairedResults& paired,
                                         const std::map<std::string, bool>& controls,
                                         const std::string& skills_path) {
  SkillSplit split;
  for (const PairedSeed& seed : paired.seeds) {
    PairedSeed seen{seed.seed, {}}, control{seed.seed, {}};
    for (const PairedTask& task : seed.tasks) {
      auto it = controls.find(task.task);
      if (it == controls.end()) {
        return absl::InvalidArgumentError(absl::StrCat(skills_path, ": task '", task.task,
                                                       "' (seed ", seed.seed, ") is not listed"));
      }
      (it->second ? control : seen).tasks.push_back(task);
    }
    if (!seen.tasks.empty()) split.seen_skill.seeds.push_back(std::move(seen));
    if (!control.tasks.empty()) split.control.seeds.push_back(std::move(control));
  }
  return split;
}

ComparisonStatistics CompareArms(const PairedResults& paired, const StatisticsOptions& options) {
  CHECK(!paired.seeds.empty()) << "CompareArms needs at least one paired seed";
  CHECK_GE(options.bootstrap_draws, 1);
  ComparisonStatistics stats;
  stats.n_seeds = static_cast<int64_t>(paired.seeds.size());
  std::set<std::string> tasks;
  std::vector<double> task_differences;  // points, one per (seed, task)
  for (const PairedSeed& seed : paired.seeds) {
    for (const PairedTask& task : seed.tasks) {
      tasks.insert(task.task);
      double difference = 0, baseline = 0;
      for (const PairedSample& s : task.samples) {
        difference += s.result - s.baseline;
        baseline += s.baseline;
      }
      stats.n_samples += static_cast<int64_t>(task.samples.size());
      task_differences.push_back(100 * difference / task.samples.size());
      if (baseline == 0) stats.zero_baseline_tasks.push_back(ItemName(seed.seed, task.task));
    }
  }
  stats.n_tasks = static_cast<int64_t>(tasks.size());
  const Draw observed = Evaluate(paired, [](size_t, size_t i) { return i; });
  std::mt19937_64 rng(options.seed);
  std::vector<double> delta, arg, ratio;
  for (int64_t d = 0; d < options.bootstrap_draws; ++d) {
    const Draw draw = Evaluate(paired, [&rng](size_t n, size_t) { return UniformIndex(rng, n); });
    delta.push_back(draw.delta_points);
    arg.push_back(draw.arg);
    ratio.push_back(draw.ratio_of_means);
  }
  stats.delta_points = MakeEstimate(observed.delta_points, delta);
  stats.arg = MakeEstimate(observed.arg, arg);
  stats.ratio_of_means = MakeEstimate(observed.ratio_of_means, ratio);
  stats.p_value = SignFlipPValue(task_differences, options.bootstrap_draws, options.seed);
  return stats;
}

absl::StatusOr<ArmScore> ScoreArm(const ArmResults& arm, const StatisticsOptions& options) {
  // The arm against a zero baseline: the mean difference is the arm's own mean, resampled
  // exactly as in a comparison.
  TASKMOE_ASSIGN_OR_RETURN(PairedResults paired, PairArms(arm, arm));
  for (PairedSeed& seed : paired.seeds) {
    for (PairedTask& task : seed.tasks) {
      for (PairedSample& sample : task.samples) sample.baseline = 0;
    }
  }
  const ComparisonStatistics stats = CompareArms(paired, options);
  return ArmScore{stats.delta_points, stats.n_seeds, stats.n_tasks, stats.n_samples};
}

double SignFlipPValue(const std::vector<double>& differences, int64_t draws, uint64_t seed) {
  CHECK(!differences.empty());
  CHECK_GE(draws, 1);
  const size_t n = differences.size();
  double observed = 0, magnitude = 0;
  for (double d : differences) {
    observed += d;
    magnitude += std::abs(d);
  }
  // |mean| ranks like |sum| for a fixed n. Sign patterns with the observed |sum| in exact
  // arithmetic may differ from it by rounding: count them as at least as extreme.
  observed = std::abs(observed);
  const double tolerance = 1e-9 * magnitude;
  int64_t extreme = 0;
  if (n < 63 && (int64_t{1} << n) <= draws) {
    const uint64_t patterns = uint64_t{1} << n;
    for (uint64_t bits = 0; bits < patterns; ++bits) {
      double sum = 0;
      for (size_t i = 0; i < n; ++i) sum += (bits >> i & 1) ? -differences[i] : differences[i];
      extreme += std::abs(sum) >= observed - tolerance;
    }
    return static_cast<double>(extreme) / patterns;
  }
  std::mt19937_64 rng(seed);
  for (int64_t d = 0; d < draws; ++d) {
    double sum = 0;
    uint64_t bits = 0;
    for (size_t i = 0; i < n; ++i) {
      if (i % 64 == 0) bits = rng();
      sum += (bits >> (i % 64) & 1) ? -differences[i] : differences[i];
    }
    extreme += std::abs(sum) >= observed - tolerance;
  }
  return static_cast<double>(1 + extreme) / (1 + draws);
}

std::vector<double> HolmAdjust(const std::vector<double>& p_values) {
  const size_t m = p_values.size();
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return p_values[a] < p_values[b]; });
  std::vector<double> adjusted(m);
  double running = 0;  // the step-down maximum keeps the adjusted p-values in the raw order
  for (size_t k = 0; k < m; ++k) {
    running = std::max(running, std::min(1.0, (m - k) * p_values[order[k]]));
    adjusted[order[k]] = running;
  }
  return adjusted;
}

}  // namespace taskmoe
