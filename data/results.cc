#include "data/results.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> SplitCsvLine(absl::string_view line) {
  absl::ConsumeSuffix(&line, "\r");
  return absl::StrSplit(line, ',');
}

// Mean and sample standard deviation (ddof = 1; NaN for a single value).
std::pair<double, double> MeanAndStd(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  const double mean = sum / values.size();
  if (values.size() < 2) return {mean, std::nan("")};
  double squares = 0;
  for (double v : values) squares += (v - mean) * (v - mean);
  return {mean, std::sqrt(squares / (values.size() - 1))};
}

std::string Number(double value) { return absl::StrFormat("%.6g", value); }

}  // namespace

absl::StatusOr<std::vector<ResultRow>> ParseResultCsv(const std::string& text,
                                                      const std::string& source_name) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  if (lines.empty()) return absl::InvalidArgumentError(source_name + ": empty file, expected a header");
  const std::vector<std::string> header = SplitCsvLine(lines[0]);
  const std::vector<std::string> required = {"prefix", "lr", "bsz", "dev_performance",
                                             "test_performance"};
  std::map<std::string, size_t> column;
  for (size_t i = 0; i < header.size(); ++i) column[header[i]] = i;
  for (const std::string& name : required) {
    if (!column.count(name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          source_name, ":1: header lacks column '", name, "' (expected ",
          absl::StrJoin(required, ","), ")"));
    }
  }
  std::vector<ResultRow> rows;
  std::map<std::tuple<std::string, std::string, std::string>, size_t> line_of_row;
  for (size_t n = 1; n < lines.size(); ++n) {
    const std::string where = absl::StrCat(source_name, ":", n + 1, ": ");
    if (lines[n].empty() || lines[n] == "\r") continue;
    const std::vector<std::string> fields = SplitCsvLine(lines[n]);
    if (fields.size() != header.size()) {
      return absl::InvalidArgumentError(absl::StrCat(where, fields.size(),
                                                     " fields, expected ", header.size()));
    }
    ResultRow row;
    row.prefix = fields[column["prefix"]];
    row.lr = fields[column["lr"]];
    row.bsz = fields[column["bsz"]];
    if (row.prefix.empty()) return absl::InvalidArgumentError(where + "empty prefix");
    for (const auto& [name, value] : {std::pair{"dev_performance", &row.dev_performance},
                                      std::pair{"test_performance", &row.test_performance}}) {
      const std::string& field = fields[column[name]];
      if (!absl::SimpleAtod(field, value) || !std::isfinite(*value)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, name, " '", field, "' is not a finite number"));
      }
      if (*value < -1 || *value > 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, name, " ", field, " is outside [-1, 1], where every CrossFit metric lies"));
      }
    }
    const auto [first, inserted] =
        line_of_row.emplace(std::make_tuple(row.prefix, row.lr, row.bsz), n + 1);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "prefix ", row.prefix, ", lr ", row.lr, ", bsz ", row.bsz,
          " repeats line ", first->second, " (a run written twice?)"));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

absl::StatusOr<TaskSummary> SummarizeTask(const std::string& task,
                                          const std::vector<ResultRow>& rows,
                                          const std::string& source_name) {
  std::vector<double> dev;
  std::vector<double> test;
  for (const ResultRow& row : rows) {
    if (!absl::EndsWith(row.prefix, kBestRowSuffix)) continue;
    dev.push_back(row.dev_performance);
    test.push_back(row.test_performance);
  }
  if (dev.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_name, ": no row whose prefix ends in '", kBestRowSuffix,
        "' (the selected configuration of each few-shot prefix)"));
  }
  TaskSummary summary;
  summary.task = task;
  summary.seeds = static_cast<int64_t>(dev.size());
  std::tie(summary.dev_mean, summary.dev_std) = MeanAndStd(dev);
  std::tie(summary.test_mean, summary.test_std) = MeanAndStd(test);
  return summary;
}

absl::Status CheckMetricRange(const TaskRows& task, const MetricTable& metrics) {
  const absl::StatusOr<Metric> metric = metrics.MetricOf(task.task);
  if (!metric.ok()) return absl::OkStatus();  // not in the table: [-1, 1] was checked
  const auto [low, high] = MetricRange(*metric);
  for (const ResultRow& row : task.rows) {
    for (const double score : {row.dev_performance, row.test_performance}) {
      if (score < low || score > high) {
        return absl::InvalidArgumentError(absl::StrCat(
            task.path, ": prefix ", row.prefix, " scores ", score, ", outside [", low, ", ",
            high, "], the range of the task's metric ", std::string(MetricName(*metric))));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TaskRows>> ReadResultsDirectory(const std::string& dir,
                                                           const MetricTable& metrics) {
  std::error_code error;
  TASKMOE_RETURN_IF_ERROR(CheckDirectory(dir, "results directory"));
  std::vector<std::string> tasks;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    if (entry.is_directory() && fs::exists(entry.path() / kResultFile)) {
      tasks.push_back(entry.path().filename().string());
    }
  }
  if (error) return absl::InternalError(absl::StrCat("cannot list ", dir, ": ", error.message()));
  if (tasks.empty()) {
    return absl::NotFoundError(
        absl::StrCat(dir, ": no <task>/", kResultFile, " in this directory"));
  }
  std::sort(tasks.begin(), tasks.end());
  std::vector<TaskRows> result;
  for (const std::string& task : tasks) {
    const std::string path = absl::StrCat(dir, "/", task, "/", kResultFile);
    TASKMOE_ASSIGN_OR_RETURN(const std::string text, ReadFileBytes(path));
    TASKMOE_ASSIGN_OR_RETURN(std::vector<ResultRow> rows, ParseResultCsv(text, path));
    result.push_back({task, path, std::move(rows)});
    TASKMOE_RETURN_IF_ERROR(CheckMetricRange(result.back(), metrics));
  }
  return result;
}

absl::StatusOr<std::vector<TaskSummary>> SummarizeResultsDirectory(const std::string& dir) {
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<TaskRows> tasks, ReadResultsDirectory(dir));
  std::vector<TaskSummary> summaries;
  for (const TaskRows& t : tasks) {
    TASKMOE_ASSIGN_OR_RETURN(TaskSummary summary, SummarizeTask(t.task, t.rows, t.path));
    summaries.push_back(std::move(summary));
  }
  return summaries;
}

OverallSummary SummarizeOverall(const std::vector<TaskSummary>& tasks) {
  OverallSummary overall;
  overall.tasks = static_cast<int64_t>(tasks.size());
  if (tasks.empty()) return overall;
  for (const TaskSummary& t : tasks) {
    overall.dev_mean += t.dev_mean;
    overall.test_mean += t.test_mean;
  }
  overall.dev_mean /= tasks.size();
  overall.test_mean /= tasks.size();
  return overall;
}

absl::StatusOr<ArgReport> ComputeArg(const std::vector<TaskSummary>& results,
                                     const std::vector<TaskSummary>& baseline) {
  std::map<std::string, double> baseline_test;
  for (const TaskSummary& t : baseline) baseline_test[t.task] = t.test_mean;
  ArgReport report;
  std::set<std::string> in_results;
  for (const TaskSummary& t : results) {
    in_results.insert(t.task);
    auto it = baseline_test.find(t.task);
    if (it == baseline_test.end()) {
      report.only_in_results.push_back(t.task);
      continue;
    }
    if (it->second == 0) {
      report.zero_baseline.push_back(t.task);
      continue;
    }
    report.gains.push_back({t.task, it->second, t.test_mean, (t.test_mean - it->second) / it->second});
  }
  for (const auto& [task, unused] : baseline_test) {
    if (!in_results.count(task)) report.only_in_baseline.push_back(task);
  }
  if (report.gains.empty()) {
    return absl::InvalidArgumentError(
        report.zero_baseline.empty()
            ? "the results and the baseline have no task in common"
            : absl::StrCat("the baseline's test mean is 0 on every common task (",
                           absl::StrJoin(report.zero_baseline, ", "),
                           "), so no relative gain is defined"));
  }
  std::sort(report.gains.begin(), report.gains.end(),
            [](const TaskGain& a, const TaskGain& b) { return a.task < b.task; });
  std::sort(report.only_in_results.begin(), report.only_in_results.end());
  std::sort(report.zero_baseline.begin(), report.zero_baseline.end());
  for (const TaskGain& gain : report.gains) report.average_relative_gain += gain.relative_gain;
  report.average_relative_gain /= report.gains.size();
  return report;
}

std::string SummaryCsv(const std::vector<TaskSummary>& tasks) {
  std::string csv = ",task,entry,dev_performance,test_performance\n";
  int64_t index = 0;
  for (const TaskSummary& t : tasks) {
    absl::StrAppend(&csv, index++, ",", t.task, ",mean,", Number(t.dev_mean), ",",
                    Number(t.test_mean), "\n");
    absl::StrAppend(&csv, index++, ",", t.task, ",std,", Number(t.dev_std), ",",
                    Number(t.test_std), "\n");
  }
  return csv;
}

std::string GainsCsv(const ArgReport& report) {
  std::string csv = "task,baseline_test_performance,test_performance,relative_gain\n";
  for (const TaskGain& g : report.gains) {
    absl::StrAppend(&csv, g.task, ",", Number(g.baseline_test), ",", Number(g.test), ",",
                    Number(g.relative_gain), "\n");
  }
  absl::StrAppend(&csv, "ARG,,,", Number(report.average_relative_gain), "\n");
  return csv;
}

std::string MarkdownReport(const std::vector<TaskSummary>& tasks,
                           const std::optional<ArgReport>& report) {
  std::string md = "| task | seeds | dev (mean ± std) | test (mean ± std) |\n| --- | --- | --- | --- |\n";
  for (const TaskSummary& t : tasks) {
    absl::StrAppend(&md, absl::StrFormat("| %s | %d | %.4f ± %.4f | %.4f ± %.4f |\n", t.task,
                                         t.seeds, t.dev_mean, t.dev_std, t.test_mean,
                                         t.test_std));
  }
  const OverallSummary overall = SummarizeOverall(tasks);
  absl::StrAppend(&md, absl::StrFormat("| **mean over %d tasks** | | %.4f | %.4f |\n",
                                       overall.tasks, overall.dev_mean, overall.test_mean));
  if (!report.has_value()) return md;
  absl::StrAppend(&md, "\n| task | baseline test | test | relative gain |\n| --- | --- | --- | --- |\n");
  for (const TaskGain& g : report->gains) {
    absl::StrAppend(&md, absl::StrFormat("| %s | %.4f | %.4f | %+.2f%% |\n", g.task,
                                         g.baseline_test, g.test, 100 * g.relative_gain));
  }
  absl::StrAppend(&md, absl::StrFormat("| **ARG over %d tasks** | | | %+.2f%% |\n",
                                       report->gains.size(), 100 * report->average_relative_gain));
  if (!report->only_in_results.empty()) {
    absl::StrAppend(&md, "\nnot in the baseline (left out): ",
                    absl::StrJoin(report->only_in_results, ", "), "\n");
  }
  if (!report->only_in_baseline.empty()) {
    absl::StrAppend(&md, "\nonly in the baseline (left out): ",
                    absl::StrJoin(report->only_in_baseline, ", "), "\n");
  }
  if (!report->zero_baseline.empty()) {
    absl::StrAppend(&md, "\nbaseline test 0, relative gain undefined (left out): ",
                    absl::StrJoin(report->zero_baseline, ", "), "\n");
  }
  return md;
}

}  // namespace taskmoe
