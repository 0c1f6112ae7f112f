#include "moe/model/expert_jobs.h"

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/functions/accumulate_grad.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <glog/logging.h>

#include "moe/base/omp_parallel.h"
#include "moe/model/autograd_graph.h"
#include "moe/model/bart.h"

namespace taskmoe {
namespace {

// RunOnWorkers (moe/base/omp_parallel.h) runs the jobs on the OpenMP team itself. Inside the
// parallel region ATen and OpenBLAS run each operation on its own thread alone.

// A seed from LibTorch's default CPU generator (what at::dropout would draw from).
uint64_t NextDefaultSeed() {
  auto* generator = at::check_generator<at::CPUGeneratorImpl>(at::detail::getDefaultCPUGenerator());
  std::lock_guard<std::mutex> lock(generator->mutex_);
  return generator->random64();
}

bool AnyRequiresGrad(const std::vector<at::Tensor>& inputs) {
  return std::any_of(inputs.begin(), inputs.end(),
                     [](const at::Tensor& input) { return input.requires_grad(); });
}

struct ConcurrentJobs {
  std::vector<ExpertJob> jobs;
  RunExpert run;
  int64_t workers = 1;
};

// What one job's backward pass computed: the gradient of each of its input leaves (undefined
// where none), and of the parameters its graph reaches.
struct JobGradients {
  std::vector<at::Tensor> input_grads;
  std::vector<at::Tensor> parameters;
  std::vector<at::Tensor> parameter_grads;
};

// The leaves other than `own_leaves` that `output`'s graph accumulates gradients into: the
// parameters the job used.
std::vector<at::Tensor> ReachedParameters(const at::Tensor& output,
                                          const std::vector<at::Tensor>& own_leaves) {
  std::unordered_set<const c10::TensorImpl*> skip;
  for (const at::Tensor& leaf : own_leaves) skip.insert(leaf.unsafeGetTensorImpl());
  std::vector<at::Tensor> parameters;
  VisitAutogradGraph(output, [&](torch::autograd::Node& node) {
    const auto* accumulate = dynamic_cast<torch::autograd::AccumulateGrad*>(&node);
    if (accumulate == nullptr) return true;
    if (skip.count(accumulate->variable.unsafeGetTensorImpl()) == 0) {
      parameters.push_back(accumulate->variable);
    }
    return false;
  });
  return parameters;
}

// One job's gradients (torch::autograd::grad: no .grad is touched).
JobGradients ComputeGradients(const at::Tensor& output, const at::Tensor& grad_output,
                              const std::vector<at::Tensor>& leaves) {
  JobGradients gradients;
  gradients.parameters = ReachedParameters(output, leaves);
  std::vector<at::Tensor> targets;
  std::vector<size_t> leaf_index;
  for (size_t i = 0; i < leaves.size(); ++i) {
    if (!leaves[i].requires_grad()) continue;
    targets.push_back(leaves[i]);
    leaf_index.push_back(i);
  }
  targets.insert(targets.end(), gradients.parameters.begin(), gradients.parameters.end());
  const torch::autograd::variable_list grads =
      torch::autograd::grad({output}, targets, {grad_output}, /*retain_graph=*/false,
                            /*create_graph=*/false, /*allow_unused=*/true);
  gradients.input_grads.resize(leaves.size());
  for (size_t t = 0; t < leaf_index.size(); ++t) gradients.input_grads[leaf_index[t]] = grads[t];
  gradients.parameter_grads.assign(grads.begin() + static_cast<int64_t>(leaf_index.size()),
                                   grads.end());
  return gradients;
}

// Adds each job's parameter gradients to the parameters' .grad (in place once defined, as the
// autograd engine would), the jobs' gradients of one parameter in job order; parameters in
// parallel on the OpenMP team, where an error (e.g. out of memory) reaches the caller.
void AccumulateParameterGradients(const std::vector<JobGradients>& job_gradients) {
  std::vector<at::Tensor> parameters;
  std::vector<std::vector<at::Tensor>> grads;  // per parameter, in job order
  std::unordered_map<const c10::TensorImpl*, size_t> index;
  for (const JobGradients& gradients : job_gradients) {
    for (size_t p = 0; p < gradients.parameters.size(); ++p) {
      if (!gradients.parameter_grads[p].defined()) continue;
      const auto [it, inserted] =
          index.emplace(gradients.parameters[p].unsafeGetTensorImpl(), parameters.size());
      if (inserted) {
        parameters.push_back(gradients.parameters[p]);
        grads.emplace_back();
      }
      grads[it->second].push_back(gradients.parameter_grads[p]);
    }
  }
  RunOnWorkers(static_cast<int64_t>(parameters.size()), at::get_num_threads(), [&](int64_t p) {
    at::NoGradGuard no_grad;
    at::Tensor& current = parameters[p].mutable_grad();
    for (const at::Tensor& grad : grads[p]) {
      if (current.defined()) {
        current.add_(grad);
      } else {
        current = grad.clone(at::MemoryFormat::Contiguous);
      }
    }
  });
}

// Runs the jobs' forward passes concurrently and, in the backward pass, their backward passes
// concurrently too: each job builds its own autograd graph from detached copies of the inputs,
// and this node hands each graph its output gradient and sums the input and parameter gradients.
// (The autograd engine would otherwise run the experts' backward one after another.)
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
    // The jobs' graphs are run with torch::autograd::grad, which builds no graph of this backward
    // pass: a second derivative (create_graph) through concurrent experts is not supported.
    CHECK(!at::GradMode::is_enabled())
        << "concurrent experts: backward with create_graph is not supported; run the model with "
           "concurrent experts off for higher-order gradients";
    const std::vector<at::Tensor> outputs = ctx->saved_data["outputs"].toTensorVector();
    const std::vector<at::Tensor> leaves = ctx->saved_data["leaves"].toTensorVector();
    const int64_t jobs = static_cast<int64_t>(outputs.size());
    const int64_t num_inputs = static_cast<int64_t>(leaves.size()) / jobs;
    // The jobs' backward passes compute their gradients concurrently but leave every .grad
    // alone; they are then added up in job order. (Concurrent passes that accumulated into the
    // parameters they share made two-thread runs differ from run to run.)
    std::vector<JobGradients> job_gradients(jobs);
    RunOnWorkers(jobs, ctx->saved_data["workers"].toInt(), [&](int64_t job) {
      if (grad_outputs[job].defined() && outputs[job].requires_grad()) {
        const std::vector<at::Tensor> job_leaves(leaves.begin() + job * num_inputs,
                                                 leaves.begin() + (job + 1) * num_inputs);
        job_gradients[job] = ComputeGradients(outputs[job], grad_outputs[job], job_leaves);
      }
    });
    AccumulateParameterGradients(job_gradients);
    // One gradient per input, then none for the ConcurrentJobs argument.
    torch::autograd::variable_list input_grads(num_inputs + 1);
    for (const JobGradients& gradients : job_gradients) {
      for (size_t i = 0; i < gradients.input_grads.size(); ++i) {
        const at::Tensor& grad = gradients.input_grads[i];
        if (!grad.defined()) continue;
        input_grads[i] = input_grads[i].defined() ? input_grads[i] + grad : grad;
      }
    }
    return input_grads;
  }
};

}  // namespace

at::Tensor SelectRows(const at::Tensor& tensor, const ExpertJob& job) {
  if (!tensor.defined() || tensor.size(0) == 1) return tensor;
  if (job.rows.defined()) return tensor.index_select(0, job.rows);
  if (job.begin == 0 && job.end == tensor.size(0)) return tensor;
  return tensor.narrow(0, job.begin, job.end - job.begin);
}

int64_t ConcurrentWorkers(bool concurrent, int64_t batch, const std::vector<at::Tensor>& inputs) {
  // Without a gradient path through the inputs the node's outputs would not require grad and
  // parameter gradients would be lost, so that case runs sequentially.
  const bool runs_concurrently =
      concurrent && (!at::GradMode::is_enabled() || AnyRequiresGrad(inputs));
  return runs_concurrently ? std::min<int64_t>(at::get_num_threads(), batch) : 1;
}

void AppendRowBlocks(int64_t expert, const at::Tensor& rows, int64_t num_rows, int64_t workers,
                     std::vector<ExpertJob>& jobs) {
  const int64_t block = (num_rows + workers - 1) / workers;
  for (int64_t begin = 0; begin < num_rows; begin += block) {
    ExpertJob job;
    job.expert = expert;
    job.begin = begin;
    job.end = std::min(num_rows, begin + block);
    if (rows.defined()) job.rows = rows.narrow(0, begin, job.end - begin).contiguous();
    jobs.push_back(std::move(job));
  }
}

std::vector<at::Tensor> RunJobs(const std::vector<ExpertJob>& jobs, int64_t workers, bool on_cpu,
                                std::vector<at::Tensor> inputs, const RunExpert& run) {
  std::vector<at::Tensor> outputs(jobs.size());
  if (jobs.size() <= 1 || workers <= 1) {
    for (size_t j = 0; j < jobs.size(); ++j) outputs[j] = run(jobs[j], inputs);
    return outputs;
  }
  ConcurrentJobs work;
  work.jobs = jobs;
  work.run = run;
  if (on_cpu) {
    // Seeds drawn here in job order: dropout masks then do not depend on thread timing.
    for (ExpertJob& job : work.jobs) job.dropout_seed = NextDefaultSeed();
    work.run = [&run](const ExpertJob& job, at::TensorList job_inputs) {
      DropoutGeneratorScope scope(at::detail::createCPUGenerator(job.dropout_seed));
      return run(job, job_inputs);
    };
  }
  work.workers = std::min<int64_t>(workers, static_cast<int64_t>(jobs.size()));
  if (at::GradMode::is_enabled()) {
    // Without an input that requires grad the node's outputs would not require grad and the
    // parameters' gradients would be lost: ConcurrentWorkers gives such calls one worker.
    CHECK(AnyRequiresGrad(inputs))
        << "RunJobs: concurrent jobs under grad mode need an input that requires grad";
    return ConcurrentExperts::apply(at::TensorList(inputs), &work);
  }
  RunOnWorkers(static_cast<int64_t>(jobs.size()), work.workers, [&](int64_t job) {
    at::NoGradGuard no_grad;
    outputs[job] = work.run(work.jobs[job], inputs);
  });
  return outputs;
}

}  // namespace taskmoe
