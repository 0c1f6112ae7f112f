#ifndef TASKMOE_DATA_METRICS_INTERNAL_H_
#define TASKMOE_DATA_METRICS_INTERNAL_H_

// Shared between the metrics source files; not part of the public API (see data/metrics.h).

#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/metrics.h"

namespace taskmoe {
namespace metrics_internal {

using Text = std::u32string;

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Inputs decoded once: predictions and references as code points.
struct DecodedInputs {
  std::vector<Text> predictions;
  std::vector<std::vector<Text>> references;
};

// np.mean: NaN for an empty list.
double Mean(const std::vector<double>& values);

// EM, ACC, QA-F1 and Rouge-L per example; an error for the corpus-level metrics.
absl::StatusOr<std::vector<double>> ExampleScores(const DecodedInputs& inputs, Metric metric);

// The corpus-level metrics, over every example's first reference.
absl::StatusOr<double> MacroF1(const DecodedInputs& inputs);
absl::StatusOr<double> MatthewsCorrelation(const DecodedInputs& inputs);
absl::StatusOr<double> PearsonCorrelation(const DecodedInputs& inputs);

}  // namespace metrics_internal
}  // namespace taskmoe

#endif  // TASKMOE_DATA_METRICS_INTERNAL_H_
