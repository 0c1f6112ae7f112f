// Routing plugin "learned": router network + selection function, trained with the model.
#include <memory>
#include <optional>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "moe/base/status_macros.h"
#include "moe/routing/routing.h"
#include "routing_plugins/learned/learned.pb.h"
#include "routing_plugins/router/router.h"

namespace taskmoe {
namespace {

enum class ExplorationRoute { kRandomOneHot, kUniform };

struct LearnedRoutingOptions {
  RouterNetworkOptions router;
  SelectionOptions selection;
  double exploration_epsilon = 0.0;
  ExplorationRoute encoder_exploration = ExplorationRoute::kRandomOneHot;
  ExplorationRoute decoder_exploration = ExplorationRoute::kUniform;
};

ExplorationRoute ExplorationFromProto(LearnedRoutingParams::ExplorationRoute route) {
  return route == LearnedRoutingParams::UNIFORM ? ExplorationRoute::kUniform
                                                 : ExplorationRoute::kRandomOneHot;
}

// Exploration routes for `layers` layers, shaped like `like` [layers, batch, E].
at::Tensor ExplorationRoutes(ExplorationRoute route, int64_t layers, const at::Tensor& like) {
  const int64_t batch = like.size(1), experts = like.size(2);
  if (route == ExplorationRoute::kUniform) {
    return at::full({layers, batch, experts}, 1.0 / experts, like.options());
  }
  const at::Tensor chosen = at::randint(experts, {layers, batch}, like.options().dtype(at::kLong));
  return at::one_hot(chosen, experts).to(like.scalar_type());
}

class LearnedRouting : public RoutingPlugin {
 public:
  LearnedRouting(const RoutingContext& context, const LearnedRoutingOptions& options)
      : RoutingPlugin(context), options_(options) {
    router_ = register_module("router", MakeRouterNetwork(options.router));
  }

 protected:
  std::optional<RouteLogits> ComputeLogits(const RoutingInput& input) override {
    return RouteLogits{router_->forward(input.task_vectors), options_.selection.temperature.At(input.step)};
  }

  at::Tensor SelectFromLogits(const RouteLogits& logits, const RoutingInput&) override {
    at::Tensor routes = SelectRoutes(logits.logits, options_.selection.function, logits.tau,
                                     is_training(), options_.selection.evaluation);
    if (is_training() && options_.exploration_epsilon > 0) routes = Explore(routes);
    return routes;
  }

 private:
  // Replaces each (layer, example) route with probability epsilon; replaced routes carry no
  // gradient, as in the original.
  at::Tensor Explore(const at::Tensor& routes) const {
    const ModelShape& shape = context().shape;
    const at::Tensor replace =
        at::rand({routes.size(0), routes.size(1), 1}, routes.options().requires_grad(false)) <
        options_.exploration_epsilon;
    const at::Tensor exploration =
        at::cat({ExplorationRoutes(options_.encoder_exploration, shape.encoder_layers, routes),
                 ExplorationRoutes(options_.decoder_exploration, shape.decoder_layers, routes)},
                0);
    return at::where(replace, exploration, routes);
  }

  LearnedRoutingOptions options_;
  std::shared_ptr<RouterNetworkImpl> router_;
};

absl::StatusOr<std::shared_ptr<RoutingPlugin>> MakeLearnedRouting(const RoutingContext& context,
                                                                  const LearnedRoutingParams& params) {
  LearnedRoutingOptions options;
  TASKMOE_ASSIGN_OR_RETURN(options.router, RouterNetworkOptionsFromProto(params.router(), context));
  TASKMOE_ASSIGN_OR_RETURN(options.selection, SelectionOptionsFromProto(params.selection()));
  options.exploration_epsilon = params.exploration_epsilon();
  if (!(options.exploration_epsilon >= 0 && options.exploration_epsilon <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("learned routing: exploration_epsilon must be in [0, 1], got ", params.exploration_epsilon()));
  }
  options.encoder_exploration = ExplorationFromProto(params.encoder_exploration());
  options.decoder_exploration = ExplorationFromProto(params.decoder_exploration());
  return std::make_shared<LearnedRouting>(context, options);
}

TASKMOE_REGISTER_ROUTING_PLUGIN("learned", LearnedRoutingParams, MakeLearnedRouting);

}  // namespace
}  // namespace taskmoe
