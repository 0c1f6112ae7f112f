// The corpus-level metrics: Classification-F1, Matthew-Correlation and Pearson-Correlation, as
// scikit-learn and scipy compute them.

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "data/metrics.h"
#include "data/metrics_internal.h"
#include "data/python_str.h"
#include "moe/base/status_macros.h"

namespace taskmoe {
namespace metrics_internal {
namespace {

namespace ps = ::taskmoe::python_str;

// references[i][0] of every example; the original indexes it and raises IndexError.
absl::StatusOr<std::vector<Text>> FirstReferences(const DecodedInputs& inputs, Metric metric) {
  std::vector<Text> gold;
  gold.reserve(inputs.references.size());
  for (size_t i = 0; i < inputs.references.size(); ++i) {
    if (inputs.references[i].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(MetricName(metric)), ": example ", i,
                       " has no reference (the original raises IndexError)"));
    }
    gold.push_back(inputs.references[i][0]);
  }
  return gold;
}

double Sign(double x) {
  if (std::isnan(x)) return x;
  return static_cast<double>((x > 0) - (x < 0));
}

// A scaled Euclidean norm (like BLAS nrm2, which scipy.linalg.norm uses), immune to overflow.
double Norm(const std::vector<double>& v) {
  double scale = 0.0;
  for (double x : v) scale = std::max(scale, std::fabs(x));
  if (scale == 0.0) return 0.0;
  double sum = 0.0;
  for (double x : v) sum += (x / scale) * (x / scale);
  return scale * std::sqrt(sum);
}

}  // namespace

// sklearn.metrics.f1_score(gold, predictions, average="macro").
absl::StatusOr<double> MacroF1(const DecodedInputs& inputs) {
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<Text> gold,
                           FirstReferences(inputs, Metric::kClassificationF1));
  if (gold.empty()) {
    return absl::InvalidArgumentError("Classification-F1: no examples");
  }
  struct Counts {
    double true_positive = 0, predicted = 0, actual = 0;
  };
  std::map<Text, Counts> classes;
  for (size_t i = 0; i < gold.size(); ++i) {
    const Text& label = gold[i];
    const Text& predicted = inputs.predictions[i];
    classes[label].actual += 1;
    classes[predicted].predicted += 1;
    if (label == predicted) classes[label].true_positive += 1;
  }
  double sum = 0.0;
  for (const auto& [label, counts] : classes) {
    const double precision =
        counts.predicted > 0 ? counts.true_positive / counts.predicted : 0.0;
    const double recall = counts.actual > 0 ? counts.true_positive / counts.actual : 0.0;
    if (precision + recall > 0) sum += 2 * precision * recall / (precision + recall);
  }
  return sum / static_cast<double>(classes.size());
}

// sklearn.metrics.matthews_corrcoef on "acceptable" -> 1, anything else -> 0.
absl::StatusOr<double> MatthewsCorrelation(const DecodedInputs& inputs) {
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<Text> gold,
                           FirstReferences(inputs, Metric::kMatthewCorrelation));
  if (gold.empty()) {
    return absl::InvalidArgumentError("Matthew-Correlation: no examples");
  }
  static const Text kPositive = U"acceptable";
  double t[2] = {0, 0}, p[2] = {0, 0};
  double correct = 0;
  for (size_t i = 0; i < gold.size(); ++i) {
    const int truth = gold[i] == kPositive ? 1 : 0;
    const int predicted = Text(ps::Strip(inputs.predictions[i])) == kPositive ? 1 : 0;
    t[truth] += 1;
    p[predicted] += 1;
    if (truth == predicted) correct += 1;
  }
  const double n = static_cast<double>(gold.size());
  const double cov_tp = correct * n - (t[0] * p[0] + t[1] * p[1]);
  const double cov_pp = n * n - (p[0] * p[0] + p[1] * p[1]);
  const double cov_tt = n * n - (t[0] * t[0] + t[1] * t[1]);
  if (cov_tt * cov_pp == 0) return 0.0;
  return cov_tp / std::sqrt(cov_tt * cov_pp);
}

// scipy.stats.pearsonr(gold, predictions)[0] (scipy 1.10.1), unparsable predictions -> 3.0.
absl::StatusOr<double> PearsonCorrelation(const DecodedInputs& inputs) {
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<Text> gold_text,
                           FirstReferences(inputs, Metric::kPearsonCorrelation));
  const size_t n = gold_text.size();
  std::vector<double> x(n), y(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string gold_utf8 = ps::EncodeUtf8(gold_text[i]);
    std::optional<double> gold = ps::ParseFloat(gold_utf8);
    if (!gold.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("Pearson-Correlation: reference of example ", i, " (\"", gold_utf8,
                       "\") is not a number (the original raises ValueError)"));
    }
    x[i] = *gold;
    y[i] = ps::ParseFloat(ps::EncodeUtf8(ps::Strip(inputs.predictions[i]))).value_or(3.0);
  }
  if (n < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("Pearson-Correlation: x and y must have length at least 2. (got ", n, ")"));
  }
  auto constant = [](const std::vector<double>& v) {
    return std::all_of(v.begin(), v.end(), [&](double e) { return e == v[0]; });
  };
  if (constant(x) || constant(y)) return kNaN;
  if (n == 2) return Sign(x[1] - x[0]) * Sign(y[1] - y[0]);
  const double x_mean = Mean(x);
  const double y_mean = Mean(y);
  std::vector<double> xm(n), ym(n);
  for (size_t i = 0; i < n; ++i) {
    xm[i] = x[i] - x_mean;
    ym[i] = y[i] - y_mean;
    if (!std::isfinite(xm[i]) || !std::isfinite(ym[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Pearson-Correlation: array must not contain infs or NaNs (example ", i, ")"));
    }
  }
  const double x_norm = Norm(xm);
  const double y_norm = Norm(ym);
  double r = 0.0;
  for (size_t i = 0; i < n; ++i) r += (xm[i] / x_norm) * (ym[i] / y_norm);
  return std::max(std::min(r, 1.0), -1.0);
}

}  // namespace metrics_internal
}  // namespace taskmoe
