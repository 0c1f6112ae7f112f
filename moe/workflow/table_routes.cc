#include "moe/workflow/table_routes.h"

#include <filesystem>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "moe/base/atomic_directory.h"
#include "moe/base/status_macros.h"
#include "moe/formats/task_table.h"
#include "moe/routing/routing.h"
#include "moe/train/checkpoint.h"
#include "moe/train/model_builder.h"
#include "moe/train/run_outputs.h"

namespace taskmoe {

namespace {

// The route views of each vector, routed one at a time: the plugin sizes its per-task state for
// the tasks it was trained on, and a task's route depends only on its vector.
RouteViews ViewsOfEveryRow(RoutingPlugin& plugin, const at::Tensor& vectors, int64_t step) {
  std::vector<at::Tensor> soft, soft_t1, argmax;
  std::optional<double> tau;
  for (int64_t row = 0; row < vectors.size(0); ++row) {
    RouteViews views = TaskRouteViews(plugin, vectors.slice(0, row, row + 1), step);
    soft.push_back(views.soft);
    soft_t1.push_back(views.soft_t1);
    argmax.push_back(views.argmax);
    tau = views.tau;
  }
  return {at::cat(soft), at::cat(soft_t1), at::cat(argmax), tau};
}

}  // namespace

absl::StatusOr<int64_t> WriteTableRoutes(const TableRoutesOptions& options) {
  if (std::filesystem::exists(options.output_dir) && !options.overwrite) {
    return absl::AlreadyExistsError(absl::StrCat(
        "output directory ", options.output_dir, " exists; pass --overwrite to replace it"));
  }
  TASKMOE_ASSIGN_OR_RETURN(const Checkpoint checkpoint, LoadCheckpoint(options.checkpoint_dir));
  TASKMOE_ASSIGN_OR_RETURN(const TaskTable table, TaskTable::Load(options.task_vectors_dir));
  if (table.dim() != checkpoint.tasks->dim()) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.task_vectors_dir, "/", TaskTable::kVectorsFile, " holds vectors of dimension ",
        table.dim(), ", but the router of ", options.checkpoint_dir, " reads dimension ",
        checkpoint.tasks->dim(), " (", options.checkpoint_dir, "/", TaskTable::kVectorsFile, ")"));
  }
  if (!checkpoint.plugin->RoutesDependOnTaskVectors()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the routing plugin '", checkpoint.experiment.routing().plugin(), "' of ",
        options.checkpoint_dir, " does not route from task vectors, so it has no route for a task "
        "it was not trained on; its own tasks' routes are in ", options.checkpoint_dir, "/",
        kRoutesFile));
  }
  TASKMOE_ASSIGN_OR_RETURN(const int64_t step,
                           CheckpointStep(options.checkpoint_dir, checkpoint.experiment));
  TASKMOE_ASSIGN_OR_RETURN(AtomicDirectory out, AtomicDirectory::Begin(options.output_dir));
  TASKMOE_RETURN_IF_ERROR(WriteRouteFiles(ViewsOfEveryRow(*checkpoint.plugin, table.vectors(), step),
                                          table.names(), std::nullopt,
                                          checkpoint.model->shape(), step, out.staging()));
  TASKMOE_RETURN_IF_ERROR(out.Commit());
  return table.size();
}

}  // namespace taskmoe
