// Routing plugin "average": uniform routes, the mean of the experts.
#include <memory>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "moe/routing/routing.h"
#include "routing_plugins/average/average.pb.h"

namespace taskmoe {
namespace {

class AverageRouting : public RoutingPlugin {
 public:
  using RoutingPlugin::RoutingPlugin;

  // Every task is routed alike, whatever its vector.
  bool RoutesDependOnTaskVectors() const override { return false; }

 protected:
  RouteWeights ComputeRoutes(const RoutingInput& input) override {
    const ModelShape& shape = context().shape;
    const at::Tensor routes =
        at::full({shape.encoder_layers + shape.decoder_layers, input.task_ids.size(0), shape.experts},
                 1.0 / shape.experts, input.task_vectors.options().requires_grad(false));
    return SplitLayers(routes, shape);
  }
};

absl::StatusOr<std::shared_ptr<RoutingPlugin>> MakeAverageRouting(const RoutingContext& context,
                                                                  const AverageRoutingParams&) {
  return std::make_shared<AverageRouting>(context);
}

TASKMOE_REGISTER_ROUTING_PLUGIN("average", AverageRoutingParams, MakeAverageRouting);

}  // namespace
}  // namespace taskmoe
