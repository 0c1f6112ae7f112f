#include "moe/model/moe_layers.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <glog/logging.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "moe/model/batched_experts.h"
#include "moe/model/expert_jobs.h"
#include "moe/model/expert_stacks.h"
#include "moe/model/merged_experts.h"

namespace taskmoe {
namespace {

// sum over assignments of route[rows, e] * output, scattered back to the assignment's rows.
at::Tensor MixOutputs(const at::Tensor& hidden_states, const at::Tensor& route,
                      const std::vector<ExpertAssignment>& assignments,
                      const std::vector<at::Tensor>& outputs) {
  at::Tensor mixed;
  for (size_t i = 0; i < assignments.size(); ++i) {
    const ExpertAssignment& assignment = assignments[i];
    at::Tensor weight = route.select(1, assignment.expert);
    if (assignment.rows.defined()) weight = weight.index_select(0, assignment.rows);
    const at::Tensor contribution =
        outputs[i] * weight.to(hidden_states.scalar_type()).view({-1, 1, 1});
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

// Each assignment's expert output for its rows, every expert split into row blocks (one per
// worker) run by RunJobs.
std::vector<at::Tensor> RunAssignments(const at::Tensor& hidden_states, int64_t batch,
                                       const std::vector<ExpertAssignment>& assignments,
                                       std::vector<at::Tensor> inputs, const RunExpert& run,
                                       bool concurrent) {
  const int64_t workers = ConcurrentWorkers(concurrent, batch, inputs);
  // The jobs of each assignment, in row order, one block of rows per worker.
  std::vector<ExpertJob> jobs;
  std::vector<size_t> first_job;
  for (const ExpertAssignment& assignment : assignments) {
    first_job.push_back(jobs.size());
    const int64_t rows = assignment.rows.defined() ? assignment.rows.size(0) : batch;
    AppendRowBlocks(assignment.expert, assignment.rows, rows, workers, jobs);
  }
  first_job.push_back(jobs.size());
  const std::vector<at::Tensor> outputs =
      RunJobs(jobs, workers, hidden_states.is_cpu(), std::move(inputs), run);
  // Each assignment's output from its blocks.
  std::vector<at::Tensor> assignment_outputs;
  for (size_t i = 0; i < assignments.size(); ++i) {
    const std::vector<at::Tensor> blocks(outputs.begin() + first_job[i],
                                         outputs.begin() + first_job[i + 1]);
    assignment_outputs.push_back(blocks.size() == 1 ? blocks[0] : at::cat(blocks, 0));
  }
  return assignment_outputs;
}

// sum_e route[b, e] * expert_e(x[b]) over `assignments` (AssignExperts of the route).
at::Tensor RunExperts(const at::Tensor& hidden_states, const at::Tensor& route,
                      const std::vector<ExpertAssignment>& assignments,
                      std::vector<at::Tensor> inputs, const RunExpert& run, bool concurrent) {
  return MixOutputs(hidden_states, route, assignments,
                    RunAssignments(hidden_states, route.size(0), assignments, std::move(inputs),
                                   run, concurrent));
}

// Soft routes: every expert on every example as batched work (moe/model/batched_experts.h), in
// row blocks run by RunJobs. `batched(job, inputs)` returns the experts' outputs
// [E, rows, T, D] for the job's rows; inputs[0] is the route, mixed in here so that its gradient
// flows through the jobs.
at::Tensor RunBatchedExperts(const at::Tensor& route, std::vector<at::Tensor> inputs,
                             const RunExpert& batched, bool concurrent) {
  const int64_t batch = route.size(0);
  const int64_t workers = ConcurrentWorkers(concurrent, batch, inputs);
  std::vector<ExpertJob> jobs;
  AppendRowBlocks(/*expert=*/-1, at::Tensor(), batch, workers, jobs);
  const bool on_cpu = route.is_cpu();
  const std::vector<at::Tensor> blocks =
      RunJobs(jobs, workers, on_cpu, std::move(inputs),
              [&batched](const ExpertJob& job, at::TensorList job_inputs) {
                return MixExpertOutputs(batched(job, job_inputs), SelectRows(job_inputs[0], job));
              });
  return blocks.size() == 1 ? blocks[0] : at::cat(blocks, 0);
}

// `mixed` plus route[b, e] * expert_e(x[b]) for every (example, expert) whose route weight is
// zero, the experts run without an autograd graph (concurrently in row blocks, as the selected
// ones): the value does not change, and the route gets the straight-through gradient of every
// expert (RouteGradient::kAllExperts).
at::Tensor AddUnselectedExperts(const at::Tensor& mixed, const at::Tensor& hidden_states,
                                const at::Tensor& route, const std::vector<at::Tensor>& inputs,
                                const RunExpert& run, bool concurrent) {
  const std::vector<ExpertAssignment> unselected = AssignExperts(route.detach().eq(0));
  if (unselected.empty()) return mixed;
  std::vector<at::Tensor> outputs;
  {
    at::NoGradGuard no_grad;
    outputs = RunAssignments(hidden_states, route.size(0), unselected, inputs, run, concurrent);
  }
  return mixed + MixOutputs(hidden_states, route, unselected, outputs);
}

// RunExperts, plus the unselected experts' forward passes when the route's zero weights need
// their exact gradient.
at::Tensor RunLayerExperts(const at::Tensor& hidden_states, const at::Tensor& route,
                           const std::vector<ExpertAssignment>& assignments,
                           std::vector<at::Tensor> inputs, const RunExpert& run, bool concurrent,
                           RouteGradient route_gradient) {
  const bool exact = route_gradient == RouteGradient::kAllExperts && at::GradMode::is_enabled() &&
                     route.requires_grad();
  at::Tensor mixed = RunExperts(hidden_states, route, assignments, inputs, run, concurrent);
  if (!exact) return mixed;
  return AddUnselectedExperts(mixed, hidden_states, route, inputs, run, concurrent);
}

// Whether every expert runs on every example (soft routes), so that they can run batched.
bool EveryExpertOnEveryExample(const std::vector<ExpertAssignment>& assignments,
                               int64_t experts) {
  if (static_cast<int64_t>(assignments.size()) != experts) return false;
  for (const ExpertAssignment& assignment : assignments) {
    if (assignment.rows.defined()) return false;
  }
  return true;
}

// The expert layers of a ModuleList of `Layer`s.
template <typename Layer>
std::vector<Layer*> ExpertLayers(const torch::nn::ModuleList& experts) {
  std::vector<Layer*> layers;
  for (size_t e = 0; e < experts->size(); ++e) layers.push_back(experts->ptr<Layer>(e).get());
  return layers;
}

std::shared_ptr<ExpertStacks> MakeStacks(const torch::nn::ModuleList& experts,
                                         std::vector<std::vector<std::string>> groups) {
  std::vector<torch::nn::Module*> modules;
  for (size_t e = 0; e < experts->size(); ++e) modules.push_back(experts->ptr(e).get());
  return std::make_shared<ExpertStacks>(std::move(modules), std::move(groups));
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

MoeEncoderLayerImpl::MoeEncoderLayerImpl(const BartLayerOptions& layer,
                                         const MoeLayerOptions& options_)
    : options(options_) {
  CHECK_GE(options.experts(), 1);
  experts = register_module("experts", torch::nn::ModuleList());
  for (int64_t e = 0; e < options.experts(); ++e) experts->push_back(BartEncoderLayer(layer));
  if (options.execution() == ExpertExecution::kMergeParameters) {
    merged_ = std::make_shared<BartEncoderLayerImpl>(layer);
  }
  if (options.batched()) stacks_ = MakeStacks(experts, EncoderStackGroups());
}

BartEncoderLayerImpl& MoeEncoderLayerImpl::expert(int64_t index) const {
  return *experts->ptr<BartEncoderLayerImpl>(index);
}

at::Tensor MoeEncoderLayerImpl::Forward(const at::Tensor& hidden_states,
                                        const at::Tensor& attention_bias,
                                        const at::Tensor& route) {
  CheckRoute(route, hidden_states.size(0), num_experts());
  if (merged_ != nullptr) {
    return RunMergedGroups(hidden_states, GroupEqualRoutes(route), *merged_, experts,
                           is_training(), [&](size_t, const RouteGroup& group) {
                             return merged_->Forward(GroupRows(hidden_states, group),
                                                     GroupRows(attention_bias, group), at::Tensor());
                           });
  }
  const std::vector<ExpertAssignment> assignments = AssignExperts(route);
  const std::vector<BartEncoderLayerImpl*> layers = ExpertLayers<BartEncoderLayerImpl>(experts);
  if (stacks_ != nullptr && EveryExpertOnEveryExample(assignments, num_experts()) &&
      CanBatchExperts(layers)) {
    stacks_->Prepare();
    return RunBatchedExperts(
        route, {route, hidden_states},
        [&](const ExpertJob& job, at::TensorList inputs) {
          return RunEncoderExpertsBatched(layers, *stacks_, SelectRows(inputs[1], job),
                                          SelectRows(attention_bias, job), is_training());
        },
        options.concurrent());
  }
  return RunLayerExperts(
      hidden_states, route, assignments, {hidden_states},
      [&](const ExpertJob& job, at::TensorList inputs) {
        return expert(job.expert)
            .Forward(SelectRows(inputs[0], job), SelectRows(attention_bias, job), at::Tensor());
      },
      options.concurrent(), options.route_gradient());
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

MoeDecoderLayerImpl::MoeDecoderLayerImpl(const BartLayerOptions& layer,
                                         const MoeLayerOptions& options_)
    : options(options_) {
  CHECK_GE(options.experts(), 1);
  experts = register_module("experts", torch::nn::ModuleList());
  for (int64_t e = 0; e < options.experts(); ++e) experts->push_back(BartDecoderLayer(layer));
  if (options.execution() == ExpertExecution::kMergeParameters) {
    merged_ = std::make_shared<BartDecoderLayerImpl>(layer);
  }
  if (options.batched()) stacks_ = MakeStacks(experts, DecoderStackGroups());
}

BartDecoderLayerImpl& MoeDecoderLayerImpl::expert(int64_t index) const {
  return *experts->ptr<BartDecoderLayerImpl>(index);
}

std::unique_ptr<DecoderBlockCache> MoeDecoderLayerImpl::NewCache() const {
  auto cache = std::make_unique<MoeDecoderLayerCache>();
  // Merged execution adds one entry per group of equal routes at the first step.
  if (merged_ == nullptr) cache->experts.resize(num_experts());
  return cache;
}

namespace {

// The MoE cache behind `cache` (nullptr for a full pass), checked against the step's batch.
MoeDecoderLayerCache* StepCache(DecoderBlockCache* cache, int64_t batch) {
  if (cache == nullptr) return nullptr;
  auto* moe_cache = dynamic_cast<MoeDecoderLayerCache*>(cache);
  CHECK(moe_cache != nullptr) << "MoE decoder layer got a cache it did not create";
  CHECK(moe_cache->batch == 0 || moe_cache->batch == batch)
      << "decoding step has batch " << batch << ", the cache holds " << moe_cache->batch;
  moe_cache->batch = batch;
  return moe_cache;
}

// Creates, at the first step, each assigned expert's cache for its rows; later steps must
// assign the same rows.
void PrepareExpertCaches(MoeDecoderLayerCache& cache,
                         const std::vector<ExpertAssignment>& assignments, int64_t batch,
                         const MoeDecoderLayerImpl& layer) {
  std::vector<bool> assigned(layer.num_experts(), false);
  for (const ExpertAssignment& assignment : assignments) {
    assigned[assignment.expert] = true;
    MoeDecoderLayerCache::ExpertCache& expert_cache = cache.experts[assignment.expert];
    const at::Tensor rows = assignment.rows.defined() ? assignment.rows.to(at::kCPU)
                                                      : at::arange(batch, at::kLong);
    if (expert_cache.cache == nullptr) {
      expert_cache.cache = layer.expert(assignment.expert).NewCache();
      expert_cache.rows = rows;
    } else {
      CHECK(expert_cache.rows.equal(rows))
          << "routes changed between decoding steps: expert " << assignment.expert
          << " now serves other examples than its cache holds";
    }
  }
  for (int64_t e = 0; e < layer.num_experts(); ++e) {
    const auto& expert_cache = cache.experts[e];
    CHECK(assigned[e] || expert_cache.cache == nullptr || expert_cache.rows.numel() == 0)
        << "routes changed between decoding steps: expert " << e << " is no longer used";
  }
}

// Merged execution: the cache of the group's rows, new at the first step (`first_step`), later
// the one that holds exactly these rows.
DecoderBlockCache* GroupCache(MoeDecoderLayerCache& cache, const RouteGroup& group,
                              int64_t batch, const BartDecoderLayerImpl& merged, bool first_step) {
  const at::Tensor rows =
      group.rows.defined() ? group.rows.to(at::kCPU) : at::arange(batch, at::kLong);
  if (first_step) {
    cache.experts.push_back({merged.NewCache(), rows});
    return cache.experts.back().cache.get();
  }
  for (MoeDecoderLayerCache::ExpertCache& group_cache : cache.experts) {
    if (group_cache.rows.numel() > 0 && group_cache.rows.equal(rows)) {
      return group_cache.cache.get();
    }
  }
  LOG(FATAL) << "routes changed between decoding steps: no cache holds the examples "
             << rows.sizes() << " of equal routes";
}

}  // namespace

at::Tensor MoeDecoderLayerImpl::Forward(const at::Tensor& hidden_states,
                                        const at::Tensor& self_attention_bias,
                                        const at::Tensor& encoder_hidden_states,
                                        const at::Tensor& cross_attention_bias,
                                        const at::Tensor& route, DecoderBlockCache* cache) {
  const int64_t batch = hidden_states.size(0);
  CheckRoute(route, batch, num_experts());
  MoeDecoderLayerCache* moe_cache = StepCache(cache, batch);
  if (merged_ != nullptr) {
    const bool first_step = moe_cache != nullptr && moe_cache->experts.empty();
    return RunMergedGroups(
        hidden_states, GroupEqualRoutes(route), *merged_, experts, is_training(),
        [&](size_t, const RouteGroup& group) {
          return merged_->Forward(
              GroupRows(hidden_states, group), self_attention_bias,
              GroupRows(encoder_hidden_states, group), GroupRows(cross_attention_bias, group),
              at::Tensor(),
              moe_cache == nullptr ? nullptr
                                   : GroupCache(*moe_cache, group, batch, *merged_, first_step));
        });
  }
  const std::vector<ExpertAssignment> assignments = AssignExperts(route);
  const std::vector<BartDecoderLayerImpl*> layers = ExpertLayers<BartDecoderLayerImpl>(experts);
  if (stacks_ != nullptr && moe_cache == nullptr &&
      EveryExpertOnEveryExample(assignments, num_experts()) && CanBatchExperts(layers)) {
    stacks_->Prepare();
    return RunBatchedExperts(
        route, {route, hidden_states, encoder_hidden_states},
        [&](const ExpertJob& job, at::TensorList inputs) {
          return RunDecoderExpertsBatched(layers, *stacks_, SelectRows(inputs[1], job),
                                          self_attention_bias,
                                          SelectRows(inputs[2], job),
                                          SelectRows(cross_attention_bias, job), is_training());
        },
        options.concurrent());
  }
  if (moe_cache != nullptr) PrepareExpertCaches(*moe_cache, assignments, batch, *this);
  return RunLayerExperts(
      hidden_states, route, assignments, {hidden_states, encoder_hidden_states},
      [&](const ExpertJob& job, at::TensorList inputs) {
        return expert(job.expert)
            .Forward(SelectRows(inputs[0], job), self_attention_bias, SelectRows(inputs[1], job),
                     SelectRows(cross_attention_bias, job), at::Tensor(),
                     moe_cache != nullptr ? moe_cache->experts[job.expert].cache.get() : nullptr);
      },
      options.concurrent() && moe_cache == nullptr,
      // Unselected experts hold no cache of the earlier steps, so a cached step cannot run them.
      moe_cache == nullptr ? options.route_gradient() : RouteGradient::kSelectedExperts);
}

}  // namespace taskmoe
