#include "moe/train/run_routing.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "moe/base/status_macros.h"
#include "moe/train/checkpoint.h"

namespace taskmoe {

absl::StatusOr<RunRouting> RunRouting::Create(const ExperimentConfig& config,
                                              const ExperimentData& data, MoeBart& model,
                                              at::Device device, bool fresh_routing_state) {
  TASKMOE_ASSIGN_OR_RETURN(RunTaskVectors table, SourceTaskVectors(config, data, model, device));
  table.vectors = table.vectors.to(device, at::kFloat)
                      .clone()
                      .set_requires_grad(config.task_vectors().trainable());
  RoutingContext context;
  context.shape = model.shape();
  context.task_vector_dim = table.vectors.size(1);
  context.num_tasks = table.vectors.size(0);
  absl::StatusOr<std::shared_ptr<RoutingPlugin>> plugin =
      CreateRoutingPlugin(config.routing(), context);
  if (!plugin.ok()) {
    return absl::Status(plugin.status().code(), absl::StrCat("config field routing: ",
                                                             plugin.status().message()));
  }
  if (config.model().has_checkpoint()) {
    TASKMOE_RETURN_IF_ERROR(ReadInitialRoutingState(config, fresh_routing_state, **plugin));
  }
  if (config.optimizer().freeze_router()) {
    for (at::Tensor p : (*plugin)->parameters()) p.set_requires_grad(false);
  }
  (*plugin)->to(device);
  (*plugin)->train();
  return RunRouting(std::move(table), *std::move(plugin));
}

RouteWeights RunRouting::RoutesFor(const at::Tensor& table_ids, int64_t step) {
  RoutingInput input;
  input.task_ids = table_ids;
  input.task_vectors = table_.vectors.index_select(0, table_ids);
  input.step = step;
  return plugin_->Route(input);
}

BatchRoutes RunRouting::EvaluationRoutes(const at::Tensor& dataset_to_table, int64_t step) {
  CHECK(!plugin_->is_training());
  at::NoGradGuard no_grad;
  const at::Tensor per_task = PerTaskLayout(RoutesFor(dataset_to_table, step));
  const ModelShape shape = plugin_->context().shape;
  return [per_task, shape](const at::Tensor& task_ids) {
    return RoutesForTasks(per_task, task_ids, shape);
  };
}

RouteViews RunRouting::ViewsOf(const at::Tensor& table_ids, int64_t step) {
  const RouteViews all = TaskRouteViews(*plugin_, table_.vectors.detach(), step);
  const at::Tensor rows = table_ids.to(all.soft.device());
  return {all.soft.index_select(0, rows), all.soft_t1.index_select(0, rows),
          all.argmax.index_select(0, rows), all.tau};
}

}  // namespace taskmoe
