// Routing plugin "instance_random": a fresh random expert per example, layer and step.
#include <memory>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "moe/routing/routing.h"
#include "routing_plugins/instance_random/instance_random.pb.h"

namespace taskmoe {
namespace {

// One-hot routes on uniformly drawn experts, [sizes..., experts].
at::Tensor RandomOneHot(at::IntArrayRef sizes, int64_t experts, const at::TensorOptions& options) {
  const at::Tensor chosen = at::randint(experts, sizes, options.dtype(at::kLong));
  return at::one_hot(chosen, experts).to(options.dtype());
}

class InstanceRandomRouting : public RoutingPlugin {
 public:
  InstanceRandomRouting(const RoutingContext& context, bool draw_per_call)
      : RoutingPlugin(context), draw_per_call_(draw_per_call) {
    const ModelShape& shape = context.shape;
    evaluation_routes_ = register_buffer(
        "evaluation_routes",
        RandomOneHot({shape.encoder_layers + shape.decoder_layers}, shape.experts, at::kFloat));
  }

  // Random routes, whatever the task vector.
  bool RoutesDependOnTaskVectors() const override { return false; }

 protected:
  RouteWeights ComputeRoutes(const RoutingInput& input) override {
    const ModelShape& shape = context().shape;
    const int64_t layers = shape.encoder_layers + shape.decoder_layers;
    const int64_t batch = input.task_ids.size(0);
    const at::TensorOptions options = evaluation_routes_.options();
    if (is_training()) return SplitLayers(RandomOneHot({layers, batch}, shape.experts, options), shape);
    if (draw_per_call_) {
      at::NoGradGuard no_grad;
      evaluation_routes_.copy_(RandomOneHot({layers}, shape.experts, options));
    }
    // A copy: the next draw overwrites the state, not routes already handed out.
    return SplitLayers(ViewedRoutes(input).clone(), shape);
  }

  // The evaluation route in effect (the latest draw), shared by every example.
  at::Tensor ViewedRoutes(const RoutingInput& input) override {
    const int64_t batch = input.task_ids.size(0);
    return evaluation_routes_.unsqueeze(1).expand({-1, batch, -1});
  }

 private:
  bool draw_per_call_;
  at::Tensor evaluation_routes_;  // [layers, experts] one-hot
};

absl::StatusOr<std::shared_ptr<RoutingPlugin>> MakeInstanceRandomRouting(
    const RoutingContext& context, const InstanceRandomRoutingParams& params) {
  return std::make_shared<InstanceRandomRouting>(
      context, params.evaluation_route() == InstanceRandomRoutingParams::PER_CALL);
}

TASKMOE_REGISTER_ROUTING_PLUGIN("instance_random", InstanceRandomRoutingParams, MakeInstanceRandomRouting);

}  // namespace
}  // namespace taskmoe
