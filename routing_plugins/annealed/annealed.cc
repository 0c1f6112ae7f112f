// Routing plugin "annealed": frozen stage-one router, softmax with an annealed temperature.
#include <memory>
#include <optional>
#include <string>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "moe/base/status_macros.h"
#include "moe/routing/routing.h"
#include "routing_plugins/annealed/annealed.pb.h"
#include "routing_plugins/router/router.h"

namespace taskmoe {
namespace {

class AnnealedRouting : public RoutingPlugin {
 public:
  AnnealedRouting(const RoutingContext& context, const RouterNetworkOptions& router,
                  const TemperatureSchedule& temperature)
      : RoutingPlugin(context), temperature_(temperature) {
    // Same module name as "learned", so a stage-one checkpoint's router state loads here.
    router_ = register_module("router", MakeRouterNetwork(router));
    for (at::Tensor& parameter : router_->parameters()) parameter.set_requires_grad(false);
  }

  // Stage two continues the router of a stage-one "learned" run.
  bool ContinuesStateOf(const std::string& saved_plugin) const override {
    return saved_plugin == "learned";
  }

 protected:
  std::optional<RouteLogits> ComputeLogits(const RoutingInput& input) override {
    // The routes are fixed by stage one: no gradient reaches the router or the task vectors.
    return RouteLogits{router_->forward(input.task_vectors.detach()), temperature_.At(input.step)};
  }

  at::Tensor SelectFromLogits(const RouteLogits& logits, const RoutingInput&) override {
    return at::softmax(logits.logits / logits.tau, -1);
  }

 private:
  TemperatureSchedule temperature_;
  std::shared_ptr<RouterNetworkImpl> router_;
};

absl::StatusOr<std::shared_ptr<RoutingPlugin>> MakeAnnealedRouting(const RoutingContext& context,
                                                                   const AnnealedRoutingParams& params) {
  TASKMOE_ASSIGN_OR_RETURN(const RouterNetworkOptions router,
                           RouterNetworkOptionsFromProto(params.router(), context));
  RouteSelectionParams selection;
  selection.set_function(RouteSelectionParams::SOFTMAX);
  selection.set_initial_tau(params.initial_tau());
  selection.set_minimum_tau(params.minimum_tau());
  selection.set_anneal_rate(params.anneal_rate());
  TASKMOE_ASSIGN_OR_RETURN(const SelectionOptions options, SelectionOptionsFromProto(selection));
  return std::make_shared<AnnealedRouting>(context, router, options.temperature);
}

TASKMOE_REGISTER_ROUTING_PLUGIN("annealed", AnnealedRoutingParams, MakeAnnealedRouting);

}  // namespace
}  // namespace taskmoe
