// One self-contained HTML report (images inline, no script, no network reference) of a trainer
// run directory or of an experiment pipeline's output directory (moe/report/report.h).
//
//   report --dir=runs/default                        # writes runs/default/report.html
//   report --dir=runs/gym_pipeline --null_arms=task_random,untrained --output=/tmp/pipeline.html

#include "moe/report/report.h"

#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "moe/base/status_macros.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, dir, "",
          "a trainer run directory (it holds experiment.pbtxt) or the output directory of "
          "scripts/gym_pipeline.sh (it holds *_stats.json, routes_*.json or neighbours_*.json)");
ABSL_FLAG(std::string, output, "", "the HTML file to write; empty: <dir>/report.html");
ABSL_FLAG(std::string, null_arms, "",
          "comma-separated pipeline arms whose routes are nulls of the route-skill agreement "
          "(scripts/gym_report.sh passes task_random,untrained)");

namespace taskmoe {
namespace {

absl::Status Run() {
  const std::string dir = absl::GetFlag(FLAGS_dir);
  if (dir.empty()) return absl::InvalidArgumentError("--dir is required");
  ReportOptions options;
  options.output = absl::GetFlag(FLAGS_output);
  options.pipeline.null_arms =
      absl::StrSplit(absl::GetFlag(FLAGS_null_arms), ',', absl::SkipEmpty());
  TASKMOE_ASSIGN_OR_RETURN(const WrittenReport written, WriteReport(dir, options));
  for (const std::string& note : written.notes) std::cerr << "report: " << note << "\n";
  std::cout << "wrote the " << written.kind << " report " << written.path << "\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "report";
  tool.output_flags = {"output"};
  tool.usage =
      "Writes one self-contained HTML report of a trainer run or of an experiment pipeline's "
      "output.\n  report --dir=runs/default [--output=runs/default/report.html]";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
