// Scores predictions with a Few-shot Gym metric, exactly as the original evaluation code does.
//
//   evaluate --predictions=pred.txt --data=glue-cola_16_100_test.tsv       (metric from the task)
//   evaluate --predictions=pred.txt --references=gold.txt --metric=Rouge-L --per_example
//
// Predictions: one per line. References: a CrossFit TSV (--data; every field after the input is
// a valid output) or a file with one example per line, outputs separated by tabs
// (--references). The metric is --metric, or the metric of --task (default: the task named by
// the --data file) in --metric_table (default: CrossFit's table, compiled in).
// Prints "<metric> <score>"; with --per_example first one "<example index>\t<score>" line per
// example (mean-based metrics only).

#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "data/crossfit.h"
#include "data/metrics.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, predictions, "", "Predictions file, one prediction per line.");
ABSL_FLAG(std::string, data, "", "CrossFit TSV with the references (input<TAB>output...).");
ABSL_FLAG(std::string, references, "",
          "References file instead of --data: one example per line, outputs separated by tabs.");
ABSL_FLAG(std::string, task, "", "Task whose metric to use (default: the task of --data).");
ABSL_FLAG(std::string, metric, "", "Metric name (EM, ACC, QA-F1, Classification-F1, "
                                   "Matthew-Correlation, Pearson-Correlation, Rouge-L).");
ABSL_FLAG(std::string, metric_table, "",
          "Task -> metric JSON (default: CrossFit's metrics.json, compiled in).");
ABSL_FLAG(bool, strip_predictions, true,
          "Strip surrounding whitespace from predictions, as the originals do before scoring.");
ABSL_FLAG(bool, per_example, false, "Also print every example's score.");

namespace taskmoe {
namespace {

absl::StatusOr<std::vector<std::vector<std::string>>> LoadReferences() {
  const std::string data = absl::GetFlag(FLAGS_data);
  const std::string references = absl::GetFlag(FLAGS_references);
  if (data.empty() == references.empty()) {
    return absl::InvalidArgumentError("give exactly one of --data and --references");
  }
  if (!references.empty()) return ReadReferencesFile(references);
  absl::StatusOr<std::vector<Example>> examples = ReadTsv(data);
  if (!examples.ok()) return examples.status();
  std::vector<std::vector<std::string>> outputs;
  outputs.reserve(examples->size());
  for (Example& example : *examples) outputs.push_back(std::move(example.outputs));
  return outputs;
}

absl::StatusOr<Metric> ChooseMetric() {
  const std::string metric = absl::GetFlag(FLAGS_metric);
  std::string task = absl::GetFlag(FLAGS_task);
  if (!metric.empty()) {
    if (!task.empty()) return absl::InvalidArgumentError("give --metric or --task, not both");
    return ParseMetric(metric);
  }
  if (task.empty()) task = TaskNameOfFile(absl::GetFlag(FLAGS_data));
  if (task.empty()) {
    return absl::InvalidArgumentError(
        "give --metric, or --task, or a --data file named <task>_<k>_<seed>_<split>.tsv");
  }
  const std::string table_path = absl::GetFlag(FLAGS_metric_table);
  if (table_path.empty()) return MetricTable::CrossFit().MetricOf(task);
  absl::StatusOr<MetricTable> table = MetricTable::Load(table_path);
  if (!table.ok()) return table.status();
  return table->MetricOf(task);
}

absl::Status Run() {
  if (absl::GetFlag(FLAGS_predictions).empty()) {
    return absl::InvalidArgumentError("--predictions is required");
  }
  absl::StatusOr<Metric> metric = ChooseMetric();
  if (!metric.ok()) return metric.status();
  absl::StatusOr<std::vector<std::string>> predictions =
      ReadPredictionsFile(absl::GetFlag(FLAGS_predictions), absl::GetFlag(FLAGS_strip_predictions));
  if (!predictions.ok()) return predictions.status();
  absl::StatusOr<std::vector<std::vector<std::string>>> references = LoadReferences();
  if (!references.ok()) return references.status();

  if (absl::GetFlag(FLAGS_per_example)) {
    absl::StatusOr<std::vector<double>> scores =
        EvaluatePerExample(*predictions, *references, *metric);
    if (!scores.ok()) return scores.status();
    for (size_t i = 0; i < scores->size(); ++i) {
      std::cout << absl::StrFormat("%d\t%.17g\n", i, (*scores)[i]);
    }
  }
  absl::StatusOr<double> score = Evaluate(*predictions, *references, *metric);
  if (!score.ok()) return score.status();
  std::cout << absl::StrFormat("%s %.17g\n", std::string(MetricName(*metric)), *score);
  return absl::OkStatus();
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "evaluate";
  tool.usage =
      "Scores predictions with a Few-shot Gym metric.\n"
      "  evaluate --predictions=pred.txt --data=<task>_<k>_<seed>_test.tsv [--per_example]\n"
      "  evaluate --predictions=pred.txt --references=gold.txt --metric=Rouge-L";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
