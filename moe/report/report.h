#ifndef TASKMOE_MOE_REPORT_REPORT_H_
#define TASKMOE_MOE_REPORT_REPORT_H_

// One self-contained HTML file (images inline, no script, no network reference) about a trainer
// run directory or an experiment pipeline's output directory: tools/report, the trainer tool at
// the end of a run, and scripts/gym_report.sh write it.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "moe/report/pipeline_page.h"

namespace taskmoe {

inline constexpr char kReportFile[] = "report.html";

struct ReportOptions {
  std::string output;  // empty: <dir>/report.html
  PipelineReportOptions pipeline;
};

struct WrittenReport {
  std::string path;
  std::string kind;                // "run" or "pipeline"
  std::vector<std::string> notes;  // what the report leaves out, and why
};

// Reads `dir` (a run directory when it holds experiment.pbtxt, else a pipeline output when it
// holds *_stats.json, routes_*.json or neighbours_*.json files) and writes its report
// atomically. Errors: `dir` is neither; the output would replace one of the files the report
// read, or is a directory.
absl::StatusOr<WrittenReport> WriteReport(const std::string& dir,
                                          const ReportOptions& options = {});

}  // namespace taskmoe

#endif  // TASKMOE_MOE_REPORT_REPORT_H_
