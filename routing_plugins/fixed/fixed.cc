// Routing plugin "fixed": per-task routes read from a .npy file. Written the way a user adds a
// plugin: this folder and one line in routing_plugins/BUILD, nothing else.
#include <memory>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "moe/npy.h"
#include "moe/routing.h"
#include "routing_plugins/fixed/fixed.pb.h"

namespace taskmoe {
namespace {

class FixedRouting : public RoutingPlugin {
 public:
  FixedRouting(const RoutingContext& context, const at::Tensor& task_routes) : RoutingPlugin(context) {
    // A buffer, so the routes travel with checkpoints and follow the module to its device.
    task_routes_ = register_buffer("task_routes", task_routes);
  }

 protected:
  RouteWeights ComputeRoutes(const RoutingInput& input) override {
    return RoutesForTasks(task_routes_, input.task_ids, context().shape);
  }

 private:
  at::Tensor task_routes_;  // [tasks, layers, experts]
};

absl::StatusOr<std::shared_ptr<RoutingPlugin>> MakeFixedRouting(const RoutingContext& context,
                                                                const FixedRoutingParams& params) {
  if (params.routes_npy().empty()) {
    return absl::InvalidArgumentError("fixed routing: routes_npy must name a .npy file");
  }
  absl::StatusOr<at::Tensor> routes = ReadNpy(params.routes_npy());
  if (!routes.ok()) return routes.status();
  const ModelShape& shape = context.shape;
  const std::vector<int64_t> expected = {context.num_tasks, shape.encoder_layers + shape.decoder_layers,
                                         shape.experts};
  if (routes->sizes().vec() != expected || !at::isFloatingType(routes->scalar_type())) {
    return absl::InvalidArgumentError(absl::StrCat(
        params.routes_npy(), ": expected float routes [tasks, layers, experts] = [",
        absl::StrJoin(expected, ", "), "], got ", c10::toString(routes->scalar_type()), " [",
        absl::StrJoin(routes->sizes(), ", "), "]"));
  }
  return std::make_shared<FixedRouting>(context, routes->to(at::kFloat));
}

TASKMOE_REGISTER_ROUTING_PLUGIN("fixed", FixedRoutingParams, MakeFixedRouting);

}  // namespace
}  // namespace taskmoe
