#ifndef TASKMOE_MOE_ROUTING_H_
#define TASKMOE_MOE_ROUTING_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/any.pb.h"
#include "moe/registry.h"
#include "moe/route_weights.h"
#include "moe/routing.pb.h"

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

// A routing strategy. It owns its trainable parameters (the optimiser gives them the router
// learning rate; parameters with requires_grad == false are frozen) and keeps everything that
// must survive a checkpoint as parameters or buffers (see RoutingState).
class RoutingPlugin : public torch::nn::Module {
 public:
  explicit RoutingPlugin(const RoutingContext& context) : context_(context) {}

  // Routes for the batch: encoder [encoder_layers, batch, E], decoder [decoder_layers, batch, E],
  // on the device of `input.task_vectors`. Malformed input is a programmer error (CHECK).
  RouteWeights Route(const RoutingInput& input);

  const RoutingContext& context() const { return context_; }

 protected:
  // The strategy itself; `input` is already checked against the context.
  virtual RouteWeights ComputeRoutes(const RoutingInput& input) = 0;

 private:
  RoutingContext context_;
};

using RoutingRegistry =
    Registry<RoutingPlugin, const RoutingContext&, const google::protobuf::Any&>;

// Builds the plugin `config.plugin()` with `config.params()`. Errors: unknown name (lists the
// registered ones), params of the wrong message type, invalid params.
absl::StatusOr<std::shared_ptr<RoutingPlugin>> CreateRoutingPlugin(const RoutingConfig& config,
                                                                   const RoutingContext& context);

// Names of every registered routing plugin, sorted.
std::vector<std::string> RegisteredRoutingPlugins();

// Checks routes against the model before use: both tensors defined, floating point,
// [layers, batch, experts] with the model's layer and expert counts, finite values.
absl::Status ValidateRoutes(const RouteWeights& routes, const ModelShape& shape, int64_t batch);

// Splits all-layer routes [encoder_layers + decoder_layers, batch, E] into the encoder and
// decoder parts (views, so gradients flow).
RouteWeights SplitLayers(const at::Tensor& all_layer_routes, const ModelShape& shape);

// Routes of each example's task from a per-task table [tasks, encoder_layers + decoder_layers, E]
// (the layout of routes.npy).
RouteWeights RoutesForTasks(const at::Tensor& per_task_routes, const at::Tensor& task_ids,
                            const ModelShape& shape);

// Evaluation-mode routes of every task, [tasks, encoder_layers + decoder_layers, E] (the layout of
// routes.npy), from the task table's vectors [tasks, dim] at training step `step`. The plugin's
// train/eval mode is restored afterwards.
at::Tensor TaskRoutes(RoutingPlugin& plugin, const at::Tensor& task_vectors, int64_t step);

// Everything of a plugin that a checkpoint stores: parameters and buffers by their module
// path (e.g. "router.output_bias", "task_routes").
std::vector<std::pair<std::string, at::Tensor>> RoutingState(const RoutingPlugin& plugin);

// Copies saved state into `plugin`. Every name RoutingState lists must be present with the same
// shape, and no other name may be; values are converted to the plugin's dtype and device.
absl::Status LoadRoutingState(const std::map<std::string, at::Tensor>& state, RoutingPlugin& plugin);

namespace internal {

// Unpacks the params of plugin `name` into `Params` (defaults when unset), then calls `make`.
template <typename Params, typename Make>
RoutingRegistry::Factory RoutingFactory(std::string name, Make make) {
  return [name = std::move(name), make = std::move(make)](
             const RoutingContext& context,
             const google::protobuf::Any& any) -> absl::StatusOr<std::shared_ptr<RoutingPlugin>> {
    Params params;
    if (!any.type_url().empty()) {
      if (!any.Is<Params>()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "routing plugin '", name, "' takes params of type ", Params::descriptor()->full_name(),
            ", but routing.params holds ", any.type_url()));
      }
      if (!any.UnpackTo(&params)) {
        return absl::InvalidArgumentError(absl::StrCat("routing plugin '", name,
                                                       "': routing.params does not parse as ",
                                                       Params::descriptor()->full_name()));
      }
    }
    return make(context, params);
  };
}

}  // namespace internal
}  // namespace taskmoe

// Registers a routing plugin in one line of its .cc:
//   TASKMOE_REGISTER_ROUTING_PLUGIN("average", AverageRoutingParams, MakeAverageRouting);
// where `factory(const RoutingContext&, const Params&)` returns
// absl::StatusOr<std::shared_ptr<RoutingPlugin>>.
#define TASKMOE_REGISTER_ROUTING_PLUGIN(name, Params, factory) \
  TASKMOE_REGISTER(::taskmoe::RoutingRegistry, name,         \
                   ::taskmoe::internal::RoutingFactory<Params>(name, factory))

#endif  // TASKMOE_MOE_ROUTING_H_
