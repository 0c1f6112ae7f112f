#include "moe/moe_layers.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <exception>
#include <functional>
#include <thread>
#include <utility>

#include <ATen/Parallel.h>
#include <glog/logging.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/grad_mode.h>

namespace taskmoe {
namespace {

// Rows `rows` of a per-example tensor; tensors that broadcast over the batch (size 1 in
// dimension 0, e.g. the causal bias) and undefined ones pass through.
at::Tensor SelectRows(const at::Tensor& tensor, const at::Tensor& rows) {
  if (!tensor.defined() || !rows.defined() || tensor.size(0) == 1) return tensor;
  return tensor.index_select(0, rows);
}

// What an expert computes for an assignment: its output for the assignment's rows, built from
// `inputs` (the tensors gradients must reach: the layer input, and the encoder states in the
// decoder), which stand in for the captured originals.
using RunExpert =
    std::function<at::Tensor(const ExpertAssignment& assignment, at::TensorList inputs)>;

// sum over assignments of route[rows, e] * output, scattered back to the assignment's rows.
at::Tensor MixOutputs(const at::Tensor& hidden_states, const at::Tensor& route,
                      const std::vector<ExpertAssignment>& assignments,
                      const std::vector<at::Tensor>& outputs) {
  at::Tensor mixed;
  for (size_t i = 0; i < assignments.size(); ++i) {
    const ExpertAssignment& assignment = assignments[i];
    const at::Tensor weight =
        SelectRows(route.select(1, assignment.expert), assignment.rows)
            .to(hidden_states.scalar_type())
            .view({-1, 1, 1});
    const at::Tensor contribution = outputs[i] * weight;
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

// A process-wide set of threads that run the jobs of concurrent experts. The threads persist,
// so each keeps its malloc arena warm instead of page-faulting fresh memory every call. Each
// runs its operations on a single intra-op thread.
class ExpertWorkers {
 public:
  static ExpertWorkers& Get() {
    static ExpertWorkers* workers = new ExpertWorkers();  // never destroyed: threads stay parked
    return *workers;
  }

  // Calls fn(job) for every job in [0, jobs) on `workers` threads, the caller being one of them.
  // Exceptions reach the caller. Calls from different threads take turns.
  void Run(int64_t jobs, int64_t workers, const std::function<void(int64_t)>& fn) {
    std::lock_guard<std::mutex> run_lock(run_mutex_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // A forked child has none of its parent's threads: start its own.
      if (getpid() != owner_pid_) {
        owner_pid_ = getpid();
        threads_ = 0;
      }
      for (; threads_ < workers - 1; ++threads_) std::thread([this]() { Serve(); }).detach();
      fn_ = &fn;
      jobs_ = jobs;
      next_job_ = 0;
      helpers_ = workers - 1;
      busy_ = 0;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    const int caller_threads = at::get_num_threads();
    omp_set_num_threads(1);
    Work();
    omp_set_num_threads(caller_threads);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this]() { return helpers_ == 0 && busy_ == 0; });
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void Serve() {
    at::get_num_threads();  // the per-thread lazy initialisation, so it cannot undo the next line
    omp_set_num_threads(1);
    int64_t seen = 0;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&]() { return generation_ != seen && helpers_ > 0; });
        seen = generation_;
        --helpers_;
        ++busy_;
      }
      Work();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --busy_;
      }
      done_.notify_all();
    }
  }

  void Work() {
    for (int64_t job = next_job_++; job < jobs_; job = next_job_++) {
      try {
        (*fn_)(job);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }

  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  pid_t owner_pid_ = 0;
  int64_t threads_ = 0;  // parked helper threads of this process
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t jobs_ = 0;
  std::atomic<int64_t> next_job_{0};
  int64_t helpers_ = 0;  // threads still to join the current call
  int64_t busy_ = 0;     // threads working on the current call
  int64_t generation_ = 0;
  std::exception_ptr error_;
};

void RunOnWorkers(int64_t jobs, int64_t workers, const std::function<void(int64_t)>& fn) {
  ExpertWorkers::Get().Run(jobs, workers, fn);
}

struct ConcurrentJobs {
  std::vector<ExpertAssignment> jobs;
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

// sum_e route[b, e] * expert_e(x[b]) over `assignments` (AssignExperts of the route). With more than one
// intra-op thread and no decoding cache, the experts (each split into one row block per thread,
// for balance) run concurrently on single-threaded workers: on a few cores that keeps them
// busier than running one expert at a time with every small operation split across threads.
at::Tensor RunExperts(const at::Tensor& hidden_states, const at::Tensor& route,
                      const std::vector<ExpertAssignment>& assignments,
                      std::vector<at::Tensor> inputs, const RunExpert& run, bool concurrent) {
  const int64_t batch = route.size(0);
  const int64_t workers = concurrent ? std::min<int64_t>(at::get_num_threads(), batch) : 1;
  std::vector<ExpertAssignment> jobs;
  if (workers > 1) {
    for (const ExpertAssignment& assignment : assignments) {
      const at::Tensor rows = assignment.rows.defined()
                                  ? assignment.rows
                                  : at::arange(batch, route.options().dtype(at::kLong));
      for (const at::Tensor& block : rows.chunk(workers)) {
        ExpertAssignment job;
        job.expert = assignment.expert;
        job.rows = block.contiguous();
        jobs.push_back(std::move(job));
      }
    }
  }
  const bool needs_graph = at::GradMode::is_enabled();
  bool inputs_require_grad = false;
  for (const at::Tensor& input : inputs) inputs_require_grad |= input.requires_grad();
  // Without a gradient path through the inputs the node's outputs would not require grad and
  // parameter gradients would be lost, so that case runs sequentially.
  if (jobs.size() <= 1 || (needs_graph && !inputs_require_grad)) {
    std::vector<at::Tensor> outputs;
    for (const ExpertAssignment& assignment : assignments) outputs.push_back(run(assignment, inputs));
    return MixOutputs(hidden_states, route, assignments, outputs);
  }
  ConcurrentJobs work;
  work.jobs = jobs;
  work.run = run;
  work.workers = std::min<int64_t>(workers, static_cast<int64_t>(jobs.size()));
  std::vector<at::Tensor> outputs;
  if (needs_graph) {
    outputs = ConcurrentExperts::apply(at::TensorList(inputs), &work);
  } else {
    outputs.resize(jobs.size());
    RunOnWorkers(static_cast<int64_t>(jobs.size()), work.workers, [&](int64_t job) {
      at::NoGradGuard no_grad;
      outputs[job] = run(jobs[job], inputs);
    });
  }
  return MixOutputs(hidden_states, route, jobs, outputs);
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
                                         bool concurrent)
    : concurrent_(concurrent) {
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
  return RunExperts(
      hidden_states, route, AssignExperts(route), {hidden_states},
      [&](const ExpertAssignment& assignment, at::TensorList inputs) {
        return expert(assignment.expert)
            .Forward(SelectRows(inputs[0], assignment.rows),
                     SelectRows(attention_bias, assignment.rows), at::Tensor());
      },
      concurrent_);
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
                                         bool concurrent)
    : concurrent_(concurrent) {
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

  return RunExperts(
      hidden_states, route, assignments, {hidden_states, encoder_hidden_states},
      [&](const ExpertAssignment& assignment, at::TensorList inputs) {
        const at::Tensor& rows = assignment.rows;
        return expert(assignment.expert)
            .Forward(SelectRows(inputs[0], rows), self_attention_bias, SelectRows(inputs[1], rows),
                     SelectRows(cross_attention_bias, rows), at::Tensor(),
                     moe_cache != nullptr ? moe_cache->experts[assignment.expert].cache.get()
                                          : nullptr);
      },
      concurrent_ && moe_cache == nullptr);
}

}  // namespace taskmoe
