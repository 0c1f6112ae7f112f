// Routing plugin "task_random": fixed random top_n experts per task and layer.
#include <memory>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "moe/routing/routing.h"
#include "routing_plugins/task_random/task_random.pb.h"

namespace taskmoe {
namespace {

class TaskRandomRouting : public RoutingPlugin {
 public:
  TaskRandomRouting(const RoutingContext& context, int64_t top_n) : RoutingPlugin(context) {
    const ModelShape& shape = context.shape;
    // The top_n largest of uniform scores are a uniform draw of top_n distinct experts.
    const at::Tensor scores =
        at::rand({context.num_tasks, shape.encoder_layers + shape.decoder_layers, shape.experts});
    const at::Tensor chosen = std::get<1>(scores.topk(top_n, -1));
    task_routes_ = register_buffer("task_routes",
                                   at::zeros_like(scores).scatter_(-1, chosen, 1.0 / top_n));
  }

  // A random route per task id, whatever the task vector.
  bool RoutesDependOnTaskVectors() const override { return false; }

 protected:
  RouteWeights ComputeRoutes(const RoutingInput& input) override {
    return RoutesForTasks(task_routes_, input.task_ids, context().shape);
  }

 private:
  at::Tensor task_routes_;  // [tasks, layers, experts]
};

absl::StatusOr<std::shared_ptr<RoutingPlugin>> MakeTaskRandomRouting(
    const RoutingContext& context, const TaskRandomRoutingParams& params) {
  if (params.top_n() < 1 || params.top_n() > context.shape.experts) {
    return absl::InvalidArgumentError(absl::StrCat("task_random routing: top_n must be in [1, ",
                                                   context.shape.experts, "] (the experts), got ",
                                                   params.top_n()));
  }
  return std::make_shared<TaskRandomRouting>(context, params.top_n());
}

TASKMOE_REGISTER_ROUTING_PLUGIN("task_random", TaskRandomRoutingParams, MakeTaskRandomRouting);

}  // namespace
}  // namespace taskmoe
