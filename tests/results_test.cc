#include "data/results.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

void WriteFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// Two seeds per task, one non-best row each that aggregation must ignore.
constexpr char kTaskA[] =
    ",prefix,lr,bsz,dev_performance,test_performance\n"
    "0,a_16_1,1e-5,2,0.9,0.9\n"
    "1,a_16_1_best,1e-5,2,0.5,0.4\n"
    "2,a_16_2_best,3e-5,4,0.7,0.6\n";
constexpr char kTaskB[] =
    "prefix,lr,bsz,dev_performance,test_performance\n"
    "b_16_1_best,1e-5,2,0.2,0.2\n"
    "b_16_2_best,1e-5,2,0.4,0.4\n";

TEST(ResultsTest, ParsesColumnsByName) {
  absl::StatusOr<std::vector<ResultRow>> rows = ParseResultCsv(kTaskA, "a.csv");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[1].prefix, "a_16_1_best");
  EXPECT_EQ((*rows)[1].lr, "1e-5");
  EXPECT_EQ((*rows)[1].bsz, "2");
  EXPECT_DOUBLE_EQ((*rows)[2].dev_performance, 0.7);
  EXPECT_DOUBLE_EQ((*rows)[2].test_performance, 0.6);
}

TEST(ResultsTest, MalformedLinesNameFileAndLine) {
  absl::StatusOr<std::vector<ResultRow>> bad_number = ParseResultCsv(
      "prefix,lr,bsz,dev_performance,test_performance\nx_best,1,2,0.5,abc\n", "r.csv");
  ASSERT_FALSE(bad_number.ok());
  EXPECT_NE(bad_number.status().message().find("r.csv:2:"), std::string::npos)
      << bad_number.status();
  EXPECT_NE(bad_number.status().message().find("test_performance"), std::string::npos);
  absl::StatusOr<std::vector<ResultRow>> short_row = ParseResultCsv(
      "prefix,lr,bsz,dev_performance,test_performance\nx_best,1,2,0.5,0.5\nx_best,1\n", "r.csv");
  ASSERT_FALSE(short_row.ok());
  EXPECT_NE(short_row.status().message().find("r.csv:3:"), std::string::npos);
  absl::StatusOr<std::vector<ResultRow>> no_column =
      ParseResultCsv("prefix,lr,bsz,dev_performance\n", "r.csv");
  ASSERT_FALSE(no_column.ok());
  EXPECT_NE(no_column.status().message().find("test_performance"), std::string::npos);
}

TEST(ResultsTest, ScoresOutsideEveryMetricsRangeAndRepeatedRowsAreErrors) {
  const std::string header = "prefix,lr,bsz,dev_performance,test_performance\n";
  EXPECT_EQ(ParseResultCsv(header + "x_best,1,2,0.5,1e308\n", "r.csv").status().message(),
            "r.csv:2: test_performance 1e308 is outside [-1, 1], where every CrossFit metric lies");
  EXPECT_EQ(ParseResultCsv(header + "x_best,1,2,-1.5,0.5\n", "r.csv").status().message(),
            "r.csv:2: dev_performance -1.5 is outside [-1, 1], where every CrossFit metric lies");
  EXPECT_EQ(ParseResultCsv(header + "x_1,1,2,0.1,0.2\nx_best,1,2,0.5,0.5\nx_1,1,2,0.3,0.4\n",
                           "r.csv")
                .status()
                .message(),
            "r.csv:4: prefix x_1, lr 1, bsz 2 repeats line 2 (a run written twice?)");
  // The same prefix at another grid point is a row of its own; correlations may be negative.
  EXPECT_TRUE(ParseResultCsv(header + "x_1,1,2,0.1,0.2\nx_1,1,4,-0.3,-1\n", "r.csv").ok());
}

TEST(ResultsTest, ScoresOutsideTheTasksMetricRangeAreErrors) {
  const fs::path root = fs::path(::testing::TempDir()) / "results_ranges";
  fs::remove_all(root);
  // ag_news is scored with Classification-F1 in [0, 1], app_reviews with Pearson in [-1, 1].
  WriteFile(root / "ag_news/result.csv",
            "prefix,lr,bsz,dev_performance,test_performance\nag_best,1,1,0.5,-0.25\n");
  WriteFile(root / "app_reviews/result.csv",
            "prefix,lr,bsz,dev_performance,test_performance\napp_best,1,1,0.5,-0.25\n");
  absl::StatusOr<std::vector<TaskRows>> rows = ReadResultsDirectory(root.string());
  ASSERT_FALSE(rows.ok());
  EXPECT_EQ(rows.status().message(),
            (root / "ag_news/result.csv").string() +
                ": prefix ag_best scores -0.25, outside [0, 1], the range of the task's metric "
                "Classification-F1");
  fs::remove_all(root / "ag_news");
  EXPECT_TRUE(ReadResultsDirectory(root.string()).ok());
  // A table of the caller's (the gym's metrics.json) bounds its own tasks.
  absl::StatusOr<MetricTable> gym = MetricTable::Parse(R"({"app_reviews": "ACC"})", "gym.json");
  ASSERT_TRUE(gym.ok());
  EXPECT_FALSE(ReadResultsDirectory(root.string(), *gym).ok());
  // A file where the directory should be is named as such.
  EXPECT_EQ(ReadResultsDirectory((root / "app_reviews/result.csv").string()).status().message(),
            "results directory " + (root / "app_reviews/result.csv").string() +
                " is a file, expected a directory");
}

TEST(ResultsTest, MeanAndSampleStdOverBestRows) {
  absl::StatusOr<TaskSummary> a = SummarizeTask("a", *ParseResultCsv(kTaskA, "a"), "a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->seeds, 2);
  EXPECT_DOUBLE_EQ(a->dev_mean, 0.6);
  EXPECT_DOUBLE_EQ(a->test_mean, 0.5);
  // ddof = 1: sqrt(((0.4-0.5)^2 + (0.6-0.5)^2) / 1) = sqrt(0.02).
  EXPECT_NEAR(a->test_std, std::sqrt(0.02), 1e-12);
  EXPECT_NEAR(a->dev_std, std::sqrt(0.02), 1e-12);
  absl::StatusOr<TaskSummary> one = SummarizeTask(
      "c", *ParseResultCsv("prefix,lr,bsz,dev_performance,test_performance\nc_best,1,1,1,1\n", "c"),
      "c");
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(std::isnan(one->test_std));
  absl::StatusOr<TaskSummary> none = SummarizeTask(
      "e", *ParseResultCsv("prefix,lr,bsz,dev_performance,test_performance\ne_1,1,1,1,1\n", "e"),
      "e.csv");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("e.csv"), std::string::npos);
}

TEST(ResultsTest, ArgEqualsHandComputation) {
  const fs::path root = fs::path(::testing::TempDir()) / "results_arg";
  fs::remove_all(root);
  WriteFile(root / "moe/a/result.csv", kTaskA);
  WriteFile(root / "moe/b/result.csv", kTaskB);
  WriteFile(root / "moe/only_moe/result.csv", kTaskB);
  // Baseline test means: a 0.4, b 0.2; c only in the baseline.
  WriteFile(root / "dense/a/result.csv",
            "prefix,lr,bsz,dev_performance,test_performance\n"
            "a_16_1_best,1,1,0.3,0.3\na_16_2_best,1,1,0.5,0.5\n");
  WriteFile(root / "dense/b/result.csv",
            "prefix,lr,bsz,dev_performance,test_performance\nb_16_1_best,1,1,0.2,0.2\n");
  WriteFile(root / "dense/c/result.csv",
            "prefix,lr,bsz,dev_performance,test_performance\nc_16_1_best,1,1,0.2,0.2\n");
  absl::StatusOr<std::vector<TaskSummary>> moe = SummarizeResultsDirectory((root / "moe").string());
  absl::StatusOr<std::vector<TaskSummary>> dense =
      SummarizeResultsDirectory((root / "dense").string());
  ASSERT_TRUE(moe.ok()) << moe.status();
  ASSERT_TRUE(dense.ok()) << dense.status();
  ASSERT_EQ(moe->size(), 3u);
  EXPECT_EQ((*moe)[0].task, "a");
  EXPECT_EQ((*moe)[1].task, "b");
  absl::StatusOr<ArgReport> report = ComputeArg(*moe, *dense);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->gains.size(), 2u);
  // a: (0.5 - 0.4) / 0.4 = 0.25; b: (0.3 - 0.2) / 0.2 = 0.5; ARG = 0.375.
  EXPECT_NEAR(report->gains[0].relative_gain, 0.25, 1e-12);
  EXPECT_NEAR(report->gains[1].relative_gain, 0.5, 1e-12);
  EXPECT_NEAR(report->average_relative_gain, 0.375, 1e-12);
  EXPECT_EQ(report->only_in_results, std::vector<std::string>{"only_moe"});
  EXPECT_EQ(report->only_in_baseline, std::vector<std::string>{"c"});

  const OverallSummary overall = SummarizeOverall(*moe);
  EXPECT_EQ(overall.tasks, 3);
  EXPECT_NEAR(overall.test_mean, (0.5 + 0.3 + 0.3) / 3, 1e-12);
}

TEST(ResultsTest, UnequalGainsAverage) {
  std::vector<TaskSummary> results(2), baseline(2);
  results[0].task = baseline[0].task = "x";
  results[1].task = baseline[1].task = "y";
  results[0].test_mean = 0.6;
  baseline[0].test_mean = 0.5;  // +0.2
  results[1].test_mean = 0.3;
  baseline[1].test_mean = 0.4;  // -0.25
  absl::StatusOr<ArgReport> report = ComputeArg(results, baseline);
  ASSERT_TRUE(report.ok());
  EXPECT_NEAR(report->average_relative_gain, (0.2 - 0.25) / 2, 1e-12);
  // A baseline of 0 leaves that task's gain undefined: it is left out of the ARG and listed.
  baseline[1].test_mean = 0;
  report = ComputeArg(results, baseline);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_NEAR(report->average_relative_gain, 0.2, 1e-12);
  ASSERT_EQ(report->gains.size(), 1u);
  EXPECT_EQ(report->zero_baseline, std::vector<std::string>{"y"});
  EXPECT_TRUE(absl::StrContains(MarkdownReport(results, *report),
                                "baseline test 0, relative gain undefined (left out): y"));
  // Nothing left to average: an error that names the tasks.
  baseline[0].test_mean = 0;
  report = ComputeArg(results, baseline);
  ASSERT_FALSE(report.ok());
  EXPECT_TRUE(absl::StrContains(report.status().message(), "x, y")) << report.status();
  baseline[0].task = "p";
  baseline[1].task = "q";
  EXPECT_FALSE(ComputeArg(results, baseline).ok());
}

TEST(ResultsTest, MalformedFileInDirectoryIsNamed) {
  const fs::path root = fs::path(::testing::TempDir()) / "results_bad";
  fs::remove_all(root);
  WriteFile(root / "a/result.csv", kTaskA);
  WriteFile(root / "b/result.csv", "prefix,lr,bsz,dev_performance,test_performance\nb_best,1,1,x,1\n");
  absl::StatusOr<std::vector<TaskSummary>> summaries = SummarizeResultsDirectory(root.string());
  ASSERT_FALSE(summaries.ok());
  EXPECT_NE(summaries.status().message().find((root / "b/result.csv").string() + ":2:"),
            std::string::npos)
      << summaries.status();
  EXPECT_FALSE(SummarizeResultsDirectory((root / "missing").string()).ok());
}

TEST(ResultsTest, SummaryCsvHasTheOriginalLayout) {
  TaskSummary t;
  t.task = "a";
  t.seeds = 2;
  t.dev_mean = 0.5;
  t.dev_std = 0.1;
  t.test_mean = 0.25;
  t.test_std = 0.125;
  EXPECT_EQ(SummaryCsv({t}),
            ",task,entry,dev_performance,test_performance\n"
            "0,a,mean,0.5,0.25\n"
            "1,a,std,0.1,0.125\n");
  ArgReport report;
  report.gains.push_back({"a", 0.2, 0.25, 0.25});
  report.average_relative_gain = 0.25;
  EXPECT_EQ(GainsCsv(report),
            "task,baseline_test_performance,test_performance,relative_gain\n"
            "a,0.2,0.25,0.25\n"
            "ARG,,,0.25\n");
  const std::string md = MarkdownReport({t}, report);
  EXPECT_NE(md.find("| a | 2 | 0.5000 ± 0.1000 | 0.2500 ± 0.1250 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| **ARG over 1 tasks** | | | +25.00% |"), std::string::npos) << md;
}

}  // namespace
}  // namespace taskmoe
