#include "moe/model/merged_experts.h"

#include <cstdint>
#include <memory>
#include <tuple>

#include <glog/logging.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

namespace taskmoe {
namespace {

// The slots of module `index` when it is a `Layer` (Linear or LayerNorm): its weight and, when it
// has one, its bias. False when the merged module there is not a `Layer`.
template <typename Layer>
bool AddLayerSlots(torch::nn::Module& merged_module,
                   const std::vector<std::vector<std::shared_ptr<torch::nn::Module>>>& expert_modules,
                   size_t index, std::vector<MergedSlot>& slots) {
  auto* merged = merged_module.as<Layer>();
  if (merged == nullptr) return false;
  MergedSlot weight{&merged->weight, {}};
  MergedSlot bias{&merged->bias, {}};
  for (const auto& modules : expert_modules) {
    auto* expert = modules[index]->as<Layer>();
    CHECK(expert != nullptr) << "merged layer and expert differ in structure at module " << index;
    weight.experts.push_back(expert->weight);
    bias.experts.push_back(expert->bias);
  }
  slots.push_back(std::move(weight));
  if (bias.experts[0].defined()) slots.push_back(std::move(bias));
  return true;
}

}  // namespace

at::Tensor MergeParameters(const std::vector<at::Tensor>& members, const at::Tensor& weights) {
  CHECK(weights.dim() == 2 && weights.size(1) == static_cast<int64_t>(members.size()))
      << "weights must be [groups, " << members.size() << "], got " << weights.sizes();
  const at::Tensor stacked = at::stack(members).view({weights.size(1), -1});
  std::vector<int64_t> shape = {weights.size(0)};
  for (const int64_t size : members[0].sizes()) shape.push_back(size);
  return at::matmul(weights.to(stacked.scalar_type()), stacked).view(shape);
}

std::vector<MergedSlot> MergedSlots(torch::nn::Module& merged, const torch::nn::ModuleList& experts) {
  const std::vector<std::shared_ptr<torch::nn::Module>> merged_modules = merged.modules();
  std::vector<std::vector<std::shared_ptr<torch::nn::Module>>> expert_modules;
  for (const auto& expert : *experts) {
    expert_modules.push_back(expert->modules());
    CHECK_EQ(expert_modules.back().size(), merged_modules.size())
        << "merged layer and expert differ in structure";
  }
  std::vector<MergedSlot> slots;
  for (size_t i = 0; i < merged_modules.size(); ++i) {
    if (!AddLayerSlots<torch::nn::LinearImpl>(*merged_modules[i], expert_modules, i, slots)) {
      AddLayerSlots<torch::nn::LayerNormImpl>(*merged_modules[i], expert_modules, i, slots);
    }
  }
  CHECK_EQ(slots.size(), (*experts)[0]->parameters().size())
      << "an expert has parameters outside its Linear and LayerNorm modules";
  return slots;
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

at::Tensor GroupRows(const at::Tensor& tensor, const RouteGroup& group) {
  if (!tensor.defined() || tensor.size(0) == 1 || !group.rows.defined()) return tensor;
  return tensor.index_select(0, group.rows);
}

at::Tensor RunMergedGroups(
    const at::Tensor& hidden_states, const std::vector<RouteGroup>& groups,
    torch::nn::Module& merged, const torch::nn::ModuleList& experts, bool training,
    const std::function<at::Tensor(size_t g, const RouteGroup& group)>& run) {
  if (groups.empty()) return at::zeros_like(hidden_states);  // an empty batch
  merged.train(training);
  std::vector<at::Tensor> group_weights;
  for (const RouteGroup& group : groups) group_weights.push_back(group.weights);
  const at::Tensor weights = at::stack(group_weights);  // [groups, experts]
  std::vector<MergedSlot> slots = MergedSlots(merged, experts);
  // Per slot, one parameter per group. unbind, not indexing: its backward stacks the groups'
  // gradients once, where G selects would each build a zero-filled [groups, ...] gradient.
  std::vector<std::vector<at::Tensor>> parameters;
  for (const MergedSlot& slot : slots) {
    parameters.push_back(MergeParameters(slot.experts, weights).unbind(0));
  }
  at::Tensor output;
  for (size_t g = 0; g < groups.size(); ++g) {
    for (size_t i = 0; i < slots.size(); ++i) *slots[i].member = parameters[i][g];
    const at::Tensor group_output = run(g, groups[g]);
    if (!groups[g].rows.defined()) return group_output;
    if (!output.defined()) output = at::zeros_like(hidden_states);
    output = output.index_copy(0, groups[g].rows, group_output);
  }
  return output;
}

}  // namespace taskmoe
