#include "moe/routing.h"

#include <set>

#include "absl/strings/str_join.h"
#include "glog/logging.h"

namespace taskmoe {
namespace {

int64_t AllLayers(const ModelShape& shape) { return shape.encoder_layers + shape.decoder_layers; }

std::string ShapeString(const at::Tensor& tensor) {
  return absl::StrCat("[", absl::StrJoin(tensor.sizes(), ", "), "]");
}

absl::Status ValidatePart(const at::Tensor& routes, const char* part, int64_t layers,
                          int64_t batch, int64_t experts) {
  if (!routes.defined()) return absl::InvalidArgumentError(absl::StrCat(part, " routes are undefined"));
  const std::vector<int64_t> expected = {layers, batch, experts};
  if (routes.sizes().vec() != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        part, " routes have shape ", ShapeString(routes), ", expected [layers, batch, experts] = [",
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

RouteWeights RoutingPlugin::Route(const RoutingInput& input) {
  CHECK(input.task_ids.defined() && input.task_vectors.defined()) << "routing input is incomplete";
  CHECK_EQ(input.task_ids.dim(), 1) << "task_ids must be [batch], got " << ShapeString(input.task_ids);
  CHECK_EQ(input.task_ids.scalar_type(), at::kLong) << "task_ids must be int64";
  CHECK_EQ(input.task_vectors.dim(), 2)
      << "task_vectors must be [batch, dim], got " << ShapeString(input.task_vectors);
  CHECK_EQ(input.task_vectors.size(0), input.task_ids.size(0))
      << "task_vectors and task_ids disagree on the batch size";
  CHECK_EQ(input.task_vectors.size(1), context_.task_vector_dim)
      << "task_vectors have dim " << input.task_vectors.size(1) << ", the plugin was built for "
      << context_.task_vector_dim;
  CHECK_GE(input.step, 0) << "step must be non-negative";
  if (input.task_ids.numel() > 0) {
    const int64_t min_id = input.task_ids.min().item<int64_t>();
    const int64_t max_id = input.task_ids.max().item<int64_t>();
    CHECK(min_id >= 0 && max_id < context_.num_tasks)
        << "task ids span [" << min_id << ", " << max_id << "], the plugin knows "
        << context_.num_tasks << " tasks";
  }
  return ComputeRoutes(input);
}

absl::StatusOr<std::shared_ptr<RoutingPlugin>> CreateRoutingPlugin(const RoutingConfig& config,
                                                                   const RoutingContext& context) {
  const ModelShape& shape = context.shape;
  if (shape.encoder_layers < 0 || shape.decoder_layers < 0 || shape.experts < 1 ||
      context.task_vector_dim < 1 || context.num_tasks < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "routing context needs layers >= 0, experts >= 1, task_vector_dim >= 1, num_tasks >= 1; got ",
        shape.encoder_layers, "+", shape.decoder_layers, " layers, ", shape.experts, " experts, dim ",
        context.task_vector_dim, ", ", context.num_tasks, " tasks"));
  }
  absl::StatusOr<std::shared_ptr<RoutingPlugin>> plugin =
      RoutingRegistry::Global().Create(config.plugin(), context, config.params());
  if (!plugin.ok()) {
    return absl::Status(plugin.status().code(),
                        absl::StrCat("routing.plugin: ", plugin.status().message()));
  }
  return plugin;
}

std::vector<std::string> RegisteredRoutingPlugins() { return RoutingRegistry::Global().Names(); }

absl::Status ValidateRoutes(const RouteWeights& routes, const ModelShape& shape, int64_t batch) {
  absl::Status status =
      ValidatePart(routes.encoder, "encoder", shape.encoder_layers, batch, shape.experts);
  if (!status.ok()) return status;
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

at::Tensor TaskRoutes(RoutingPlugin& plugin, const at::Tensor& task_vectors, int64_t step) {
  const bool was_training = plugin.is_training();
  plugin.eval();
  at::NoGradGuard no_grad;
  const at::Tensor task_ids =
      at::arange(task_vectors.size(0), at::TensorOptions().dtype(at::kLong).device(task_vectors.device()));
  const RouteWeights routes = plugin.Route({task_ids, task_vectors, step});
  plugin.train(was_training);
  return at::cat({routes.encoder, routes.decoder}, 0).transpose(0, 1).contiguous();
}

std::vector<std::pair<std::string, at::Tensor>> RoutingState(const RoutingPlugin& plugin) {
  std::vector<std::pair<std::string, at::Tensor>> state;
  for (const auto& item : plugin.named_parameters()) state.emplace_back(item.key(), item.value());
  for (const auto& item : plugin.named_buffers()) state.emplace_back(item.key(), item.value());
  return state;
}

absl::Status LoadRoutingState(const std::map<std::string, at::Tensor>& state, RoutingPlugin& plugin) {
  const std::vector<std::pair<std::string, at::Tensor>> targets = RoutingState(plugin);
  std::set<std::string> expected;
  for (const auto& [name, target] : targets) {
    expected.insert(name);
    auto it = state.find(name);
    if (it == state.end()) {
      return absl::NotFoundError(absl::StrCat("routing state lacks tensor '", name, "' of shape ",
                                              ShapeString(target)));
    }
    if (!it->second.defined() || it->second.sizes() != target.sizes()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "routing state tensor '", name, "' has shape ",
          it->second.defined() ? ShapeString(it->second) : "undefined", ", expected ",
          ShapeString(target)));
    }
  }
  for (const auto& [name, tensor] : state) {
    if (expected.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "routing state has tensor '", name, "' that this plugin does not have; it has: ",
          absl::StrJoin(expected, ", ")));
    }
  }
  at::NoGradGuard no_grad;
  for (const auto& [name, target] : targets) target.copy_(state.at(name));
  return absl::OkStatus();
}

}  // namespace taskmoe
