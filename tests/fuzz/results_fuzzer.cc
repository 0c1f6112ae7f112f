// result.csv: ParseResultCsv on arbitrary text, then what the aggregation does with the rows it
// accepts (per-task summary, metric ranges, ARG, the summary tables).

#include <string>
#include <vector>

#include <glog/logging.h>

#include "data/metrics.h"
#include "data/results.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string source = "fuzz/glue-cola/result.csv";
  const absl::StatusOr<std::vector<taskmoe::ResultRow>> rows =
      taskmoe::ParseResultCsv(std::string(taskmoe::fuzzing::AsText(data, size)), source);
  if (!rows.ok()) return 0;
  taskmoe::CheckMetricRange({"glue-cola", source, *rows}, taskmoe::MetricTable::CrossFit())
      .IgnoreError();
  const absl::StatusOr<taskmoe::TaskSummary> summary =
      taskmoe::SummarizeTask("glue-cola", *rows, source);
  if (!summary.ok()) return 0;
  taskmoe::SummaryCsv({*summary});
  const absl::StatusOr<taskmoe::ArgReport> report = taskmoe::ComputeArg({*summary}, {*summary});
  taskmoe::MarkdownReport({*summary}, report.ok() ? std::optional(*report) : std::nullopt);
  if (report.ok()) taskmoe::GainsCsv(*report);
  return 0;
}
