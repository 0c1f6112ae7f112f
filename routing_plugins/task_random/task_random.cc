// Routing plugin "task_random": a per-task route table drawn at random (top_n experts per task
// and layer), trained with the model unless frozen.
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
  TaskRandomRouting(const RoutingContext& context, const at::Tensor& task_routes,
                    bool one_hot_evaluation, bool freeze)
      : RoutingPlugin(context), one_hot_evaluation_(one_hot_evaluation) {
    // Frozen routes are a buffer, as any fixed table: checkpointed and synchronised across
    // replicas like the trainable parameter.
    task_routes_ = freeze ? register_buffer("task_routes", task_routes)
                          : register_parameter("task_routes", task_routes);
  }

  bool RoutesDependOnTaskVectors() const override { return false; }

 protected:
  RouteWeights ComputeRoutes(const RoutingInput& input) override {
    const at::Tensor table =
        !is_training() && one_hot_evaluation_
            ? at::one_hot(task_routes_.argmax(-1), task_routes_.size(-1)).to(task_routes_.scalar_type())
            : task_routes_;
    return RoutesForTasks(table, input.task_ids, context().shape);
  }

 private:
  bool one_hot_evaluation_;
  at::Tensor task_routes_;  // [tasks, layers, E]
};

absl::StatusOr<std::shared_ptr<RoutingPlugin>> MakeTaskRandomRouting(
    const RoutingContext& context, const TaskRandomRoutingParams& params) {
  const ModelShape& shape = context.shape;
  if (params.top_n() < 1 || params.top_n() > shape.experts) {
    return absl::InvalidArgumentError(absl::StrCat("task_random routing: top_n must be in [1, ",
                                                   shape.experts, "] (the experts), got ",
                                                   params.top_n()));
  }
  // The top_n largest of uniform scores are a uniform draw of top_n distinct experts.
  const at::Tensor scores =
      at::rand({context.num_tasks, shape.encoder_layers + shape.decoder_layers, shape.experts});
  const at::Tensor chosen = std::get<1>(scores.topk(params.top_n(), -1));
  return std::make_shared<TaskRandomRouting>(
      context, at::zeros_like(scores).scatter_(-1, chosen, 1.0 / params.top_n()),
      /*one_hot_evaluation=*/params.top_n() == 1, params.freeze());
}

TASKMOE_REGISTER_ROUTING_PLUGIN("task_random", TaskRandomRoutingParams, MakeTaskRandomRouting);

}  // namespace
}  // namespace taskmoe
