#include "moe/model/moe_layers.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <exception>
#include <functional>
#include <utility>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <glog/logging.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "moe/base/omp_parallel.h"
#include "moe/model/merged_experts.h"

namespace taskmoe {
namespace {

// One run of an expert: the batch rows it computes, either listed (`rows`, int64 on the route's
// device) or, when `rows` is undefined, the contiguous rows [begin, end), which need no copy.
struct ExpertJob {
  int64_t expert = 0;
  at::Tensor rows;
  int64_t begin = 0;
  int64_t end = 0;
  uint64_t dropout_seed = 0;  // concurrent CPU jobs: the seed of the job's dropout generator
};

// The job's rows of a per-example tensor; tensors that broadcast over the batch (size 1 in
// dimension 0, e.g. the causal bias) and undefined ones pass through.
at::Tensor SelectRows(const at::Tensor& tensor, const ExpertJob& job) {
  if (!tensor.defined() || tensor.size(0) == 1) return tensor;
  if (job.rows.defined()) return tensor.index_select(0, job.rows);
  if (job.begin == 0 && job.end == tensor.size(0)) return tensor;
  return tensor.narrow(0, job.begin, job.end - job.begin);
}

// What an expert computes for a job: its output for the job's rows, built from `inputs` (the
// tensors gradients must reach: the layer input, and the encoder states in the decoder), which
// stand in for the captured originals.
using RunExpert = std::function<at::Tensor(const ExpertJob& job, at::TensorList inputs)>;

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

// RunOnWorkers (moe/base/omp_parallel.h) runs the jobs on the OpenMP team itself. Inside the
// parallel region ATen and OpenBLAS run each operation on its own thread alone.

// A seed from LibTorch's default CPU generator (what at::dropout would draw from).
uint64_t NextDefaultSeed() {
  auto* generator = at::check_generator<at::CPUGeneratorImpl>(at::detail::getDefaultCPUGenerator());
  std::lock_guard<std::mutex> lock(generator->mutex_);
  return generator->random64();
}

struct ConcurrentJobs {
  std::vector<ExpertJob> jobs;
  RunExpert run;
  int64_t workers = 1;
};

// Runs the jobs' forward passes concurrently and, in the backward pass, their backward passes
// concurrently too: each job builds its own autograd graph from detached copies of the inputs,
// and this node hands each graph its output gradient and sums the input gradients. (The
// autograd engine would otherwise run the experts' backward one after another.)
class ConcurrentExperts : public torch::autograd::Function<ConcurrentExperts> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                at::TensorList inputs,
                                                const ConcurrentJobs* work) {
    const int64_t jobs = static_cast<int64_t>(work->jobs.size());
    const int64_t num_inputs = static_cast<int64_t>(inputs.size());
    std::vector<at::Tensor> leaves(jobs * num_inputs);
    std::vector<at::Tensor> outputs(jobs);
    RunOnWorkers(jobs, work->workers, [&](int64_t job) {
      at::AutoGradMode grad_mode(true);
      std::vector<at::Tensor> own_inputs;
      for (int64_t i = 0; i < num_inputs; ++i) {
        own_inputs.push_back(inputs[i].detach().requires_grad_(inputs[i].requires_grad()));
        leaves[job * num_inputs + i] = own_inputs.back();
      }
      outputs[job] = work->run(work->jobs[job], own_inputs);
    });
    ctx->saved_data["outputs"] = outputs;
    ctx->saved_data["leaves"] = leaves;
    ctx->saved_data["workers"] = work->workers;
    torch::autograd::variable_list results;
    for (const at::Tensor& output : outputs) results.push_back(output.detach());
    return results;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const std::vector<at::Tensor> outputs = ctx->saved_data["outputs"].toTensorVector();
    const std::vector<at::Tensor> leaves = ctx->saved_data["leaves"].toTensorVector();
    const int64_t jobs = static_cast<int64_t>(outputs.size());
    const int64_t num_inputs = static_cast<int64_t>(leaves.size()) / jobs;
    RunOnWorkers(jobs, ctx->saved_data["workers"].toInt(), [&](int64_t job) {
      if (grad_outputs[job].defined() && outputs[job].requires_grad()) {
        torch::autograd::backward({outputs[job]}, {grad_outputs[job]});
      }
    });
    // One gradient per input, then none for the ConcurrentJobs argument.
    torch::autograd::variable_list input_grads(num_inputs + 1);
    for (int64_t job = 0; job < jobs; ++job) {
      for (int64_t i = 0; i < num_inputs; ++i) {
        const at::Tensor grad = leaves[job * num_inputs + i].grad();
        if (!grad.defined()) continue;
        input_grads[i] = input_grads[i].defined() ? input_grads[i] + grad : grad;
      }
    }
    return input_grads;
  }
};

// sum_e route[b, e] * expert_e(x[b]) over `assignments` (AssignExperts of the route). With more
// than one intra-op thread and no decoding cache, the experts (each split into one block of rows
// per thread, for balance; a block of all rows is a view, not a copy) run concurrently on
// single-threaded workers: on a few cores that keeps them busier than running one expert at a
// time with every small operation split across threads.
at::Tensor RunExperts(const at::Tensor& hidden_states, const at::Tensor& route,
                      const std::vector<ExpertAssignment>& assignments,
                      std::vector<at::Tensor> inputs, const RunExpert& run, bool concurrent) {
  const int64_t batch = route.size(0);
  const bool needs_graph = at::GradMode::is_enabled();
  bool inputs_require_grad = false;
  for (const at::Tensor& input : inputs) inputs_require_grad |= input.requires_grad();
  // Without a gradient path through the inputs the node's outputs would not require grad and
  // parameter gradients would be lost, so that case runs sequentially.
  const int64_t workers = concurrent && (!needs_graph || inputs_require_grad)
                              ? std::min<int64_t>(at::get_num_threads(), batch)
                              : 1;
  // The jobs of each assignment, in row order, one block of rows per worker.
  std::vector<ExpertJob> jobs;
  std::vector<size_t> first_job;
  for (const ExpertAssignment& assignment : assignments) {
    first_job.push_back(jobs.size());
    const int64_t rows = assignment.rows.defined() ? assignment.rows.size(0) : batch;
    const int64_t block = (rows + workers - 1) / workers;
    for (int64_t begin = 0; begin < rows; begin += block) {
      ExpertJob job;
      job.expert = assignment.expert;
      job.begin = begin;
      job.end = std::min(rows, begin + block);
      if (assignment.rows.defined()) {
        job.rows = assignment.rows.narrow(0, begin, job.end - begin).contiguous();
      }
      jobs.push_back(std::move(job));
    }
  }
  first_job.push_back(jobs.size());
  std::vector<at::Tensor> outputs(jobs.size());
  if (jobs.size() <= 1 || workers <= 1) {
    for (size_t j = 0; j < jobs.size(); ++j) outputs[j] = run(jobs[j], inputs);
  } else {
    ConcurrentJobs work;
    work.jobs = jobs;
    work.run = run;
    if (hidden_states.is_cpu()) {
      // Seeds drawn here in job order: dropout masks then do not depend on thread timing.
      for (ExpertJob& job : work.jobs) job.dropout_seed = NextDefaultSeed();
      work.run = [&run](const ExpertJob& job, at::TensorList job_inputs) {
        DropoutGeneratorScope scope(at::detail::createCPUGenerator(job.dropout_seed));
        return run(job, job_inputs);
      };
    }
    work.workers = std::min<int64_t>(workers, static_cast<int64_t>(jobs.size()));
    if (needs_graph) {
      outputs = ConcurrentExperts::apply(at::TensorList(inputs), &work);
    } else {
      RunOnWorkers(static_cast<int64_t>(jobs.size()), work.workers, [&](int64_t job) {
        at::NoGradGuard no_grad;
        outputs[job] = work.run(work.jobs[job], inputs);
      });
    }
  }
  // Each assignment's output from its blocks.
  std::vector<at::Tensor> assignment_outputs;
  for (size_t i = 0; i < assignments.size(); ++i) {
    const std::vector<at::Tensor> blocks(outputs.begin() + first_job[i],
                                         outputs.begin() + first_job[i + 1]);
    assignment_outputs.push_back(blocks.size() == 1 ? blocks[0] : at::cat(blocks, 0));
  }
  return MixOutputs(hidden_states, route, assignments, assignment_outputs);
}

// `mixed` plus route[b, e] * expert_e(x[b]) for every (example, expert) whose route weight is
// zero, the experts run without an autograd graph: the value does not change, and the route
// gets the straight-through gradient of every expert (RouteGradient::kAllExperts).
at::Tensor AddUnselectedExperts(const at::Tensor& mixed, const at::Tensor& hidden_states,
                                const at::Tensor& route, const std::vector<at::Tensor>& inputs,
                                const RunExpert& run) {
  const std::vector<ExpertAssignment> unselected = AssignExperts(route.detach().eq(0));
  if (unselected.empty()) return mixed;
  std::vector<at::Tensor> outputs;
  {
    at::NoGradGuard no_grad;
    for (const ExpertAssignment& assignment : unselected) {
      ExpertJob job;
      job.expert = assignment.expert;
      job.rows = assignment.rows;
      job.end = route.size(0);
      outputs.push_back(run(job, inputs));
    }
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
  return AddUnselectedExperts(mixed, hidden_states, route, inputs, run);
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

MoeEncoderLayerImpl::MoeEncoderLayerImpl(const BartLayerOptions& options, int64_t num_experts,
                                         bool concurrent, RouteGradient route_gradient,
                                         ExpertExecution execution)
    : concurrent_(concurrent), route_gradient_(route_gradient) {
  CHECK_GE(num_experts, 1);
  experts = register_module("experts", torch::nn::ModuleList());
  for (int64_t e = 0; e < num_experts; ++e) experts->push_back(BartEncoderLayer(options));
  if (execution == ExpertExecution::kMergeParameters) {
    merged_ = std::make_shared<BartEncoderLayerImpl>(options);
  }
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
  return RunLayerExperts(
      hidden_states, route, AssignExperts(route), {hidden_states},
      [&](const ExpertJob& job, at::TensorList inputs) {
        return expert(job.expert)
            .Forward(SelectRows(inputs[0], job), SelectRows(attention_bias, job), at::Tensor());
      },
      concurrent_, route_gradient_);
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

MoeDecoderLayerImpl::MoeDecoderLayerImpl(const BartLayerOptions& options, int64_t num_experts,
                                         bool concurrent, RouteGradient route_gradient,
                                         ExpertExecution execution)
    : concurrent_(concurrent), route_gradient_(route_gradient) {
  CHECK_GE(num_experts, 1);
  experts = register_module("experts", torch::nn::ModuleList());
  for (int64_t e = 0; e < num_experts; ++e) experts->push_back(BartDecoderLayer(options));
  if (execution == ExpertExecution::kMergeParameters) {
    merged_ = std::make_shared<BartDecoderLayerImpl>(options);
  }
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
  if (moe_cache != nullptr) PrepareExpertCaches(*moe_cache, assignments, batch, *this);
  return RunLayerExperts(
      hidden_states, route, assignments, {hidden_states, encoder_hidden_states},
      [&](const ExpertJob& job, at::TensorList inputs) {
        return expert(job.expert)
            .Forward(SelectRows(inputs[0], job), self_attention_bias, SelectRows(inputs[1], job),
                     SelectRows(cross_attention_bias, job), at::Tensor(),
                     moe_cache != nullptr ? moe_cache->experts[job.expert].cache.get() : nullptr);
      },
      concurrent_ && moe_cache == nullptr, route_gradient_);
}

}  // namespace taskmoe
