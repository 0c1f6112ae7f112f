// Builds the starting checkpoint of stage two: the router and task vectors of a stage-one
// checkpoint with every expert re-initialised from a pretrained dense model (a copy of its layer
// plus init_eps noise). Train it with the annealed routing plugin, e.g. configs/stage_two.pbtxt.
//
//   build_checkpoint --stage_one=runs/default/best --model=runs/dense/best
//                    --output_dir=runs/two_stage/init [--init_eps=0.01] [--seed=42] [--overwrite]
//                    [--shuffle_routes_seed=1]   (the shuffled-routes control)
//
// --model, the pretrained dense model, is a Hugging Face BART directory (e.g.
// facebook/bart-base) or a dense TaskMoE checkpoint (one expert per layer or every layer
// vanilla, e.g. the dense multi-task baseline).

#include <iostream>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "moe/base/status_macros.h"
#include "moe/workflow/two_stage.h"
#include "tools/model_flags.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, stage_one, "", "Stage-one checkpoint directory (learned routing).");
ABSL_FLAG(std::string, dense, "", "Deprecated name of --model (the pretrained dense model).");
ABSL_FLAG(std::string, output_dir, "", "Directory of the checkpoint to write.");
ABSL_FLAG(std::optional<double>, init_eps, std::nullopt,
          "Noise of the expert copies; unset: the stage-one experiment's model.init_eps.");
ABSL_FLAG(int64_t, seed, 42, "Seed of the expert noise.");
ABSL_FLAG(bool, overwrite, false, "Replace an existing output directory.");
ABSL_FLAG(std::optional<uint64_t>, shuffle_routes_seed, std::nullopt,
          "Set: the shuffled-routes control; every routed task gets another routed task's "
          "stage-one vector (a random derangement with this seed), hence its learned route.");

namespace taskmoe {
namespace {

absl::Status Run() {
  BuildCheckpointOptions options;
  options.stage_one_dir = absl::GetFlag(FLAGS_stage_one);
  TASKMOE_ASSIGN_OR_RETURN(options.dense_dir, ModelFlag("dense", absl::GetFlag(FLAGS_dense)));
  options.output_dir = absl::GetFlag(FLAGS_output_dir);
  options.init_eps = absl::GetFlag(FLAGS_init_eps);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.overwrite = absl::GetFlag(FLAGS_overwrite);
  options.shuffle_routes_seed = absl::GetFlag(FLAGS_shuffle_routes_seed);
  if (options.stage_one_dir.empty() || options.output_dir.empty()) {
    return absl::InvalidArgumentError("--stage_one, --model and --output_dir are required");
  }
  TASKMOE_ASSIGN_OR_RETURN(const BuiltCheckpoint built, BuildStageTwoCheckpoint(options));
  std::cout << "wrote " << options.output_dir << ": experts from the " << built.dense_kind << " "
            << options.dense_dir << ", routing state (" << built.routing_state_tensors
            << " tensors) and " << built.tasks << " task vectors from " << options.stage_one_dir
            << "\n";
  if (!built.route_donors.empty()) {
    std::cout << "shuffled routes: each task routed as its donor (" << kRouteDonorsFile << ")\n";
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "build_checkpoint";
  tool.output_flags = {"output_dir"};
  tool.runs_models = true;
  tool.usage =
      "Builds the starting checkpoint of stage two from a stage-one checkpoint and a dense model.";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
