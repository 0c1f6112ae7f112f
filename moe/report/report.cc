#include "moe/report/report.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "moe/report/pipeline_record.h"
#include "moe/report/run_page.h"
#include "moe/report/run_record.h"
#include "moe/train/checkpoint.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

// The report is one file, never written over a file it read.
absl::Status CheckOutput(const std::string& output, const std::vector<std::string>& inputs) {
  if (fs::is_directory(output)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the report output ", output, " is a directory; name a file"));
  }
  return CheckOutputsSpareInputs({output}, inputs);
}

}  // namespace

absl::StatusOr<WrittenReport> WriteReport(const std::string& dir, const ReportOptions& options) {
  if (!fs::is_directory(dir)) {
    return absl::NotFoundError(absl::StrCat(dir, " is not a directory"));
  }
  WrittenReport written;
  written.path = options.output.empty() ? absl::StrCat(dir, "/", kReportFile) : options.output;
  std::string html;
  std::vector<std::string> inputs;
  const bool run = fs::exists(absl::StrCat(dir, "/", kExperimentFile));
  if (!run && !IsPipelineOutput(dir)) {
    return absl::NotFoundError(
        absl::StrCat(dir, " is neither a trainer run directory (no ", kExperimentFile,
                     ") nor an experiment pipeline's output (no *_stats.json, routes_*.json or "
                     "neighbours_*.json)"));
  }
  if (run) {
    TASKMOE_ASSIGN_OR_RETURN(const RunRecord record, ReadRunRecord(dir));
    written.kind = "run";
    html = RunReportHtml(record);
    inputs = record.inputs.files;
    written.notes = record.inputs.notes;
  } else {
    TASKMOE_ASSIGN_OR_RETURN(const PipelineRecord record, ReadPipelineRecord(dir));
    written.kind = "pipeline";
    html = PipelineReportHtml(record, options.pipeline);
    inputs = record.inputs.files;
    written.notes = record.inputs.notes;
  }
  TASKMOE_RETURN_IF_ERROR(CheckOutput(written.path, inputs));
  TASKMOE_RETURN_IF_ERROR(WriteFileAtomically(written.path, html));
  return written;
}

}  // namespace taskmoe
