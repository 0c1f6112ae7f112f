#ifndef TASKMOE_MOE_ROUTING_ROUTING_H_
#define TASKMOE_MOE_ROUTING_ROUTING_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/any.pb.h"
#include "moe/base/registry.h"
#include "moe/model/route_weights.h"
#include "moe/routing/routing.pb.h"

namespace taskmoe {

// What a routing plugin knows when it is built.
struct RoutingContext {
  ModelShape shape;
  int64_t task_vector_dim = 0;
  // Rows of the task table; task ids are in [0, num_tasks).
  int64_t num_tasks = 0;
};

// One batch as the plugin sees it. Train/eval mode is the module's own (`plugin->train()` /
// `plugin->eval()`), as for any torch::nn::Module.
struct RoutingInput {
  at::Tensor task_ids;      // [batch] int64
  at::Tensor task_vectors;  // [batch, task_vector_dim] float; may require grad (trainable vectors)
  int64_t step = 0;         // optimizer steps completed so far (drives temperature schedules)
};

// Router logits of a plugin whose routes are a selection function of them.
struct RouteLogits {
  at::Tensor logits;  // [layers, batch, E], encoder layers then decoder layers
  double tau = 1.0;   // the selection's temperature at the input's step
};

// The views of every task's routes that the original saves per evaluation, each [tasks, layers, E]
// (the layout of routes.npy), CPU float:
//   soft    = what the selection function produces before sampling: softmax(logits / tau) at the
//             step for plugins with router logits (the original's route.npy);
//   soft_t1 = the same at tau = 1 (route_t1.npy);
//   argmax  = the one-hot argmax of the logits.
// Plugins without logits: soft = soft_t1 = their evaluation routes, argmax = the one-hot argmax of
// those (first maximum on ties). The evaluation expert mask applies to all three.
struct RouteViews {
  at::Tensor soft;
  at::Tensor soft_t1;
  at::Tensor argmax;
  // The selection's temperature at the step (RouteLogits::tau); unset for plugins without logits.
  std::optional<double> tau;
};

// A routing strategy. It owns its trainable parameters (the optimiser gives them the router
// learning rate; parameters with requires_grad == false are frozen) and keeps everything that
// must survive a checkpoint as parameters or buffers (see RoutingState).
//
// A plugin implements one of two things:
//   - ComputeRoutes, the routes themselves; or
//   - ComputeLogits and SelectFromLogits, when its routes are a selection function of router
//     logits. The core then masks the logits for the evaluation expert mask and derives the
//     route views (TaskRouteViews) from them.
class RoutingPlugin : public torch::nn::Module {
 public:
  explicit RoutingPlugin(const RoutingContext& context) : context_(context) {}

  // Routes for the batch: encoder [encoder_layers, batch, E], decoder [decoder_layers, batch, E],
  // on the device of `input.task_vectors`. In evaluation mode the evaluation expert mask applies.
  // Malformed input is a programmer error (CHECK).
  RouteWeights Route(const RoutingInput& input);

  const RoutingContext& context() const { return context_; }

  // Whether the routes depend on the task vectors. A task without a vector can only be routed by
  // a plugin whose routes do not (fine-tuning a new task, for example).
  virtual bool RoutesDependOnTaskVectors() const { return true; }

  // Whether this plugin can load the routing state saved by plugin `saved_plugin`, another
  // plugin than itself (a plugin always loads its own). A stage-two plugin, for example,
  // continues the router of stage one.
  virtual bool ContinuesStateOf(const std::string& saved_plugin) const { return false; }

  // Experts switched off in evaluation: [encoder_layers + decoder_layers, E], 1 = masked, or an
  // undefined tensor for none. CreateRoutingPlugin sets it from routing.eval_expert_mask; a
  // layer must keep at least one expert (CHECK).
  void SetEvaluationExpertMask(const at::Tensor& mask);

 protected:
  // The strategy itself, for plugins without logits; `input` is already checked against the
  // context.
  virtual RouteWeights ComputeRoutes(const RoutingInput& input);

  // Router logits of the batch, for plugins whose routes select from them; nullopt (the
  // default) for the rest.
  virtual std::optional<RouteLogits> ComputeLogits(const RoutingInput& input) { return std::nullopt; }
  // Routes [layers, batch, E] from the logits ComputeLogits gave (masked in evaluation).
  virtual at::Tensor SelectFromLogits(const RouteLogits& logits, const RoutingInput& input);

  // Evaluation routes [layers, batch, E] that the views of a plugin without logits show; called in
  // evaluation mode without gradient. Default: ComputeRoutes. A plugin whose evaluation routes
  // are drawn at random returns the ones in effect instead, so views use no randomness.
  virtual at::Tensor ViewedRoutes(const RoutingInput& input);

 private:
  friend RouteViews TaskRouteViews(RoutingPlugin& plugin, const at::Tensor& task_vectors,
                                   int64_t step);

  void CheckInput(const RoutingInput& input) const;
  // Views of the batch, [layers, batch, E] each.
  RouteViews Views(const RoutingInput& input);
  // The mask [layers, 1, E] on the device and dtype of `like`.
  at::Tensor MaskLike(const at::Tensor& like) const;
  at::Tensor MaskLogits(const at::Tensor& logits) const;
  at::Tensor MaskRoutes(const at::Tensor& routes) const;

  RoutingContext context_;
  at::Tensor evaluation_expert_mask_;  // [layers, E] float, or undefined
};

using RoutingRegistry =
    Registry<RoutingPlugin, const RoutingContext&, const google::protobuf::Any&>;

// Builds the plugin `config.plugin()` with `config.params()`, or the per-task table of
// `config.fixed_routes_npy()` when that is set. Errors: unknown name (lists the registered ones),
// params of the wrong message type, invalid params, a routes file of the wrong shape, an invalid
// eval_expert_mask (applied to the plugin built either way).
absl::StatusOr<std::shared_ptr<RoutingPlugin>> CreateRoutingPlugin(const RoutingConfig& config,
                                                                   const RoutingContext& context);

// Routes that are a table of per-task routes [tasks, encoder_layers + decoder_layers, E] (the
// layout of routes.npy, rows in task-table order), kept as the buffer "task_routes" so they
// travel with checkpoints. `source` names the table's origin in errors (e.g. a file).
absl::StatusOr<std::shared_ptr<RoutingPlugin>> MakeTaskRouteTable(const RoutingContext& context,
                                                                  const at::Tensor& task_routes,
                                                                  const std::string& source);
// The same from a .npy file.
absl::StatusOr<std::shared_ptr<RoutingPlugin>> ReadTaskRouteTable(const RoutingContext& context,
                                                                  const std::string& npy_path);

// Whether a checkpoint whose routing state was saved by plugin `saved_plugin` can be continued
// by `plugin`, built from `config`.
bool CanLoadRoutingState(const std::string& saved_plugin, const RoutingConfig& config,
                         const RoutingPlugin& plugin);

// Names of every registered routing plugin, sorted.
std::vector<std::string> RegisteredRoutingPlugins();

// Evaluation-mode routes of every task, [tasks, encoder_layers + decoder_layers, E] (the layout of
// routes.npy), from the task table's vectors [tasks, dim] at training step `step`, without
// gradient. The plugin's train/eval mode is restored afterwards. Evaluation routes may be random
// (a Gumbel router's SAMPLE evaluation draws one route per task, a plugin with random evaluation
// routes one route per call), drawn from torch's generator: compute the table once per prediction or
// evaluation call and reuse it for every batch of that call, as the original does.
at::Tensor TaskRoutes(RoutingPlugin& plugin, const at::Tensor& task_vectors, int64_t step);

// The route views (see RouteViews) of every task, from the task table's vectors [tasks, dim] at
// training step `step`: computed in evaluation mode without gradient and without drawing from
// any random generator; the plugin's train/eval mode is restored afterwards.
RouteViews TaskRouteViews(RoutingPlugin& plugin, const at::Tensor& task_vectors, int64_t step);

// Everything of a plugin that a checkpoint stores: parameters and buffers by their module
// path (e.g. "router.output_bias", "task_routes").
std::vector<std::pair<std::string, at::Tensor>> RoutingState(const RoutingPlugin& plugin);

// Copies saved state into `plugin`. Every name RoutingState lists must be present with the same
// shape, and no other name may be; values are converted to the plugin's dtype and device.
absl::Status LoadRoutingState(const std::map<std::string, at::Tensor>& state, RoutingPlugin& plugin);

}  // namespace taskmoe

// Registers a routing plugin in one line of its .cc:
//   TASKMOE_REGISTER_ROUTING_PLUGIN("my_plugin", MyPluginParams, MakeMyPlugin);
// where `factory(const RoutingContext&, const Params&)` returns
// absl::StatusOr<std::shared_ptr<RoutingPlugin>>.
#define TASKMOE_REGISTER_ROUTING_PLUGIN(name, Params, factory)                              \
  TASKMOE_REGISTER(::taskmoe::RoutingRegistry, name,                                         \
                   (::taskmoe::internal::TypedParamsFactory<::taskmoe::RoutingPlugin, Params,   \
                                                            ::taskmoe::RoutingContext>(        \
                       ::absl::StrCat("routing plugin '", name, "'"), factory)))

#endif  // TASKMOE_MOE_ROUTING_ROUTING_H_
