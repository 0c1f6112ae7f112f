// A routing plugin written as a user would, outside routing_plugins/: every layer sends task t
// to expert (t + offset) mod E. It knows the core only through moe/routing/routing.h.
#include <memory>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "moe/routing/routing.h"
#include "tests/plugin_author/task_id_routing.pb.h"

namespace taskmoe::example {
namespace {

class TaskIdRouting : public RoutingPlugin {
 public:
  TaskIdRouting(const RoutingContext& context, int64_t offset)
      : RoutingPlugin(context), offset_(offset) {}

  bool RoutesDependOnTaskVectors() const override { return false; }

 protected:
  RouteWeights ComputeRoutes(const RoutingInput& input) override {
    const ModelShape& shape = context().shape;
    const at::Tensor experts = (input.task_ids + offset_).remainder(shape.experts);
    const at::Tensor one_hot = at::one_hot(experts, shape.experts).to(at::kFloat);  // [batch, E]
    const at::Tensor routes = one_hot.unsqueeze(0).expand(
        {shape.encoder_layers + shape.decoder_layers, one_hot.size(0), shape.experts});
    return SplitLayers(routes.to(input.task_vectors.device()), shape);
  }

 private:
  int64_t offset_;
};

absl::StatusOr<std::shared_ptr<RoutingPlugin>> MakeTaskIdRouting(
    const RoutingContext& context, const TaskIdRoutingParams& params) {
  if (params.offset() < 0) return absl::InvalidArgumentError("offset must be >= 0");
  return std::make_shared<TaskIdRouting>(context, params.offset());
}

TASKMOE_REGISTER_ROUTING_PLUGIN("task_id_routing", TaskIdRoutingParams, MakeTaskIdRouting);

}  // namespace
}  // namespace taskmoe::example
