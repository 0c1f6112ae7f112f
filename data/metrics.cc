// Metric names and the dispatch to the per-example (metrics_example.cc) and corpus-level
// (metrics_corpus.cc) metrics.

#include "data/metrics.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "data/metrics_internal.h"
#include "data/python_str.h"
#include "moe/base/status_macros.h"

namespace taskmoe {
namespace metrics_internal {

double Mean(const std::vector<double>& values) {
  if (values.empty()) return kNaN;  // np.mean([])
  double sum = 0.0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

}  // namespace metrics_internal

namespace {

namespace ps = ::taskmoe::python_str;
using metrics_internal::DecodedInputs;
using metrics_internal::Text;

absl::StatusOr<DecodedInputs> Decode(const std::vector<std::string>& predictions,
                                     const std::vector<std::vector<std::string>>& references,
                                     Metric metric) {
  if (predictions.size() != references.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(MetricName(metric)), ": ", predictions.size(), " predictions for ",
        references.size(), " examples (the original asserts len(predictions) == len(data))"));
  }
  DecodedInputs out;
  out.predictions.reserve(predictions.size());
  out.references.resize(references.size());
  for (size_t i = 0; i < predictions.size(); ++i) {
    absl::StatusOr<Text> prediction = ps::DecodeUtf8(predictions[i]);
    if (!prediction.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("prediction ", i, ": ", prediction.status().message()));
    }
    out.predictions.push_back(*std::move(prediction));
    for (size_t r = 0; r < references[i].size(); ++r) {
      absl::StatusOr<Text> reference = ps::DecodeUtf8(references[i][r]);
      if (!reference.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("reference ", r, " of example ", i, ": ",
                                                       reference.status().message()));
      }
      out.references[i].push_back(*std::move(reference));
    }
  }
  return out;
}

}  // namespace

std::string_view MetricName(Metric metric) {
  switch (metric) {
    case Metric::kExactMatch: return "EM";
    case Metric::kAccuracy: return "ACC";
    case Metric::kQaF1: return "QA-F1";
    case Metric::kClassificationF1: return "Classification-F1";
    case Metric::kMatthewCorrelation: return "Matthew-Correlation";
    case Metric::kPearsonCorrelation: return "Pearson-Correlation";
    case Metric::kRougeL: return "Rouge-L";
  }
  return "";
}

const std::vector<Metric>& AllMetrics() {
  static const std::vector<Metric> kAll = {
      Metric::kExactMatch,          Metric::kAccuracy,           Metric::kQaF1,
      Metric::kClassificationF1,    Metric::kMatthewCorrelation, Metric::kPearsonCorrelation,
      Metric::kRougeL};
  return kAll;
}

absl::StatusOr<Metric> ParseMetric(std::string_view name) {
  std::vector<std::string> known;
  for (Metric metric : AllMetrics()) {
    if (MetricName(metric) == name) return metric;
    known.emplace_back(MetricName(metric));
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown metric \"", std::string(name),
                                                 "\"; known: ", absl::StrJoin(known, ", ")));
}

bool IsMeanOfExampleScores(Metric metric) {
  return metric == Metric::kExactMatch || metric == Metric::kAccuracy ||
         metric == Metric::kQaF1 || metric == Metric::kRougeL;
}

std::pair<double, double> MetricRange(Metric metric) {
  const bool correlation =
      metric == Metric::kMatthewCorrelation || metric == Metric::kPearsonCorrelation;
  return {correlation ? -1.0 : 0.0, 1.0};
}

int64_t MinimumExamples(Metric metric) { return metric == Metric::kPearsonCorrelation ? 2 : 1; }

absl::StatusOr<double> Evaluate(const std::vector<std::string>& predictions,
                                const std::vector<std::vector<std::string>>& references,
                                std::string_view metric) {
  TASKMOE_ASSIGN_OR_RETURN(const Metric parsed, ParseMetric(metric));
  return Evaluate(predictions, references, parsed);
}

absl::StatusOr<double> Evaluate(const std::vector<std::string>& predictions,
                                const std::vector<std::vector<std::string>>& references,
                                Metric metric) {
  TASKMOE_ASSIGN_OR_RETURN(const DecodedInputs inputs, Decode(predictions, references, metric));
  switch (metric) {
    case Metric::kClassificationF1: return metrics_internal::MacroF1(inputs);
    case Metric::kMatthewCorrelation: return metrics_internal::MatthewsCorrelation(inputs);
    case Metric::kPearsonCorrelation: return metrics_internal::PearsonCorrelation(inputs);
    default: {
      TASKMOE_ASSIGN_OR_RETURN(const std::vector<double> scores,
                               metrics_internal::ExampleScores(inputs, metric));
      return metrics_internal::Mean(scores);
    }
  }
}

absl::StatusOr<std::vector<double>> EvaluatePerExample(
    const std::vector<std::string>& predictions,
    const std::vector<std::vector<std::string>>& references, Metric metric) {
  TASKMOE_ASSIGN_OR_RETURN(const DecodedInputs inputs, Decode(predictions, references, metric));
  return metrics_internal::ExampleScores(inputs, metric);
}

}  // namespace taskmoe
