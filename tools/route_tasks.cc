// Writes the routes a TaskMoE checkpoint's router gives every task of a task-vector table,
// held-out tasks included (the trainer's route files cover only its train tasks), in the
// trainer's route-file layout: route.npy (soft), route_t1.npy, route_argmax.npy, their heatmaps
// and route_tasks.json. tools/analyze_routes reads them for the held-out neighbour statistic.
//
//   route_tasks --model=runs/stage_one/best --task_vectors=runs/vectors
//               --output_dir=runs/stage_one/all_routes [--overwrite]

#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "moe/base/status_macros.h"
#include "moe/workflow/table_routes.h"
#include "tools/model_flags.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, task_vectors, "",
          "Directory with id2task.json + task_vecs.npy: the tasks to route (e.g. every task of "
          "a data set, from tools/compute_task_embeddings).");
ABSL_FLAG(std::string, output_dir, "", "Directory to write the route files to.");
ABSL_FLAG(bool, overwrite, false, "Replace an existing output directory.");

namespace taskmoe {
namespace {

absl::Status Run() {
  TableRoutesOptions options;
  TASKMOE_ASSIGN_OR_RETURN(options.checkpoint_dir, ModelFlag());
  options.task_vectors_dir = absl::GetFlag(FLAGS_task_vectors);
  options.output_dir = absl::GetFlag(FLAGS_output_dir);
  options.overwrite = absl::GetFlag(FLAGS_overwrite);
  if (options.task_vectors_dir.empty() || options.output_dir.empty()) {
    return absl::InvalidArgumentError("--model, --task_vectors and --output_dir are required");
  }
  TASKMOE_ASSIGN_OR_RETURN(const int64_t tasks, WriteTableRoutes(options));
  std::cout << "wrote the routes of " << tasks << " tasks to " << options.output_dir << "\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "route_tasks";
  tool.output_flags = {"output_dir"};
  tool.runs_models = true;
  tool.usage =
      "Writes the routes a checkpoint's router gives every task of a task-vector table "
      "(route.npy, route_tasks.json, ...).";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
