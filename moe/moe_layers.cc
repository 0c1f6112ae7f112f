#include "moe/moe_layers.h"

#include <utility>

#include <glog/logging.h>

namespace taskmoe {
namespace {

// Rows `rows` of a per-example tensor; tensors that broadcast over the batch (size 1 in
// dimension 0, e.g. the causal bias) and undefined ones pass through.
at::Tensor SelectRows(const at::Tensor& tensor, const at::Tensor& rows) {
  if (!tensor.defined() || !rows.defined() || tensor.size(0) == 1) return tensor;
  return tensor.index_select(0, rows);
}

// sum_e route[:, e] * run(assignment_e), where run returns the expert's output for the
// assignment's rows; rows of an expert that ran on part of the batch are scattered back.
template <typename RunExpert>
at::Tensor MixExperts(const at::Tensor& hidden_states, const at::Tensor& route,
                      const std::vector<ExpertAssignment>& assignments, RunExpert run) {
  at::Tensor mixed;
  for (const ExpertAssignment& assignment : assignments) {
    const at::Tensor weight =
        SelectRows(route.select(1, assignment.expert), assignment.rows)
            .to(hidden_states.scalar_type())
            .view({-1, 1, 1});
    const at::Tensor contribution = run(assignment) * weight;
    if (!assignment.rows.defined()) {
      mixed = mixed.defined() ? mixed + contribution : contribution;
    } else {
      if (!mixed.defined()) mixed = at::zeros_like(hidden_states);
      mixed = mixed.index_add(0, assignment.rows, contribution);
    }
  }
  // Every weight zero: the weighted sum is zero.
  return mixed.defined() ? mixed : at::zeros_like(hidden_states);
}

void CheckRoute(const at::Tensor& route, int64_t batch, int64_t experts) {
  CHECK(route.defined()) << "an MoE layer needs route weights (pass RouteWeights to the model)";
  CHECK(route.dim() == 2 && route.size(0) == batch && route.size(1) == experts)
      << "MoE layer route has shape " << route.sizes() << ", expected [" << batch << ", "
      << experts << "]";
}

}  // namespace

std::vector<ExpertAssignment> AssignExperts(const at::Tensor& route) {
  CHECK_EQ(route.dim(), 2) << "route must be [batch, experts], got " << route.sizes();
  const int64_t batch = route.size(0);
  const at::Tensor used = route.detach().ne(0).to(at::kCPU).contiguous();
  const auto used_at = used.accessor<bool, 2>();
  std::vector<ExpertAssignment> assignments;
  for (int64_t e = 0; e < route.size(1); ++e) {
    std::vector<int64_t> rows;
    for (int64_t b = 0; b < batch; ++b) {
      if (used_at[b][e]) rows.push_back(b);
    }
    if (rows.empty()) continue;
    ExpertAssignment assignment;
    assignment.expert = e;
    if (static_cast<int64_t>(rows.size()) < batch) {
      assignment.rows = at::tensor(rows, at::kLong).to(route.device());
    }
    assignments.push_back(std::move(assignment));
  }
  return assignments;
}

MoeEncoderLayerImpl::MoeEncoderLayerImpl(const BartLayerOptions& options, int64_t num_experts) {
  CHECK_GE(num_experts, 1);
  experts = register_module("experts", torch::nn::ModuleList());
  for (int64_t e = 0; e < num_experts; ++e) experts->push_back(BartEncoderLayer(options));
}

BartEncoderLayerImpl& MoeEncoderLayerImpl::expert(int64_t index) const {
  return *experts->ptr<BartEncoderLayerImpl>(index);
}

at::Tensor MoeEncoderLayerImpl::Forward(const at::Tensor& hidden_states,
                                        const at::Tensor& attention_bias,
                                        const at::Tensor& route) {
  CheckRoute(route, hidden_states.size(0), num_experts());
  return MixExperts(hidden_states, route, AssignExperts(route),
                    [&](const ExpertAssignment& assignment) {
                      return expert(assignment.expert)
                          .Forward(SelectRows(hidden_states, assignment.rows),
                                   SelectRows(attention_bias, assignment.rows), at::Tensor());
                    });
}

void MoeDecoderLayerCache::Reorder(const at::Tensor& batch_index) {
  const at::Tensor index = batch_index.to(at::kCPU, at::kLong).contiguous();
  const auto index_at = index.accessor<int64_t, 1>();
  for (ExpertCache& expert_cache : experts) {
    if (expert_cache.cache == nullptr) continue;
    // Where each old batch row sits in this expert's cache (-1: not there).
    std::vector<int64_t> position(batch, -1);
    const auto rows_at = expert_cache.rows.accessor<int64_t, 1>();
    for (int64_t i = 0; i < expert_cache.rows.size(0); ++i) position[rows_at[i]] = i;
    std::vector<int64_t> new_rows;
    std::vector<int64_t> kept;
    for (int64_t j = 0; j < index.size(0); ++j) {
      const int64_t old_row = index_at[j];
      CHECK(old_row >= 0 && old_row < batch)
          << "reorder index " << old_row << " outside the batch of " << batch;
      if (position[old_row] >= 0) {
        new_rows.push_back(j);
        kept.push_back(position[old_row]);
      }
    }
    expert_cache.cache->Reorder(at::tensor(kept, at::kLong).to(batch_index.device()));
    expert_cache.rows = at::tensor(new_rows, at::kLong);
  }
  batch = index.size(0);
}

MoeDecoderLayerImpl::MoeDecoderLayerImpl(const BartLayerOptions& options, int64_t num_experts) {
  CHECK_GE(num_experts, 1);
  experts = register_module("experts", torch::nn::ModuleList());
  for (int64_t e = 0; e < num_experts; ++e) experts->push_back(BartDecoderLayer(options));
}

BartDecoderLayerImpl& MoeDecoderLayerImpl::expert(int64_t index) const {
  return *experts->ptr<BartDecoderLayerImpl>(index);
}

std::unique_ptr<DecoderBlockCache> MoeDecoderLayerImpl::NewCache() const {
  auto cache = std::make_unique<MoeDecoderLayerCache>();
  cache->experts.resize(num_experts());
  return cache;
}

at::Tensor MoeDecoderLayerImpl::Forward(const at::Tensor& hidden_states,
                                        const at::Tensor& self_attention_bias,
                                        const at::Tensor& encoder_hidden_states,
                                        const at::Tensor& cross_attention_bias,
                                        const at::Tensor& route, DecoderBlockCache* cache) {
  const int64_t batch = hidden_states.size(0);
  CheckRoute(route, batch, num_experts());
  const std::vector<ExpertAssignment> assignments = AssignExperts(route);

  MoeDecoderLayerCache* moe_cache = nullptr;
  if (cache != nullptr) {
    moe_cache = dynamic_cast<MoeDecoderLayerCache*>(cache);
    CHECK(moe_cache != nullptr) << "MoE decoder layer got a cache it did not create";
    CHECK(moe_cache->batch == 0 || moe_cache->batch == batch)
        << "decoding step has batch " << batch << ", the cache holds " << moe_cache->batch;
    moe_cache->batch = batch;
    std::vector<bool> assigned(num_experts(), false);
    for (const ExpertAssignment& assignment : assignments) {
      assigned[assignment.expert] = true;
      MoeDecoderLayerCache::ExpertCache& expert_cache = moe_cache->experts[assignment.expert];
      const at::Tensor rows = assignment.rows.defined() ? assignment.rows.to(at::kCPU)
                                                        : at::arange(batch, at::kLong);
      if (expert_cache.cache == nullptr) {
        expert_cache.cache = expert(assignment.expert).NewCache();
        expert_cache.rows = rows;
      } else {
        CHECK(expert_cache.rows.equal(rows))
            << "routes changed between decoding steps: expert " << assignment.expert
            << " now serves other examples than its cache holds";
      }
    }
    for (int64_t e = 0; e < num_experts(); ++e) {
      const auto& expert_cache = moe_cache->experts[e];
      CHECK(assigned[e] || expert_cache.cache == nullptr || expert_cache.rows.numel() == 0)
          << "routes changed between decoding steps: expert " << e << " is no longer used";
    }
  }

  return MixExperts(
      hidden_states, route, assignments, [&](const ExpertAssignment& assignment) {
        const at::Tensor& rows = assignment.rows;
        return expert(assignment.expert)
            .Forward(SelectRows(hidden_states, rows), self_attention_bias,
                     SelectRows(encoder_hidden_states, rows),
                     SelectRows(cross_attention_bias, rows), at::Tensor(),
                     moe_cache != nullptr ? moe_cache->experts[assignment.expert].cache.get()
                                          : nullptr);
      });
}

}  // namespace taskmoe
