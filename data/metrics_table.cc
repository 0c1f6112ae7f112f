// The task -> metric table: CrossFit's, compiled in, or one read from a JSON file.

#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "data/metrics.h"
#include "glog/logging.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "nlohmann/json.hpp"

namespace taskmoe {
namespace {

constexpr char kCrossFitMetricsJson[] =
#include "data/crossfit_metrics_json.inc"
    ;

}  // namespace

const MetricTable& MetricTable::CrossFit() {
  static const MetricTable* const kTable = [] {
    absl::StatusOr<MetricTable> table =
        Parse(kCrossFitMetricsJson, "data/crossfit_metrics.json (compiled in)");
    CHECK(table.ok()) << table.status();
    return new MetricTable(*std::move(table));
  }();
  return *kTable;
}

absl::StatusOr<MetricTable> MetricTable::Load(const std::string& path) {
  TASKMOE_ASSIGN_OR_RETURN(const std::string content, ReadFileBytes(path));
  return Parse(content, path);
}

absl::StatusOr<MetricTable> MetricTable::Parse(std::string_view json_text,
                                               std::string_view source) {
  const nlohmann::ordered_json json =
      nlohmann::ordered_json::parse(json_text.begin(), json_text.end(), nullptr,
                                    /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(source),
                     ": expected a JSON object mapping task names to metric names"));
  }
  MetricTable table;
  table.source_ = std::string(source);
  for (const auto& [task, value] : json.items()) {
    if (!value.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(source), ": the value of task \"", task, "\" is not a string"));
    }
    absl::StatusOr<Metric> metric = ParseMetric(value.get<std::string>());
    if (!metric.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(source), ": task \"", task, "\": ", metric.status().message()));
    }
    table.entries_.emplace_back(task, *metric);
  }
  return table;
}

absl::StatusOr<Metric> MetricTable::MetricOf(std::string_view task) const {
  for (const auto& [name, metric] : entries_) {
    if (name == task) return metric;
  }
  return absl::NotFoundError(
      absl::StrCat("task \"", std::string(task), "\" is not in the metric table ", source_));
}

}  // namespace taskmoe
