#include "moe/model/route_weights.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"
#include "moe/base/status_macros.h"
#include "moe/formats/tensor_shape.h"

namespace taskmoe {
namespace {

int64_t AllLayers(const ModelShape& shape) { return shape.encoder_layers + shape.decoder_layers; }

absl::Status ValidatePart(const at::Tensor& routes, const char* part, int64_t layers,
                          int64_t batch, int64_t experts) {
  if (!routes.defined()) return absl::InvalidArgumentError(absl::StrCat(part, " routes are undefined"));
  const std::vector<int64_t> expected = {layers, batch, experts};
  if (routes.sizes().vec() != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        part, " routes have shape ", ShapeString(routes.sizes()), ", expected [layers, batch, experts] = [",
        absl::StrJoin(expected, ", "), "]"));
  }
  if (!at::isFloatingType(routes.scalar_type())) {
    return absl::InvalidArgumentError(absl::StrCat(part, " routes have dtype ",
                                                   c10::toString(routes.scalar_type()),
                                                   ", expected a floating-point type"));
  }
  if (routes.numel() > 0 && !at::isfinite(routes).all().item<bool>()) {
    return absl::InvalidArgumentError(absl::StrCat(part, " routes contain NaN or infinite values"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRoutes(const RouteWeights& routes, const ModelShape& shape, int64_t batch) {
  TASKMOE_RETURN_IF_ERROR(
      ValidatePart(routes.encoder, "encoder", shape.encoder_layers, batch, shape.experts));
  return ValidatePart(routes.decoder, "decoder", shape.decoder_layers, batch, shape.experts);
}

RouteWeights SplitLayers(const at::Tensor& all_layer_routes, const ModelShape& shape) {
  CHECK_EQ(all_layer_routes.dim(), 3);
  CHECK_EQ(all_layer_routes.size(0), AllLayers(shape));
  return {all_layer_routes.narrow(0, 0, shape.encoder_layers),
          all_layer_routes.narrow(0, shape.encoder_layers, shape.decoder_layers)};
}

RouteWeights RoutesForTasks(const at::Tensor& per_task_routes, const at::Tensor& task_ids,
                            const ModelShape& shape) {
  CHECK_EQ(per_task_routes.dim(), 3);
  const at::Tensor ids = task_ids.to(per_task_routes.device());
  // [batch, layers, E] -> [layers, batch, E]
  return SplitLayers(per_task_routes.index_select(0, ids).transpose(0, 1), shape);
}

at::Tensor PerTaskLayout(const RouteWeights& routes) {
  return at::cat({routes.encoder, routes.decoder}, 0).transpose(0, 1).contiguous();
}

}  // namespace taskmoe
