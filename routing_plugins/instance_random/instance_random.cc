// Routing plugin "instance_random": a fresh random expert per example, layer and step.
#include <memory>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "moe/routing/routing.h"
#include "routing_plugins/instance_random/instance_random.pb.h"

namespace taskmoe {
namespace {

class InstanceRandomRouting : public RoutingPlugin {
 public:
  explicit InstanceRandomRouting(const RoutingContext& context) : RoutingPlugin(context) {
    const ModelShape& shape = context.shape;
    const at::Tensor chosen = at::randint(shape.experts, {shape.encoder_layers + shape.decoder_layers});
    evaluation_routes_ =
        register_buffer("evaluation_routes", at::one_hot(chosen, shape.experts).to(at::kFloat));
  }

  // Random routes, whatever the task vector.
  bool RoutesDependOnTaskVectors() const override { return false; }

 protected:
  RouteWeights ComputeRoutes(const RoutingInput& input) override {
    const ModelShape& shape = context().shape;
    const int64_t layers = shape.encoder_layers + shape.decoder_layers;
    const int64_t batch = input.task_ids.size(0);
    if (!is_training()) {
      return SplitLayers(evaluation_routes_.unsqueeze(1).expand({layers, batch, shape.experts}), shape);
    }
    const at::Tensor chosen = at::randint(
        shape.experts, {layers, batch}, at::TensorOptions().dtype(at::kLong).device(evaluation_routes_.device()));
    return SplitLayers(at::one_hot(chosen, shape.experts).to(evaluation_routes_.scalar_type()), shape);
  }

 private:
  at::Tensor evaluation_routes_;  // [layers, experts] one-hot
};

absl::StatusOr<std::shared_ptr<RoutingPlugin>> MakeInstanceRandomRouting(
    const RoutingContext& context, const InstanceRandomRoutingParams&) {
  return std::make_shared<InstanceRandomRouting>(context);
}

TASKMOE_REGISTER_ROUTING_PLUGIN("instance_random", InstanceRandomRoutingParams, MakeInstanceRandomRouting);

}  // namespace
}  // namespace taskmoe
