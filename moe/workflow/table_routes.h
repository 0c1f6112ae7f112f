#ifndef TASKMOE_MOE_WORKFLOW_TABLE_ROUTES_H_
#define TASKMOE_MOE_WORKFLOW_TABLE_ROUTES_H_

// The routes a checkpoint's router gives every task of a task-vector table, held-out tasks
// included, written as the trainer writes its train tasks' routes (route.npy, route_t1.npy,
// route_argmax.npy, their heatmaps, route_tasks.json). The trainer's own route files cover only
// the run's train tasks; these also hold the unseen ones, for tools/analyze_routes' held-out
// neighbour statistic.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace taskmoe {

struct TableRoutesOptions {
  std::string checkpoint_dir;
  // id2task.json + task_vecs.npy; its vectors must have the checkpoint table's dimension.
  std::string task_vectors_dir;
  std::string output_dir;
  // An existing output_dir is an error unless this is set (then it is replaced atomically).
  bool overwrite = false;
};

// Routes every task of the table through the checkpoint's routing plugin at the checkpoint's
// step (moe/train/checkpoint.h CheckpointStep) and writes the route files atomically; returns the
// number of tasks. Errors, with nothing written: an existing output without overwrite, a
// checkpoint or table that does not load, vectors of another dimension than the router's, a
// routing plugin whose routes do not come from task vectors (e.g. task-level random routes).
absl::StatusOr<int64_t> WriteTableRoutes(const TableRoutesOptions& options);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_WORKFLOW_TABLE_ROUTES_H_
