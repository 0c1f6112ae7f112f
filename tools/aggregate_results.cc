// Aggregates few-shot results (<results>/<task>/result.csv, as tools/finetune_tasks and the
// original code write them) into per-task mean/std over seeds, and with --baseline the average
// relative gain (ARG) over that baseline; CSV files + a markdown table on stdout.
//
//   aggregate_results --results=runs/ft_moe [--baseline=runs/ft_dense]
//                     [--summary_csv=runs/ft_moe/summary.csv] [--arg_csv=runs/ft_moe/arg.csv]
//
// Every input is read and checked before anything is written; files are replaced atomically.

#include <iostream>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "data/results.h"
#include "moe/base/file_io.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, results, "", "Directory of <task>/result.csv files.");
ABSL_FLAG(std::string, baseline, "",
          "Directory of the baseline's <task>/result.csv files; empty: no ARG.");
ABSL_FLAG(std::string, summary_csv, "",
          "Where to write the per-task mean/std CSV; empty: <results>/summary.csv.");
ABSL_FLAG(std::string, arg_csv, "",
          "Where to write the per-task gains and the ARG; empty: <results>/arg.csv.");

namespace taskmoe {
namespace {

absl::Status Run() {
  const std::string results_dir = absl::GetFlag(FLAGS_results);
  if (results_dir.empty()) return absl::InvalidArgumentError("--results is required");
  absl::StatusOr<std::vector<TaskSummary>> results = SummarizeResultsDirectory(results_dir);
  if (!results.ok()) return results.status();
  std::optional<ArgReport> report;
  if (!absl::GetFlag(FLAGS_baseline).empty()) {
    absl::StatusOr<std::vector<TaskSummary>> baseline =
        SummarizeResultsDirectory(absl::GetFlag(FLAGS_baseline));
    if (!baseline.ok()) return baseline.status();
    absl::StatusOr<ArgReport> arg = ComputeArg(*results, *baseline);
    if (!arg.ok()) return arg.status();
    report = *std::move(arg);
  }
  std::string summary_csv = absl::GetFlag(FLAGS_summary_csv);
  if (summary_csv.empty()) summary_csv = results_dir + "/summary.csv";
  if (absl::Status s = WriteFileAtomically(summary_csv, SummaryCsv(*results)); !s.ok()) return s;
  if (report.has_value()) {
    std::string arg_csv = absl::GetFlag(FLAGS_arg_csv);
    if (arg_csv.empty()) arg_csv = results_dir + "/arg.csv";
    if (absl::Status s = WriteFileAtomically(arg_csv, GainsCsv(*report)); !s.ok()) return s;
  }
  std::cout << MarkdownReport(*results, report);
  return absl::OkStatus();
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "aggregate_results";
  tool.usage =
      "Aggregates few-shot results (result.csv per task): mean/std per task and ARG against a baseline.";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
