#include "moe/routing/routing.h"

#include <set>

#include "absl/strings/str_join.h"
#include "glog/logging.h"
#include "moe/base/status_macros.h"
#include "moe/formats/npy.h"
#include "moe/formats/safetensors.h"
#include "moe/formats/tensor_shape.h"
#include "moe/routing/expert_mask.h"

namespace taskmoe {
namespace {

// Routes of each task from its row of a table [tasks, layers, E].
class TaskRouteTable : public RoutingPlugin {
 public:
  TaskRouteTable(const RoutingContext& context, const at::Tensor& task_routes)
      : RoutingPlugin(context) {
    task_routes_ = register_buffer("task_routes", task_routes);
  }

  bool RoutesDependOnTaskVectors() const override { return false; }

 protected:
  RouteWeights ComputeRoutes(const RoutingInput& input) override {
    return RoutesForTasks(task_routes_, input.task_ids, context().shape);
  }

 private:
  at::Tensor task_routes_;  // [tasks, layers, experts]
};

absl::Status CheckContext(const RoutingContext& context) {
  const ModelShape& shape = context.shape;
  if (shape.encoder_layers < 0 || shape.decoder_layers < 0 || shape.experts < 1 ||
      context.task_vector_dim < 1 || context.num_tasks < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "routing context needs layers >= 0, experts >= 1, task_vector_dim >= 1, num_tasks >= 1; got ",
        shape.encoder_layers, "+", shape.decoder_layers, " layers, ", shape.experts, " experts, dim ",
        context.task_vector_dim, ", ", context.num_tasks, " tasks"));
  }
  return absl::OkStatus();
}

}  // namespace

void RoutingPlugin::CheckInput(const RoutingInput& input) const {
  CHECK(input.task_ids.defined() && input.task_vectors.defined()) << "routing input is incomplete";
  CHECK_EQ(input.task_ids.dim(), 1)
      << "task_ids must be [batch], got " << ShapeString(input.task_ids.sizes());
  CHECK_EQ(input.task_ids.scalar_type(), at::kLong) << "task_ids must be int64";
  CHECK_EQ(input.task_vectors.dim(), 2)
      << "task_vectors must be [batch, dim], got " << ShapeString(input.task_vectors.sizes());
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
}

RouteWeights RoutingPlugin::Route(const RoutingInput& input) {
  CheckInput(input);
  const bool masked = !is_training() && evaluation_expert_mask_.defined();
  if (std::optional<RouteLogits> logits = ComputeLogits(input)) {
    if (masked) logits->logits = MaskLogits(logits->logits);
    return SplitLayers(SelectFromLogits(*logits, input), context_.shape);
  }
  const RouteWeights routes = ComputeRoutes(input);
  if (!masked) return routes;
  return SplitLayers(MaskRoutes(at::cat({routes.encoder, routes.decoder}, 0)), context_.shape);
}

RouteWeights RoutingPlugin::ComputeRoutes(const RoutingInput&) {
  LOG(FATAL) << "a routing plugin overrides ComputeRoutes, or ComputeLogits and SelectFromLogits";
}

at::Tensor RoutingPlugin::SelectFromLogits(const RouteLogits&, const RoutingInput&) {
  LOG(FATAL) << "a routing plugin that overrides ComputeLogits overrides SelectFromLogits too";
}

at::Tensor RoutingPlugin::ViewedRoutes(const RoutingInput& input) {
  const RouteWeights routes = ComputeRoutes(input);
  return at::cat({routes.encoder, routes.decoder}, 0);
}

void RoutingPlugin::SetEvaluationExpertMask(const at::Tensor& mask) {
  if (mask.defined()) {
    const ModelShape& shape = context_.shape;
    CHECK(mask.sizes().vec() ==
          std::vector<int64_t>({shape.encoder_layers + shape.decoder_layers, shape.experts}))
        << "expert mask of shape " << ShapeString(mask.sizes());
    CHECK(((mask == 0).sum(-1) > 0).all().item<bool>()) << "the expert mask leaves a layer no expert";
  }
  evaluation_expert_mask_ = mask.defined() ? mask.to(at::kFloat) : mask;
}

at::Tensor RoutingPlugin::MaskLike(const at::Tensor& like) const {
  return evaluation_expert_mask_.unsqueeze(1).to(like.device(), like.scalar_type());
}

at::Tensor RoutingPlugin::MaskLogits(const at::Tensor& logits) const {
  // As the original's override: a masked logit is lowered by 1e10, far below any other.
  return logits - 1e10 * MaskLike(logits);
}

at::Tensor RoutingPlugin::MaskRoutes(const at::Tensor& routes) const {
  const at::Tensor kept = 1 - MaskLike(routes);
  const at::Tensor remaining = routes * kept;
  const at::Tensor total = remaining.sum(-1, /*keepdim=*/true);
  // A route whose weight was all on masked experts has nothing to renormalise: uniform over the rest.
  const at::Tensor uniform_rest = (kept / kept.sum(-1, /*keepdim=*/true)).expand_as(routes);
  return at::where(total > 0, remaining / total.clamp_min(1e-30), uniform_rest);
}

RouteViews RoutingPlugin::Views(const RoutingInput& input) {
  CheckInput(input);
  const bool masked = evaluation_expert_mask_.defined();
  const int64_t experts = context_.shape.experts;
  if (std::optional<RouteLogits> logits = ComputeLogits(input)) {
    const at::Tensor values = masked ? MaskLogits(logits->logits) : logits->logits;
    return {at::softmax(values / logits->tau, -1), at::softmax(values, -1),
            at::one_hot(values.argmax(-1), experts).to(values.scalar_type()), logits->tau};
  }
  at::Tensor routes = ViewedRoutes(input);
  if (masked) routes = MaskRoutes(routes);
  return {routes, routes, at::one_hot(routes.argmax(-1), experts).to(routes.scalar_type())};
}

namespace {

// The plugin (or fixed table) the config names, before its evaluation expert mask is set.
absl::StatusOr<std::shared_ptr<RoutingPlugin>> CreateUnmaskedPlugin(const RoutingConfig& config,
                                                                   const RoutingContext& context) {
  if (config.has_fixed_routes_npy()) {
    absl::StatusOr<std::shared_ptr<RoutingPlugin>> table =
        ReadTaskRouteTable(context, config.fixed_routes_npy());
    if (!table.ok()) {
      return absl::Status(table.status().code(),
                          absl::StrCat("routing.fixed_routes_npy: ", table.status().message()));
    }
    return table;
  }
  TASKMOE_RETURN_IF_ERROR(CheckContext(context));
  absl::StatusOr<std::shared_ptr<RoutingPlugin>> plugin =
      RoutingRegistry::Global().Create(config.plugin(), context, config.params());
  if (!plugin.ok()) {
    return absl::Status(plugin.status().code(),
                        absl::StrCat("routing.plugin: ", plugin.status().message()));
  }
  return plugin;
}

}  // namespace

absl::StatusOr<std::shared_ptr<RoutingPlugin>> CreateRoutingPlugin(const RoutingConfig& config,
                                                                   const RoutingContext& context) {
  TASKMOE_ASSIGN_OR_RETURN(std::shared_ptr<RoutingPlugin> plugin,
                           CreateUnmaskedPlugin(config, context));
  absl::StatusOr<at::Tensor> mask =
      ParseEvaluationExpertMask(config.eval_expert_mask(), context.shape);
  if (!mask.ok()) {
    return absl::Status(mask.status().code(), absl::StrCat("routing.", mask.status().message()));
  }
  plugin->SetEvaluationExpertMask(*mask);
  return plugin;
}

absl::StatusOr<std::shared_ptr<RoutingPlugin>> MakeTaskRouteTable(const RoutingContext& context,
                                                                  const at::Tensor& task_routes,
                                                                  const std::string& source) {
  TASKMOE_RETURN_IF_ERROR(CheckContext(context));
  const ModelShape& shape = context.shape;
  const std::vector<int64_t> expected = {
      context.num_tasks, shape.encoder_layers + shape.decoder_layers, shape.experts};
  if (!task_routes.defined() || task_routes.sizes().vec() != expected ||
      !at::isFloatingType(task_routes.scalar_type())) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": expected float routes [tasks, layers, experts] = [",
        absl::StrJoin(expected, ", "), "], got ",
        task_routes.defined() ? c10::toString(task_routes.scalar_type()) : "nothing", " ",
        task_routes.defined() ? ShapeString(task_routes.sizes()) : ""));
  }
  if (!at::isfinite(task_routes).all().item<bool>()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": routes hold NaN or infinite values"));
  }
  return std::make_shared<TaskRouteTable>(context, task_routes.to(at::kFloat));
}

absl::StatusOr<std::shared_ptr<RoutingPlugin>> ReadTaskRouteTable(const RoutingContext& context,
                                                                  const std::string& npy_path) {
  if (npy_path.empty()) return absl::InvalidArgumentError("no routes file given (.npy)");
  TASKMOE_ASSIGN_OR_RETURN(const at::Tensor routes, ReadNpy(npy_path));
  return MakeTaskRouteTable(context, routes, npy_path);
}

bool CanLoadRoutingState(const std::string& saved_plugin, const RoutingConfig& config,
                         const RoutingPlugin& plugin) {
  if (config.has_fixed_routes_npy()) return false;  // the table is the file, not saved state
  return saved_plugin == config.plugin() || plugin.ContinuesStateOf(saved_plugin);
}

std::vector<std::string> RegisteredRoutingPlugins() { return RoutingRegistry::Global().Names(); }

at::Tensor TaskRoutes(RoutingPlugin& plugin, const at::Tensor& task_vectors, int64_t step) {
  const bool was_training = plugin.is_training();
  plugin.eval();
  at::NoGradGuard no_grad;
  const at::Tensor task_ids =
      at::arange(task_vectors.size(0), at::TensorOptions().dtype(at::kLong).device(task_vectors.device()));
  const RouteWeights routes = plugin.Route({task_ids, task_vectors, step});
  plugin.train(was_training);
  return PerTaskLayout(routes);
}

RouteViews TaskRouteViews(RoutingPlugin& plugin, const at::Tensor& task_vectors, int64_t step) {
  const bool was_training = plugin.is_training();
  plugin.eval();
  at::NoGradGuard no_grad;
  const at::Tensor task_ids = at::arange(
      task_vectors.size(0), at::TensorOptions().dtype(at::kLong).device(task_vectors.device()));
  const RouteViews views = plugin.Views({task_ids, task_vectors, step});
  plugin.train(was_training);
  // [layers, tasks, E] -> [tasks, layers, E] on the CPU, the layout of routes.npy.
  auto per_task = [](const at::Tensor& view) {
    return view.transpose(0, 1).to(at::kCPU, at::kFloat).contiguous();
  };
  return {per_task(views.soft), per_task(views.soft_t1), per_task(views.argmax), views.tau};
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
                                              ShapeString(target.sizes())));
    }
    if (!it->second.defined() || it->second.sizes() != target.sizes()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "routing state tensor '", name, "' has shape ",
          it->second.defined() ? ShapeString(it->second.sizes()) : "undefined", ", expected ",
          ShapeString(target.sizes())));
    }
  }
  for (const auto& [name, tensor] : state) {
    if (expected.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "routing state has tensor '", name, "' that this plugin does not have; it has: ",
          absl::StrJoin(expected, ", ")));
    }
  }
  TASKMOE_RETURN_IF_ERROR(CheckFiniteTensors(state, "routing state"));
  at::NoGradGuard no_grad;
  for (const auto& [name, target] : targets) target.copy_(state.at(name));
  return absl::OkStatus();
}

}  // namespace taskmoe
