// Routing plugin "polytropon" (Ponti et al. 2023): a learned task x expert allocation of
// Bernoulli probabilities, relaxed (Gumbel-sigmoid) in training so a task can learn to use several
// experts at once; the route is the allocation normalised over the experts.
#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "moe/base/status_macros.h"
#include "moe/routing/routing.h"
#include "routing_plugins/polytropon/polytropon.pb.h"
#include "routing_plugins/router/router.h"

namespace taskmoe {
namespace {

struct PolytroponOptions {
  bool shared = false;  // one allocation per task for every layer
  double init_logit = 0.0;
  double temperature = 1.0;
  bool binary_evaluation = false;
  std::optional<RouterNetworkOptions> router;  // set: allocation logits from the task vectors
  double prior_logit = 0.0;                    // logit(k / E), the prior's target log-odds
  double prior_weight = 0.0;                   // lambda; 0 = no prior
};

// The active-expert prior as a gradient term. The routing interface has no auxiliary loss, so
// instead of adding lambda * R to the objective, the allocation logits pass through this identity,
// whose backward adds lambda * dR/dlogits, R = sum over its entries of
// KL(Bernoulli(sigmoid(logit)) || Bernoulli(q)). Once per forward pass this is exactly the gradient
// of objective + lambda * R. dKL/dlogit = (logit(p) - logit(q)) * p * (1 - p) with p =
// sigmoid(logit), so logit(p) is the logit itself and needs no log of a saturated p.
class ActiveExpertPrior : public torch::autograd::Function<ActiveExpertPrior> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& logits,
                            double prior_logit, double weight) {
    ctx->save_for_backward({logits});
    ctx->saved_data["prior_logit"] = prior_logit;
    ctx->saved_data["weight"] = weight;
    return logits.clone();
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const at::Tensor logits = ctx->get_saved_variables()[0];
    const at::Tensor p = logits.sigmoid();
    const at::Tensor prior_grad = (logits - ctx->saved_data["prior_logit"].toDouble()) * p * (1 - p);
    // No gradient for the two constants.
    return {grad_outputs[0] + ctx->saved_data["weight"].toDouble() * prior_grad, at::Tensor(), at::Tensor()};
  }
};

// z / sum_e z from log z: a softmax of log-sigmoids is exactly the normalised allocation, and it
// never divides by zero, even where every sigmoid of a row underflows.
at::Tensor NormaliseLogAllocation(const at::Tensor& log_z) { return log_z.softmax(-1); }

class PolytroponRouting : public RoutingPlugin {
 public:
  PolytroponRouting(const RoutingContext& context, const PolytroponOptions& options)
      : RoutingPlugin(context), options_(options) {
    if (options.router) {
      router_ = register_module("router", MakeRouterNetwork(*options.router));
      return;
    }
    const ModelShape& shape = context.shape;
    const std::vector<int64_t> size =
        options.shared ? std::vector<int64_t>{context.num_tasks, shape.experts}
                       : std::vector<int64_t>{context.num_tasks, shape.encoder_layers + shape.decoder_layers,
                                              shape.experts};
    allocation_logits_ = register_parameter("allocation_logits", at::full(size, options.init_logit));
  }

  bool RoutesDependOnTaskVectors() const override { return router_ != nullptr; }

 protected:
  RouteWeights ComputeRoutes(const RoutingInput& input) override {
    // A shared allocation is sampled once per example and used by every layer.
    const int64_t layers = context().shape.encoder_layers + context().shape.decoder_layers;
    return SplitLayers(Allocate(AllocationLogits(input)).expand({layers, -1, -1}), context().shape);
  }

 private:
  bool PriorApplies() const { return is_training() && options_.prior_weight > 0; }

  at::Tensor WithPrior(const at::Tensor& logits) const {
    return ActiveExpertPrior::apply(logits, options_.prior_logit, options_.prior_weight);
  }

  // Allocation logits of the batch, [layers, batch, E], or [1, batch, E] when shared.
  at::Tensor AllocationLogits(const RoutingInput& input) const {
    if (router_) {
      const at::Tensor logits = router_->forward(input.task_vectors) + options_.init_logit;
      return PriorApplies() ? WithPrior(logits) : logits;
    }
    // The rows of the batch's distinct tasks, then one per example: the prior counts each task
    // of the batch once, however many of its examples the batch holds.
    const auto [tasks, example_rows] = at::_unique(input.task_ids.to(allocation_logits_.device()),
                                                   /*sorted=*/true, /*return_inverse=*/true);
    at::Tensor rows = allocation_logits_.index_select(0, tasks);
    if (PriorApplies()) rows = WithPrior(rows);
    const at::Tensor per_example = rows.index_select(0, example_rows);  // [batch, (layers,) E]
    return options_.shared ? per_example.unsqueeze(0) : per_example.transpose(0, 1);
  }

  // Routes from allocation logits, of the logits' shape.
  at::Tensor Allocate(const at::Tensor& logits) const {
    if (is_training()) {
      // Logistic noise log u - log(1 - u) makes sigmoid((logit + noise) / tau) a relaxed
      // Bernoulli sample; u is kept off 0 and 1 so the noise stays finite.
      const at::Tensor u = at::rand_like(logits).clamp_(1e-6, 1 - 1e-6);
      return NormaliseLogAllocation(at::log_sigmoid((logits + u.log() - (-u).log1p()) / options_.temperature));
    }
    if (!options_.binary_evaluation) return NormaliseLogAllocation(at::log_sigmoid(logits));
    const at::Tensor active = logits >= 0;  // sigmoid(logit) >= 0.5
    const at::Tensor argmax = at::one_hot(logits.argmax(-1), logits.size(-1)).to(at::kBool);
    const at::Tensor chosen = at::where(active.any(-1, /*keepdim=*/true), active, argmax).to(logits.scalar_type());
    return chosen / chosen.sum(-1, /*keepdim=*/true);
  }

  PolytroponOptions options_;
  std::shared_ptr<RouterNetworkImpl> router_;  // with a router only
  at::Tensor allocation_logits_;               // without: [tasks, (layers,) E]
};

absl::Status InvalidParam(const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat("polytropon routing: ", message));
}

// The prior's fields; fills the prior part of `options`.
absl::Status PriorFromProto(const PolytroponRoutingParams& params, int64_t experts, PolytroponOptions& options) {
  const double k = params.expected_active_experts(), weight = params.prior_weight();
  if (k != 0 && !(k > 0 && k <= experts)) {
    return InvalidParam(absl::StrCat("expected_active_experts must be 0 (off) or in (0, ", experts,
                                     "] (the experts), got ", k));
  }
  if (!(weight >= 0 && std::isfinite(weight))) {
    return InvalidParam(absl::StrCat("prior_weight must be finite and >= 0, got ", weight));
  }
  if (weight > 0 && k == 0) {
    return InvalidParam("prior_weight > 0 needs expected_active_experts in (0, E]");
  }
  // At k = E the target Bernoulli(1) would make the pull infinite; a probability just below 1
  // keeps it finite and still drives every expert on.
  const double q = std::min(k / experts, 1 - 1e-6);
  options.prior_logit = k > 0 ? std::log(q) - std::log1p(-q) : 0.0;
  options.prior_weight = weight;
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<RoutingPlugin>> MakePolytroponRouting(const RoutingContext& context,
                                                                     const PolytroponRoutingParams& params) {
  PolytroponOptions options;
  options.shared = params.allocation() == PolytroponRoutingParams::SHARED;
  const double p = params.init_probability();
  if (!(p > 0 && p < 1)) return InvalidParam(absl::StrCat("init_probability must be in (0, 1), got ", p));
  options.init_logit = std::log(p) - std::log1p(-p);
  options.temperature = params.temperature();
  if (!(options.temperature > 0)) {
    return InvalidParam(absl::StrCat("temperature must be > 0, got ", params.temperature()));
  }
  options.binary_evaluation = params.binary_evaluation();
  if (params.has_router()) {
    // A router gives logits per layer; one shared allocation would have to discard or average them.
    if (options.shared) {
      return InvalidParam("allocation must be PER_LAYER with router (a router's logits are per layer), got SHARED");
    }
    TASKMOE_ASSIGN_OR_RETURN(options.router, RouterNetworkOptionsFromProto(params.router(), context));
  }
  TASKMOE_RETURN_IF_ERROR(PriorFromProto(params, context.shape.experts, options));
  return std::make_shared<PolytroponRouting>(context, options);
}

TASKMOE_REGISTER_ROUTING_PLUGIN("polytropon", PolytroponRoutingParams, MakePolytroponRouting);

}  // namespace
}  // namespace taskmoe
