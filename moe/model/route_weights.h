#ifndef TASKMOE_MOE_MODEL_ROUTE_WEIGHTS_H_
#define TASKMOE_MOE_MODEL_ROUTE_WEIGHTS_H_

#include <ATen/ATen.h>

#include "absl/status/status.h"

namespace taskmoe {

// How many layers the model has and how many experts each MoE layer holds: what a routing
// plugin needs to know to shape its routes.
struct ModelShape {
  int64_t encoder_layers = 0;
  int64_t decoder_layers = 0;
  int64_t experts = 1;
};

// Mixing weights of the experts for every layer and example, produced by a routing plugin and
// consumed by the model. Rows of layers that are vanilla (dense) are present and ignored.
struct RouteWeights {
  at::Tensor encoder;  // [encoder_layers, batch, experts]
  at::Tensor decoder;  // [decoder_layers, batch, experts]
};

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

// The per-task layout [batch, encoder_layers + decoder_layers, E] of routes (that of routes.npy).
at::Tensor PerTaskLayout(const RouteWeights& routes);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_MODEL_ROUTE_WEIGHTS_H_
