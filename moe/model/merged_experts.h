#ifndef TASKMOE_MOE_MODEL_MERGED_EXPERTS_H_
#define TASKMOE_MOE_MODEL_MERGED_EXPERTS_H_

// Merged execution of an MoE layer (ExpertExecution::kMergeParameters, after SMEAR, Muqeeth et
// al. 2023): because a route belongs to a task, the examples of a batch fall into a few groups of
// equal routes, and each group runs once through one dense layer whose parameters are the
// route-weighted sum of its experts' parameters, sum_e w_e theta_e, instead of running E experts
// and mixing their outputs. The weighted sums keep their autograd graph, so the experts and the
// route get the exact gradients of that function.

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <cstddef>
#include <functional>
#include <vector>

namespace taskmoe {

// Examples whose route rows are equal.
struct RouteGroup {
  // int64 example indices in increasing order, on the route's device; undefined when the group
  // is the whole batch.
  at::Tensor rows;
  // [experts]: the mean of the group's route rows (all equal in value). The mean, rather than
  // one row, passes the gradient to every row of the group.
  at::Tensor weights;
};

// The groups of equal rows of a route [batch, experts], ordered by their route values.
std::vector<RouteGroup> GroupEqualRoutes(const at::Tensor& route);

// sum_e weights[g, e] * members[e] for every row g of weights [groups, experts]: one merged
// parameter per group, [groups, <member shape>], from the same parameter of each expert. One
// matrix product reads each expert's parameter once, however many groups there are.
at::Tensor MergeParameters(const std::vector<at::Tensor>& members, const at::Tensor& weights);

// A parameter of the working layer (a Linear's or LayerNorm's weight or bias member) and the
// same parameter of each expert.
struct MergedSlot {
  at::Tensor* member;
  std::vector<at::Tensor> experts;
};

// Every parameter slot of `merged` (a module built like each of `experts`). CHECKs that the
// modules have the same structure and that each expert parameter has a slot, so that no
// parameter of the working layer keeps a stale value of its own.
std::vector<MergedSlot> MergedSlots(torch::nn::Module& merged, const torch::nn::ModuleList& experts);

// The rows `group` selects from a per-example tensor; undefined tensors and tensors that
// broadcast over the batch (size 1 in dimension 0) pass through.
at::Tensor GroupRows(const at::Tensor& tensor, const RouteGroup& group);

// The merged execution of a layer: merges every group's parameters at once (MergeParameters),
// then for each group binds the slots of `merged` (in the train/eval mode `training`; `merged` is
// a working module that is not registered anywhere) to the group's parameters and calls
// run(g, groups[g]) for the group's output rows; the outputs are put back in batch order,
// [batch, ...] like `hidden_states`. Groups run one after another, as each needs `merged` bound
// to its own parameters.
at::Tensor RunMergedGroups(
    const at::Tensor& hidden_states, const std::vector<RouteGroup>& groups,
    torch::nn::Module& merged, const torch::nn::ModuleList& experts, bool training,
    const std::function<at::Tensor(size_t g, const RouteGroup& group)>& run);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_MODEL_MERGED_EXPERTS_H_
