#ifndef TASKMOE_MOE_ROUTE_WEIGHTS_H_
#define TASKMOE_MOE_ROUTE_WEIGHTS_H_

#include <ATen/ATen.h>

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

}  // namespace taskmoe

#endif  // TASKMOE_MOE_ROUTE_WEIGHTS_H_
