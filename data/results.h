#ifndef TASKMOE_DATA_RESULTS_H_
#define TASKMOE_DATA_RESULTS_H_

// Few-shot results as the original code keeps them: one `<dir>/<task>/result.csv` per task with
// columns prefix,lr,bsz,dev_performance,test_performance (pandas may add an unnamed index
// column first), one row per (prefix, lr, bsz) tried and one `<prefix>_best` row per few-shot
// prefix (seed) holding the selected configuration. Aggregation follows the original:
// per-task mean and sample standard deviation (pandas' ddof = 1) over the `_best` rows, and the
// average relative gain (ARG) of one set of results over a baseline, computed on the test means
// of the tasks both sets hold.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/metrics.h"

namespace taskmoe {

struct ResultRow {
  std::string prefix;
  std::string lr;
  std::string bsz;
  double dev_performance = 0;
  double test_performance = 0;
};

// Parses result.csv text; the header names the columns (any order, extra columns ignored).
// Errors name `source_name`, the line, and what was expected: a score that is not a number in
// [-1, 1] (the range every CrossFit metric lies in), a (prefix, lr, bsz) row given twice.
absl::StatusOr<std::vector<ResultRow>> ParseResultCsv(const std::string& text,
                                                      const std::string& source_name);

// The file every task directory holds.
inline constexpr char kResultFile[] = "result.csv";

// Suffix of the rows that hold a prefix's selected configuration.
inline constexpr char kBestRowSuffix[] = "_best";

// Mean and sample standard deviation over the seeds (the `_best` rows) of one task. With a
// single seed the standard deviation is NaN, as pandas reports it.
struct TaskSummary {
  std::string task;
  int64_t seeds = 0;
  double dev_mean = 0;
  double dev_std = 0;
  double test_mean = 0;
  double test_std = 0;
};

// Summary of one task's rows; an error when no row ends in `_best`.
absl::StatusOr<TaskSummary> SummarizeTask(const std::string& task,
                                          const std::vector<ResultRow>& rows,
                                          const std::string& source_name);

// One task's parsed result.csv and the path it was read from (for error messages).
struct TaskRows {
  std::string task;
  std::string path;
  std::vector<ResultRow> rows;
};

// Every `<dir>/<task>/result.csv`, parsed, sorted by task. Errors: `dir` missing, no result.csv
// at all, a malformed file (named with its line), a score outside the range of the task's metric
// in `metrics` (tasks it does not list are held to [-1, 1]).
absl::StatusOr<std::vector<TaskRows>> ReadResultsDirectory(
    const std::string& dir, const MetricTable& metrics = MetricTable::CrossFit());

// An error naming the file when a score of `task` lies outside the range of its metric in
// `metrics` (none for a task the table does not list).
absl::Status CheckMetricRange(const TaskRows& task, const MetricTable& metrics);

// SummarizeTask of every ReadResultsDirectory entry; the same errors, and a task without `_best`
// rows.
absl::StatusOr<std::vector<TaskSummary>> SummarizeResultsDirectory(const std::string& dir);

// Mean over tasks of the per-task means.
struct OverallSummary {
  int64_t tasks = 0;
  double dev_mean = 0;
  double test_mean = 0;
};
OverallSummary SummarizeOverall(const std::vector<TaskSummary>& tasks);

// Relative gain of one task's test mean over the baseline's: (score - baseline) / baseline.
struct TaskGain {
  std::string task;
  double baseline_test = 0;
  double test = 0;
  double relative_gain = 0;
};

struct ArgReport {
  std::vector<TaskGain> gains;  // the tasks both sets hold, sorted
  double average_relative_gain = 0;
  // Tasks only one side holds (left out of the ARG, as the original's inner join does).
  std::vector<std::string> only_in_results;
  std::vector<std::string> only_in_baseline;
  // Tasks whose baseline test mean is 0: their relative gain is undefined, so they are left out
  // of the ARG too (and listed, so a reader sees how many tasks it covers).
  std::vector<std::string> zero_baseline;
};

// Errors: no task in common with a nonzero baseline.
absl::StatusOr<ArgReport> ComputeArg(const std::vector<TaskSummary>& results,
                                     const std::vector<TaskSummary>& baseline);

// The original's summary CSV: ",task,entry,dev_performance,test_performance", a "mean" and a
// "std" row per task, numbered from 0.
std::string SummaryCsv(const std::vector<TaskSummary>& tasks);

// task,baseline_test_performance,test_performance,relative_gain per task, then an "ARG" row.
std::string GainsCsv(const ArgReport& report);

// Markdown tables: per task mean ± std (dev, test), the overall row, and with a report the
// per-task gains and the ARG.
std::string MarkdownReport(const std::vector<TaskSummary>& tasks,
                           const std::optional<ArgReport>& report);

}  // namespace taskmoe

#endif  // TASKMOE_DATA_RESULTS_H_
