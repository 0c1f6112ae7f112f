// Converts a checkpoint of the original CrossTaskMoE code (run_v2.py) into a TaskMoE checkpoint
// with the learned routing plugin (tools/original_checkpoint.h):
//
//   convert_original_checkpoint --original=<original output_dir>/best --output_dir=runs/converted
//       [--config=<original output_dir>/config.json] [--router_mode=gumbel_softmax_st]
//       [--initial_tau=2.0] [--minimum_tau=0.1] [--anneal_rate=0.0003] [--eval_route=sample]
//       [--overwrite]
//
// --original holds model.pt, id2task.json and task_vecs.npy; config.json is looked up there and
// then in its parent directory (where run_v2.py writes it). The routing flags are the original's
// command-line flags of the same names (config.json does not record them); --eval_route is the
// learned plugin's choice of Gumbel evaluation routes.

#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "moe/base/status_macros.h"
#include "tools/original_checkpoint.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, original, "",
          "Directory of the original checkpoint: model.pt, id2task.json, task_vecs.npy.");
ABSL_FLAG(std::string, config, "",
          "The original's config.json; empty: <original>/config.json, else "
          "<original>/../config.json.");
ABSL_FLAG(std::string, output_dir, "", "Directory of the TaskMoE checkpoint to write.");
ABSL_FLAG(std::string, router_mode, "gumbel_softmax_st",
          "The original's --router_mode: softmax, gumbel_softmax or gumbel_softmax_st.");
ABSL_FLAG(double, initial_tau, 2.0, "The original's --initial_tau.");
ABSL_FLAG(double, minimum_tau, 0.1, "The original's --minimum_tau.");
ABSL_FLAG(double, anneal_rate, 0.0003, "The original's --anneal_rate.");
ABSL_FLAG(std::string, eval_route, "sample",
          "Gumbel evaluation routes: sample (the original's: the argmax of a Gumbel sample) or "
          "argmax (of the logits, deterministic).");
ABSL_FLAG(bool, overwrite, false, "Replace an existing output directory.");

namespace taskmoe {
namespace {

absl::Status Run() {
  ConvertOriginalOptions options;
  options.original_dir = absl::GetFlag(FLAGS_original);
  options.config_path = absl::GetFlag(FLAGS_config);
  options.output_dir = absl::GetFlag(FLAGS_output_dir);
  options.overwrite = absl::GetFlag(FLAGS_overwrite);
  if (options.original_dir.empty() || options.output_dir.empty()) {
    return absl::InvalidArgumentError("--original and --output_dir are required");
  }
  TASKMOE_ASSIGN_OR_RETURN(const RouteSelectionParams::Function function,
                           SelectionFunctionFromRouterMode(absl::GetFlag(FLAGS_router_mode)));
  options.selection.set_function(function);
  options.selection.set_initial_tau(static_cast<float>(absl::GetFlag(FLAGS_initial_tau)));
  options.selection.set_minimum_tau(static_cast<float>(absl::GetFlag(FLAGS_minimum_tau)));
  options.selection.set_anneal_rate(static_cast<float>(absl::GetFlag(FLAGS_anneal_rate)));
  const std::string eval_route = absl::GetFlag(FLAGS_eval_route);
  if (eval_route != "sample" && eval_route != "argmax") {
    return absl::InvalidArgumentError("--eval_route must be sample or argmax, got '" + eval_route + "'");
  }
  options.selection.set_eval_route(eval_route == "argmax" ? RouteSelectionParams::ARGMAX
                                                          : RouteSelectionParams::SAMPLE);
  TASKMOE_ASSIGN_OR_RETURN(const ConvertedOriginal converted, ConvertOriginalCheckpoint(options));
  std::cout << "wrote " << options.output_dir << ": " << converted.model_tensors
            << " model tensors and " << converted.router_tensors << " router tensors from "
            << options.original_dir << "/model.pt (config " << converted.config_path << "), "
            << converted.tasks << " task vectors\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "convert_original_checkpoint";
  tool.output_flags = {"output_dir"};
  tool.usage =
      "Converts a checkpoint of the original CrossTaskMoE code (model.pt, config.json, task "
      "vectors) into a TaskMoE checkpoint with learned routing.";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
