#ifndef TASKMOE_DATA_METRICS_H_
#define TASKMOE_DATA_METRICS_H_

// The Few-shot Gym's evaluation metrics, computed exactly as CrossTaskMoE's
// `my_datasets/metrics.py` (with numpy, scikit-learn, scipy and the `rouge` package) computes
// them: EM, ACC, QA-F1, Classification-F1, Matthew-Correlation, Pearson-Correlation, Rouge-L.
// Predictions are taken as given (the originals .strip() them before scoring; callers do that).
// References are the valid outputs of each example as read from the TSV (d[1:]).

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace taskmoe {

enum class Metric {
  kExactMatch,          // "EM"
  kAccuracy,            // "ACC"
  kQaF1,                // "QA-F1"
  kClassificationF1,    // "Classification-F1"
  kMatthewCorrelation,  // "Matthew-Correlation"
  kPearsonCorrelation,  // "Pearson-Correlation"
  kRougeL,              // "Rouge-L"
};

// Name as written in metrics.json; parsing errors list the known names.
std::string_view MetricName(Metric metric);
absl::StatusOr<Metric> ParseMetric(std::string_view name);
const std::vector<Metric>& AllMetrics();

// True for the metrics that average a per-example score (EM, ACC, QA-F1, Rouge-L).
bool IsMeanOfExampleScores(Metric metric);

// The values a metric takes: [-1, 1] for the correlations, [0, 1] for the others.
std::pair<double, double> MetricRange(Metric metric);

// The fewest examples a metric is defined on: 2 for Pearson-Correlation, 1 for the others.
int64_t MinimumExamples(Metric metric);

// The metric over all examples. Errors where the original raises: a count mismatch, an example
// without references for Classification-F1 / Matthew-Correlation / Pearson-Correlation, a
// non-numeric Pearson gold value, fewer than two Pearson examples or a NaN/inf among three or
// more, an empty Rouge-L reference; also invalid UTF-8. Returns NaN where the original returns
// NaN (an empty list for a mean metric, a constant Pearson input).
absl::StatusOr<double> Evaluate(const std::vector<std::string>& predictions,
                                const std::vector<std::vector<std::string>>& references,
                                std::string_view metric);
absl::StatusOr<double> Evaluate(const std::vector<std::string>& predictions,
                                const std::vector<std::vector<std::string>>& references,
                                Metric metric);

// Per-example scores of a mean-based metric (their mean is Evaluate's value); an error for the
// corpus-level metrics.
absl::StatusOr<std::vector<double>> EvaluatePerExample(
    const std::vector<std::string>& predictions,
    const std::vector<std::vector<std::string>>& references, Metric metric);

// A predictions file: one prediction per line ("\n" or "\r\n"; no final empty line), each
// stripped of surrounding whitespace when `strip` is set, as the originals do before scoring.
absl::StatusOr<std::vector<std::string>> ReadPredictionsFile(const std::string& path, bool strip);
// A references file: one example per line, its valid outputs separated by tabs (an empty line is
// the single reference "").
absl::StatusOr<std::vector<std::vector<std::string>>> ReadReferencesFile(const std::string& path);

// Task name -> metric, as in CrossFit's metrics.json (a JSON object of strings, key order kept).
class MetricTable {
 public:
  // The repository's copy of CrossFit's table (data/crossfit_metrics.json), compiled in.
  static const MetricTable& CrossFit();
  // A table file in the same format (e.g. the one the synthetic gym writes).
  static absl::StatusOr<MetricTable> Load(const std::string& path);
  // `source` names the text in error messages.
  static absl::StatusOr<MetricTable> Parse(std::string_view json_text, std::string_view source);

  // Error naming the task and the table's source when the task is not in the table.
  absl::StatusOr<Metric> MetricOf(std::string_view task) const;
  const std::vector<std::pair<std::string, Metric>>& entries() const { return entries_; }

 private:
  std::string source_;
  std::vector<std::pair<std::string, Metric>> entries_;
};

}  // namespace taskmoe

#endif  // TASKMOE_DATA_METRICS_H_
