// Routing plugin "fixed": per-task routes read from a .npy file. Written the way a user adds a
// plugin: this folder and one line in routing_plugins/BUILD, nothing else.
#include <memory>

#include "absl/status/statusor.h"
#include "moe/routing/routing.h"
#include "routing_plugins/fixed/fixed.pb.h"

namespace taskmoe {
namespace {

absl::StatusOr<std::shared_ptr<RoutingPlugin>> MakeFixedRouting(const RoutingContext& context,
                                                                const FixedRoutingParams& params) {
  if (params.routes_npy().empty()) {
    return absl::InvalidArgumentError("fixed routing: routes_npy must name a .npy file");
  }
  return ReadTaskRouteTable(context, params.routes_npy());
}

TASKMOE_REGISTER_ROUTING_PLUGIN("fixed", FixedRoutingParams, MakeFixedRouting);

}  // namespace
}  // namespace taskmoe
