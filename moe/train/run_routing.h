#ifndef TASKMOE_MOE_TRAIN_RUN_ROUTING_H_
#define TASKMOE_MOE_TRAIN_RUN_ROUTING_H_

// The routing side of a run: its task-vector table and its routing plugin, and the routes they
// give in training, in an evaluation call, and as the route views of the files.

#include <memory>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "moe/model/moe_model.h"
#include "moe/model/route_weights.h"
#include "moe/routing/routing.h"
#include "moe/train/evaluation.h"
#include "moe/train/experiment.pb.h"
#include "moe/train/run_data.h"
#include "moe/train/task_vectors.h"

namespace taskmoe {

class RunRouting {
 public:
  // The table the config asks for (SourceTaskVectors) on `device`, a leaf that requires grad when
  // task_vectors.trainable; the plugin of config.routing with its state from model.checkpoint
  // (unless `fresh_routing_state`), frozen by optimizer.freeze_router, on `device`, in train mode.
  static absl::StatusOr<RunRouting> Create(const ExperimentConfig& config,
                                           const ExperimentData& data, MoeBart& model,
                                           at::Device device, bool fresh_routing_state);

  RoutingPlugin& plugin() { return *plugin_; }
  RunTaskVectors& table() { return table_; }

  // Routes of examples whose tasks have the table ids `table_ids`, at optimiser step `step`, in
  // the plugin's current mode.
  RouteWeights RoutesFor(const at::Tensor& table_ids, int64_t step);

  // Evaluation routes of a dataset (`dataset_to_table` maps its task ids to table ids), drawn
  // once for a whole evaluation call: the original draws a (Gumbel-sampled) route once per task
  // per prediction call and uses it for every example of the task. The plugin must be in
  // evaluation mode.
  BatchRoutes EvaluationRoutes(const at::Tensor& dataset_to_table, int64_t step);

  // The route views (RouteViews) of the tasks with table ids `table_ids`, in that order.
  RouteViews ViewsOf(const at::Tensor& table_ids, int64_t step);

 private:
  RunRouting(RunTaskVectors table, std::shared_ptr<RoutingPlugin> plugin)
      : table_(std::move(table)), plugin_(std::move(plugin)) {}

  RunTaskVectors table_;
  std::shared_ptr<RoutingPlugin> plugin_;
};

}  // namespace taskmoe

#endif  // TASKMOE_MOE_TRAIN_RUN_ROUTING_H_
