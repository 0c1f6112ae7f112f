#include "data/result_statistics.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

constexpr char kHeader[] = "prefix,lr,bsz,dev_performance,test_performance\n";

void WriteFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// Standard normal by Box-Muller from the 64-bit engine, the same on every standard library.
double Normal(std::mt19937_64& rng) {
  const double u1 = (rng() >> 11) * 0x1.0p-53 + 0x1.0p-54;  // (0, 1)
  const double u2 = (rng() >> 11) * 0x1.0p-53;
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
}

// Known-truth data: task t's baseline level is 0.3 + 0.4 t / (tasks - 1), the results are that
// level times (1 + gain) plus, on the difference, a seed effect, a (seed, task) effect and
// per-sample noise, all of mean 0 (standard deviations as given).
struct Simulation {
  int seeds = 6, tasks = 8, samples = 4;
  double gain = 0;
  double seed_sd = 0.01, cell_sd = 0.02, sample_sd = 0.05;
};

PairedResults Simulate(const Simulation& sim, std::mt19937_64& rng) {
  PairedResults paired;
  for (int s = 0; s < sim.seeds; ++s) {
    PairedSeed seed{absl::StrCat("seed", s), {}};
    const double seed_effect = sim.seed_sd * Normal(rng);
    for (int t = 0; t < sim.tasks; ++t) {
      PairedTask task{absl::StrCat("task", t), {}};
      const double level = 0.3 + 0.4 * t / (sim.tasks - 1);
      const double cell_effect = sim.cell_sd * Normal(rng);
      for (int k = 0; k < sim.samples; ++k) {
        const double baseline = level + sim.sample_sd * Normal(rng);
        const double result =
            level * (1 + sim.gain) + seed_effect + cell_effect + sim.sample_sd * Normal(rng);
        task.samples.push_back({absl::StrCat("p", k, "_best"), result, baseline});
      }
      seed.tasks.push_back(std::move(task));
    }
    paired.seeds.push_back(std::move(seed));
  }
  return paired;
}

bool Covers(const Estimate& e, double value) { return e.ci95_lo <= value && value <= e.ci95_hi; }

TEST(ResultStatisticsTest, PlantedEffectIsInsideItsIntervals) {
  std::mt19937_64 rng(7);
  Simulation sim;
  sim.gain = 0.1;
  const ComparisonStatistics stats = CompareArms(Simulate(sim, rng), StatisticsOptions{});
  // Mean baseline level 0.5, so +10% is +5 points; the ARG and the ratio of means are 1.1.
  EXPECT_TRUE(Covers(stats.delta_points, 5.0))
      << stats.delta_points.ci95_lo << " " << stats.delta_points.ci95_hi;
  EXPECT_TRUE(Covers(stats.arg, 0.1)) << stats.arg.ci95_lo << " " << stats.arg.ci95_hi;
  EXPECT_TRUE(Covers(stats.ratio_of_means, 1.1))
      << stats.ratio_of_means.ci95_lo << " " << stats.ratio_of_means.ci95_hi;
  EXPECT_GT(stats.delta_points.ci95_lo, 0);
  EXPECT_LT(stats.p_value, 0.001);
  EXPECT_EQ(stats.n_seeds, 6);
  EXPECT_EQ(stats.n_tasks, 8);
  EXPECT_EQ(stats.n_samples, 6 * 8 * 4);
  EXPECT_TRUE(stats.zero_baseline_tasks.empty());
}

// Null data sets (no effect) with `seed_sd` on the difference; fraction of 95% intervals that
// cover 0 and of p-values <= 0.05 and < 0.5. 300 data sets: the binomial standard deviation of a
// 95% rate is 1.3 points, so the bands below are wide; the seeds are fixed, so no test flakes.
struct NullRates {
  double coverage = 0, rejected = 0, below_half = 0;
};
NullRates SimulateNull(double seed_sd) {
  constexpr int kDataSets = 300;
  std::mt19937_64 rng(2024);
  StatisticsOptions options;
  options.bootstrap_draws = 1000;
  Simulation sim;
  sim.seed_sd = seed_sd;
  NullRates rates;
  for (int i = 0; i < kDataSets; ++i) {
    options.seed = i + 1;
    const ComparisonStatistics stats = CompareArms(Simulate(sim, rng), options);
    rates.coverage += Covers(stats.delta_points, 0) / double{kDataSets};
    rates.rejected += (stats.p_value <= 0.05) / double{kDataSets};
    rates.below_half += (stats.p_value < 0.5) / double{kDataSets};
  }
  return rates;
}

// With seed effects of the size of the (seed, task) effects the interval covers 0 in about 95%
// of data sets (0.967 measured). Resampling every level double-counts the lower levels' noise,
// so with negligible seed effects the interval is conservative (0.99-1.0 measured).
TEST(ResultStatisticsTest, NullIntervalCoversZeroAboutNinetyFivePercent) {
  const NullRates rates = SimulateNull(/*seed_sd=*/0.02);
  EXPECT_GE(rates.coverage, 0.90);
  EXPECT_LE(rates.coverage, 0.99);
}

// The sign-flip test is exact when the (seed, task) differences are exchangeable in sign, i.e.
// without a seed effect shared by a seed's tasks (0.047 rejected, 0.49 below 0.5 measured). A
// shared seed effect makes it anti-conservative (0.23 rejected at seed_sd 0.02).
TEST(ResultStatisticsTest, NullSignFlipPValuesAreAboutUniform) {
  const NullRates rates = SimulateNull(/*seed_sd=*/0);
  EXPECT_LE(rates.rejected, 0.10);
  EXPECT_GE(rates.below_half, 0.38);
  EXPECT_LE(rates.below_half, 0.62);
}

TEST(ResultStatisticsTest, PointEstimatesAverageHierarchically) {
  // Seed a: task x differs by +0.1 and task y by +0.3 (seed mean +0.2); seed b: task x by 0.
  // Over seeds +0.1, i.e. 10 points (a flat mean over the three tasks would give 13.3).
  PairedResults paired;
  paired.seeds = {{"a", {{"x", {{"p_best", 0.5, 0.4}}}, {"y", {{"p_best", 0.5, 0.2}}}}},
                  {"b", {{"x", {{"p_best", 0.4, 0.4}}}}}};
  StatisticsOptions options;
  options.bootstrap_draws = 200;
  const ComparisonStatistics stats = CompareArms(paired, options);
  EXPECT_NEAR(stats.delta_points.mean, 10, 1e-9);
  // ARG over (seed, task): (0.25 + 1.5 + 0) / 3.
  EXPECT_NEAR(stats.arg.mean, (0.25 + 1.5) / 3, 1e-12);
  // Means: results (0.5 + 0.4) / 2, baseline (0.3 + 0.4) / 2.
  EXPECT_NEAR(stats.ratio_of_means.mean, 0.9 / 0.7, 1e-12);
  EXPECT_EQ(stats.n_tasks, 2);
  // The same seed gives the same intervals.
  const ComparisonStatistics again = CompareArms(paired, options);
  EXPECT_EQ(again.delta_points.ci95_lo, stats.delta_points.ci95_lo);
  EXPECT_EQ(again.arg.ci95_hi, stats.arg.ci95_hi);
}

TEST(ResultStatisticsTest, ConstantDifferenceGivesADegenerateInterval) {
  PairedResults paired;
  for (const char* seed : {"1", "2", "3"}) {
    paired.seeds.push_back({seed, {{"t", {{"a_best", 0.55, 0.5}, {"b_best", 0.35, 0.3}}}}});
  }
  const ComparisonStatistics stats = CompareArms(paired, StatisticsOptions{});
  EXPECT_NEAR(stats.delta_points.ci95_lo, 5, 1e-9);
  EXPECT_NEAR(stats.delta_points.ci95_hi, 5, 1e-9);
  // Three (seed, task) units all +5: only the two patterns of equal signs reach |15|.
  EXPECT_DOUBLE_EQ(stats.p_value, 2.0 / 8);
}

TEST(ResultStatisticsTest, ZeroBaselineTasksAreListedAndLeftOutOfTheArg) {
  PairedResults paired;
  paired.seeds = {
      {"s", {{"t0", {{"a_best", 0.2, 0}, {"b_best", 0.4, 0}}}, {"t1", {{"a_best", 0.6, 0.5}}}}}};
  StatisticsOptions options;
  options.bootstrap_draws = 100;
  ComparisonStatistics stats = CompareArms(paired, options);
  EXPECT_EQ(stats.zero_baseline_tasks, std::vector<std::string>{"s/t0"});
  EXPECT_NEAR(stats.arg.mean, 0.2, 1e-12);
  EXPECT_NEAR(stats.delta_points.mean, (30 + 10) / 2.0, 1e-9);
  // Every baseline 0: no ARG and no ratio, as NaN rather than a made-up number.
  paired.seeds[0].tasks.pop_back();
  stats = CompareArms(paired, options);
  EXPECT_TRUE(std::isnan(stats.arg.mean));
  EXPECT_TRUE(std::isnan(stats.ratio_of_means.ci95_lo));
  EXPECT_NEAR(stats.delta_points.mean, 30, 1e-9);
}

TEST(ResultStatisticsTest, SignFlipEnumeratesSmallCasesExactly) {
  // +-1 +-2 +-4 takes each of +-1, +-3, +-5, +-7 once; observed 1 - 2 + 4 = 3: six of eight
  // patterns reach |3|.
  EXPECT_DOUBLE_EQ(SignFlipPValue({1, -2, 4}, 8, 1), 6.0 / 8);
  // +-1 +-2 +-3: |6| is reached by the two patterns of equal signs only.
  EXPECT_DOUBLE_EQ(SignFlipPValue({1, 2, 3}, 10000, 1), 2.0 / 8);
  EXPECT_DOUBLE_EQ(SignFlipPValue({0, 0}, 10, 1), 1.0);
  // Fewer draws than patterns: random flips, p = (1 + #) / (1 + draws), never 0.
  const double p = SignFlipPValue({1, 2, 3}, 7, 1);
  EXPECT_GE(p, 1.0 / 8);
  EXPECT_NEAR(p * 8, std::round(p * 8), 1e-12);
}

TEST(ResultStatisticsTest, HolmAdjustsInStepDownOrder) {
  // Sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 -> kept at 0.06.
  const std::vector<double> adjusted = HolmAdjust({0.01, 0.04, 0.03, 0.005});
  ASSERT_EQ(adjusted.size(), 4u);
  EXPECT_NEAR(adjusted[0], 0.03, 1e-12);
  EXPECT_NEAR(adjusted[1], 0.06, 1e-12);
  EXPECT_NEAR(adjusted[2], 0.06, 1e-12);
  EXPECT_NEAR(adjusted[3], 0.02, 1e-12);
  EXPECT_EQ(HolmAdjust({0.5, 0.6}), (std::vector<double>{1.0, 1.0}));
  EXPECT_EQ(HolmAdjust({0.2}), std::vector<double>{0.2});
}

TEST(ResultStatisticsTest, PairsBySeedTaskAndPrefixAndListsTheRest) {
  const fs::path root = fs::path(::testing::TempDir()) / "stats_pairing";
  fs::remove_all(root);
  WriteFile(root / "moe/s1/a/result.csv",
            absl::StrCat(kHeader, "a_1,1,1,0.9,0.9\na_1_best,1,1,0.5,0.5\na_2_best,1,1,0.6,0.7\n"));
  WriteFile(root / "moe/s2/a/result.csv", absl::StrCat(kHeader, "a_1_best,1,1,0.5,0.4\n"));
  WriteFile(root / "moe/s3/a/result.csv", absl::StrCat(kHeader, "a_1_best,1,1,0.5,0.4\n"));
  WriteFile(root / "dense/s1/a/result.csv", absl::StrCat(kHeader, "a_1_best,1,1,0.5,0.3\n"));
  WriteFile(root / "dense/s1/b/result.csv", absl::StrCat(kHeader, "b_1_best,1,1,0.5,0.3\n"));
  WriteFile(root / "dense/s2/a/result.csv", absl::StrCat(kHeader, "a_1_best,1,1,0.5,0.2\n"));
  absl::StatusOr<ArmResults> moe = ReadArm((root / "moe").string());
  absl::StatusOr<ArmResults> dense = ReadArm((root / "dense").string());
  ASSERT_TRUE(moe.ok()) << moe.status();
  ASSERT_TRUE(dense.ok()) << dense.status();
  absl::StatusOr<PairedResults> paired = PairArms(*moe, *dense);
  ASSERT_TRUE(paired.ok()) << paired.status();
  ASSERT_EQ(paired->seeds.size(), 2u);
  EXPECT_EQ(paired->seeds[0].seed, "s1");
  ASSERT_EQ(paired->seeds[0].tasks.size(), 1u);
  ASSERT_EQ(paired->seeds[0].tasks[0].samples.size(), 1u);
  EXPECT_DOUBLE_EQ(paired->seeds[0].tasks[0].samples[0].result, 0.5);
  EXPECT_DOUBLE_EQ(paired->seeds[0].tasks[0].samples[0].baseline, 0.3);
  EXPECT_DOUBLE_EQ(paired->seeds[1].tasks[0].samples[0].baseline, 0.2);
  EXPECT_EQ(paired->only_in_results, (std::vector<std::string>{"s1/a/a_2_best", "s3"}));
  EXPECT_EQ(paired->only_in_baseline, std::vector<std::string>{"s1/b"});
  // The per-task table pools every seed's `_best` rows: 0.5, 0.7, 0.4, 0.4.
  absl::StatusOr<std::vector<TaskSummary>> summary = SummarizeArm(*moe);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ((*summary)[0].seeds, 4);
  EXPECT_NEAR((*summary)[0].test_mean, 0.5, 1e-12);

  // A one-seed arm (<task>/result.csv directly) shares no seed name with a seed-directory arm.
  WriteFile(root / "flat/a/result.csv", absl::StrCat(kHeader, "a_1_best,1,1,0.5,0.3\n"));
  absl::StatusOr<ArmResults> flat = ReadArm((root / "flat").string());
  ASSERT_TRUE(flat.ok()) << flat.status();
  EXPECT_EQ(flat->seeds[0].name, kTopLevelSeed);
  absl::StatusOr<PairedResults> none = PairArms(*flat, *dense);
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(absl::StrContains(none.status().message(), "no (seed directory, task, prefix)"))
      << none.status();
}

TEST(ResultStatisticsTest, ScoreArmAveragesHierarchicallyWithAnInterval) {
  const fs::path root = fs::path(::testing::TempDir()) / "stats_score_arm";
  fs::remove_all(root);
  // Seed s1: task a (0.2 and 0.4 -> 0.3), task b 0.5 -> seed mean 0.4; seed s2: task a 0.6.
  WriteFile(root / "s1/a/result.csv",
            absl::StrCat(kHeader, "a_1_best,1,1,0,0.2\na_2_best,1,1,0,0.4\n"));
  WriteFile(root / "s1/b/result.csv", absl::StrCat(kHeader, "b_1_best,1,1,0,0.5\n"));
  WriteFile(root / "s2/a/result.csv", absl::StrCat(kHeader, "a_1_best,1,1,0,0.6\n"));
  absl::StatusOr<ArmResults> arm = ReadArm(root.string());
  ASSERT_TRUE(arm.ok()) << arm.status();
  StatisticsOptions options;
  options.bootstrap_draws = 2000;
  absl::StatusOr<ArmScore> score = ScoreArm(*arm, options);
  ASSERT_TRUE(score.ok()) << score.status();
  EXPECT_NEAR(score->mean_points.mean, 50, 1e-9);  // (40 + 60) / 2
  EXPECT_EQ(score->n_seeds, 2);
  EXPECT_EQ(score->n_tasks, 2);
  EXPECT_EQ(score->n_samples, 4);
  // Draws range over resampled means between the lowest (all 0.2) and highest (all 0.6).
  EXPECT_LT(score->mean_points.ci95_lo, 50);
  EXPECT_GT(score->mean_points.ci95_hi, 50);
  EXPECT_GE(score->mean_points.ci95_lo, 20);
  EXPECT_LE(score->mean_points.ci95_hi, 60);
}

TEST(ResultStatisticsTest, BadLayoutsAreNamedErrors) {
  const fs::path root = fs::path(::testing::TempDir()) / "stats_errors";
  fs::remove_all(root);
  const auto message = [](const absl::StatusOr<ArmResults>& arm) {
    return arm.ok() ? std::string("ok") : std::string(arm.status().message());
  };
  fs::create_directories(root / "empty");
  EXPECT_TRUE(absl::StrContains(message(ReadArm((root / "empty").string())), "neither"));
  EXPECT_FALSE(ReadArm((root / "missing").string()).ok());
  // A seed directory without result files.
  WriteFile(root / "arm/s1/a/result.csv", absl::StrCat(kHeader, "a_1_best,1,1,0.5,0.3\n"));
  fs::create_directories(root / "arm/s2/a");
  EXPECT_TRUE(absl::StrContains(message(ReadArm((root / "arm").string())), "arm/s2"))
      << message(ReadArm((root / "arm").string()));
  // Tasks and seed directories side by side.
  WriteFile(root / "mixed/a/result.csv", absl::StrCat(kHeader, "a_1_best,1,1,0.5,0.3\n"));
  WriteFile(root / "mixed/s1/a/result.csv", absl::StrCat(kHeader, "a_1_best,1,1,0.5,0.3\n"));
  EXPECT_TRUE(absl::StrContains(message(ReadArm((root / "mixed").string())), "mixes"));
  // A malformed file, by file and line.
  WriteFile(root / "bad/s1/a/result.csv", absl::StrCat(kHeader, "a_1_best,1,1,0.5,x\n"));
  EXPECT_TRUE(absl::StrContains(message(ReadArm((root / "bad").string())),
                                (root / "bad/s1/a/result.csv").string() + ":2:"));
  // A prefix twice in one file cannot be paired.
  WriteFile(root / "twice/a/result.csv",
            absl::StrCat(kHeader, "a_1_best,1,1,0.5,0.3\na_1_best,2,1,0.5,0.4\n"));
  absl::StatusOr<ArmResults> twice = ReadArm((root / "twice").string());
  ASSERT_TRUE(twice.ok()) << twice.status();
  absl::StatusOr<PairedResults> paired = PairArms(*twice, *twice);
  ASSERT_FALSE(paired.ok());
  EXPECT_TRUE(absl::StrContains(paired.status().message(), "appears twice")) << paired.status();
}

TEST(ResultStatisticsTest, SkillsSplitSeenSkillAndControlTasks) {
  const fs::path root = fs::path(::testing::TempDir()) / "stats_skills";
  fs::remove_all(root);
  const std::string path = (root / "skills.json").string();
  WriteFile(path,
            R"({"skills": [{"name": "sort", "control": false}, {"name": "rot", "control": true},
                     {"name": "filter"}],
                     "tasks": [{"name": "t_seen", "skills": ["sort", "filter"]},
                               {"name": "t_control", "skills": ["filter", "rot"]}]})");
  absl::StatusOr<std::map<std::string, bool>> controls = ReadControlTasks(path);
  ASSERT_TRUE(controls.ok()) << controls.status();
  EXPECT_EQ(*controls, (std::map<std::string, bool>{{"t_control", true}, {"t_seen", false}}));
  PairedResults paired;
  paired.seeds = {
      {"s", {{"t_control", {{"a_best", 0.5, 0.4}}}, {"t_seen", {{"a_best", 0.5, 0.5}}}}}};
  absl::StatusOr<SkillSplit> split = SplitBySkills(paired, *controls, path);
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_EQ(split->control.seeds.size(), 1u);
  EXPECT_EQ(split->control.seeds[0].tasks[0].task, "t_control");
  EXPECT_EQ(split->seen_skill.seeds[0].tasks[0].task, "t_seen");
  paired.seeds[0].tasks.push_back({"t_unknown", {{"a_best", 0.5, 0.5}}});
  split = SplitBySkills(paired, *controls, path);
  ASSERT_FALSE(split.ok());
  EXPECT_TRUE(absl::StrContains(split.status().message(), path + ": task 't_unknown'"))
      << split.status();
  WriteFile(path, R"({"skills": [], "tasks": [{"name": "t", "skills": ["nope"]}]})");
  EXPECT_TRUE(absl::StrContains(ReadControlTasks(path).status().message(), "\"nope\""));
  WriteFile(path, "{not json");
  EXPECT_TRUE(absl::StrContains(ReadControlTasks(path).status().message(), path));
}

}  // namespace
}  // namespace taskmoe
