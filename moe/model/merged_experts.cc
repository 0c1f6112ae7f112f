#include "moe/model/merged_experts.h"

#include <cstdint>
#include <memory>
#include <tuple>

#include <glog/logging.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

namespace taskmoe {
namespace {

// The weight and bias members of module `index` of each expert's module list, as `Layer` (Linear
// or LayerNorm), or false when the merged module there is not a `Layer`.
template <typename Layer>
bool BindLayer(torch::nn::Module& merged_module,
               const std::vector<std::vector<std::shared_ptr<torch::nn::Module>>>& expert_modules,
               size_t index, const at::Tensor& weights, int64_t* bound) {
  auto* merged = merged_module.as<Layer>();
  if (merged == nullptr) return false;
  std::vector<at::Tensor> expert_weights, expert_biases;
  for (const auto& modules : expert_modules) {
    auto* expert = modules[index]->as<Layer>();
    CHECK(expert != nullptr) << "merged layer and expert differ in structure at module " << index;
    expert_weights.push_back(expert->weight);
    expert_biases.push_back(expert->bias);
  }
  merged->weight = MergeParameter(expert_weights, weights);
  *bound += 1;
  if (expert_biases[0].defined()) {
    merged->bias = MergeParameter(expert_biases, weights);
    *bound += 1;
  }
  return true;
}

}  // namespace

at::Tensor MergeParameter(const std::vector<at::Tensor>& members, const at::Tensor& weights) {
  CHECK_EQ(weights.numel(), static_cast<int64_t>(members.size())) << "one weight per expert";
  const at::Tensor w = weights.to(members[0].scalar_type());
  at::Tensor sum = members[0] * w[0];
  for (size_t e = 1; e < members.size(); ++e) sum = sum + members[e] * w[e];
  return sum;
}

std::vector<RouteGroup> GroupEqualRoutes(const at::Tensor& route) {
  CHECK_EQ(route.dim(), 2) << "route must be [batch, experts], got " << route.sizes();
  const int64_t batch = route.size(0);
  const at::Tensor values = route.detach().to(at::kCPU, at::kDouble);
  const at::Tensor inverse = std::get<1>(at::unique_dim(values, 0, /*sorted=*/true,
                                                        /*return_inverse=*/true));
  const int64_t groups = inverse.numel() == 0 ? 0 : inverse.max().item<int64_t>() + 1;
  std::vector<RouteGroup> result;
  for (int64_t g = 0; g < groups; ++g) {
    RouteGroup group;
    const at::Tensor rows = inverse.eq(g).nonzero().view({-1});
    if (rows.size(0) == batch) {
      group.weights = route.mean(0);
    } else {
      group.rows = rows.to(route.device());
      group.weights = route.index_select(0, group.rows).mean(0);
    }
    result.push_back(std::move(group));
  }
  return result;
}

void BindMergedParameters(torch::nn::Module& merged, const torch::nn::ModuleList& experts,
                          const at::Tensor& weights) {
  CHECK_EQ(weights.numel(), static_cast<int64_t>(experts->size()))
      << "one weight per expert is needed";
  const std::vector<std::shared_ptr<torch::nn::Module>> merged_modules = merged.modules();
  std::vector<std::vector<std::shared_ptr<torch::nn::Module>>> expert_modules;
  for (const auto& expert : *experts) {
    expert_modules.push_back(expert->modules());
    CHECK_EQ(expert_modules.back().size(), merged_modules.size())
        << "merged layer and expert differ in structure";
  }
  int64_t bound = 0;
  for (size_t i = 0; i < merged_modules.size(); ++i) {
    if (!BindLayer<torch::nn::LinearImpl>(*merged_modules[i], expert_modules, i, weights, &bound)) {
      BindLayer<torch::nn::LayerNormImpl>(*merged_modules[i], expert_modules, i, weights, &bound);
    }
  }
  // Every parameter of an expert must have a merged counterpart, or the merged layer would run
  // with its own stale value of it.
  CHECK_EQ(bound, static_cast<int64_t>((*experts)[0]->parameters().size()))
      << "an expert has parameters outside its Linear and LayerNorm modules";
}

at::Tensor GroupRows(const at::Tensor& tensor, const RouteGroup& group) {
  if (!tensor.defined() || tensor.size(0) == 1 || !group.rows.defined()) return tensor;
  return tensor.index_select(0, group.rows);
}

at::Tensor RunMergedGroups(
    const at::Tensor& hidden_states, const std::vector<RouteGroup>& groups,
    torch::nn::Module& merged, const torch::nn::ModuleList& experts, bool training,
    const std::function<at::Tensor(size_t g, const RouteGroup& group)>& run) {
  merged.train(training);
  at::Tensor output;
  for (size_t g = 0; g < groups.size(); ++g) {
    BindMergedParameters(merged, experts, groups[g].weights);
    const at::Tensor group_output = run(g, groups[g]);
    if (!groups[g].rows.defined()) return group_output;
    if (!output.defined()) output = at::zeros_like(hidden_states);
    output = output.index_copy(0, groups[g].rows, group_output);
  }
  // An empty batch has no groups.
  return output.defined() ? output : at::zeros_like(hidden_states);
}

}  // namespace taskmoe
