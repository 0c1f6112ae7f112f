#include "moe/model/optimization.h"

#include <algorithm>
#include <cmath>
#include <string>

#include <c10/util/string_utils.h>

#include "absl/strings/match.h"
#include "glog/logging.h"
#include "moe/base/omp_parallel.h"

namespace taskmoe {

bool TakesWeightDecay(const std::string& name) {
  return !(absl::EndsWith(name, ".bias") || absl::EndsWith(name, "layer_norm.weight") ||
           absl::EndsWith(name, "layernorm_embedding.weight") || name == "bias");
}

namespace {

// A stretch of one parameter's elements, the unit of work of the fused loops below.
struct Span {
  size_t tensor = 0;  // index into the caller's tensor list
  int64_t begin = 0;
  int64_t end = 0;
};

bool IsDenseCpuFloat(const at::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous() &&
         !t.is_sparse();
}

// The gradients of the parameters that have one.
std::vector<at::Tensor> DefinedGradients(const std::vector<at::Tensor>& parameters) {
  std::vector<at::Tensor> grads;
  for (const at::Tensor& p : parameters) {
    if (p.grad().defined()) grads.push_back(p.grad().detach());
  }
  return grads;
}

// Every parameter of every group of `optimizer`, in group order.
std::vector<at::Tensor> AllParameters(const torch::optim::Optimizer& optimizer) {
  std::vector<at::Tensor> all;
  for (const auto& group : optimizer.param_groups()) {
    all.insert(all.end(), group.params().begin(), group.params().end());
  }
  return all;
}

// The elements of `tensors` cut into spans of at most kSpan, so one parallel region with
// dynamic scheduling covers every parameter (instead of a fork/join per small tensor).
std::vector<Span> Spans(const std::vector<at::Tensor>& tensors) {
  constexpr int64_t kSpan = 1 << 15;
  std::vector<Span> spans;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const int64_t n = tensors[i].numel();
    for (int64_t begin = 0; begin < n; begin += kSpan) {
      spans.push_back({i, begin, std::min(n, begin + kSpan)});
    }
  }
  return spans;
}

// torch::optim::AdamW with the same state, hyper-parameters and serialisation, whose step
// updates all parameters in one pass over memory (decay, both moments and the update fused per
// element) inside a single parallel region. torch's step runs about ten elementwise operations
// per parameter, each a full pass and an OpenMP fork/join, which on a model of 25M parameters
// costs more than a third of a small MoE training step. Parameters that are not dense float CPU
// tensors (e.g. CUDA) take torch's step.
class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;

  at::Tensor step(LossClosure closure = nullptr) override {
    if (!AllDenseCpuFloat()) return torch::optim::AdamW::step(std::move(closure));
    at::Tensor loss;
    if (closure != nullptr) {
      at::AutoGradMode enable_grad(true);
      loss = closure();
    }
    FusedStep(/*grad_scale=*/1.0f, /*zero_gradients=*/false);
    return loss;
  }

  void StepAndZeroGradients(double grad_scale) {
    if (AllDenseCpuFloat()) {
      FusedStep(static_cast<float>(grad_scale), /*zero_gradients=*/true);
      return;
    }
    at::NoGradGuard no_grad;
    const std::vector<at::Tensor> grads = DefinedGradients(AllParameters(*this));
    if (grad_scale != 1.0) {
      for (const at::Tensor& g : grads) g.mul_(grad_scale);
    }
    torch::optim::AdamW::step();
    for (const at::Tensor& g : grads) g.zero_();
  }

 private:
  struct Update {
    float* param;
    float* grad;
    float* exp_avg;
    float* exp_avg_sq;
    float grad_scale;
    float decay;  // 1 - lr * weight_decay
    float beta1, beta2, one_minus_beta1, one_minus_beta2;
    float sqrt_bias_correction2;
    float eps;
    float neg_step_size;  // -lr / bias_correction1
  };

  bool AllDenseCpuFloat() const {
    for (const at::Tensor& p : AllParameters(*this)) {
      if (p.grad().defined() && !(IsDenseCpuFloat(p) && IsDenseCpuFloat(p.grad()))) return false;
    }
    return true;
  }

  // The fused step over every parameter with a gradient; `zero_gradients` writes 0 to each
  // gradient element once it is read.
  void FusedStep(float grad_scale, bool zero_gradients) {
    at::NoGradGuard no_grad;
    std::vector<Update> updates;
    std::vector<at::Tensor> params;
    for (auto& group : param_groups()) {
      const auto& options = static_cast<const torch::optim::AdamWOptions&>(group.options());
      CHECK(!options.amsgrad()) << "amsgrad is not used by TaskMoE";
      for (const at::Tensor& p : group.params()) {
        if (!p.grad().defined()) continue;
        auto& state = StateOf(p);
        state.step(state.step() + 1);
        const double beta1 = std::get<0>(options.betas());
        const double beta2 = std::get<1>(options.betas());
        const double bias_correction1 = 1 - std::pow(beta1, state.step());
        const double bias_correction2 = 1 - std::pow(beta2, state.step());
        updates.push_back({p.data_ptr<float>(), p.grad().data_ptr<float>(),
                           state.exp_avg().data_ptr<float>(), state.exp_avg_sq().data_ptr<float>(),
                           grad_scale, static_cast<float>(1 - options.lr() * options.weight_decay()),
                           static_cast<float>(beta1), static_cast<float>(beta2),
                           static_cast<float>(1 - beta1), static_cast<float>(1 - beta2),
                           static_cast<float>(std::sqrt(bias_correction2)),
                           static_cast<float>(options.eps()),
                           static_cast<float>(-options.lr() / bias_correction1)});
        params.push_back(p);
      }
    }
    const std::vector<Span> spans = Spans(params);
    const int64_t count = static_cast<int64_t>(spans.size());
    ParallelForEach(count, [&](int64_t s) {
      const Update& u = updates[spans[s].tensor];
      const int64_t begin = spans[s].begin;
      const int64_t n = spans[s].end - begin;
      if (zero_gradients) {
        UpdateSpan<true>(u, u.param + begin, u.grad + begin, u.exp_avg + begin,
                         u.exp_avg_sq + begin, n);
      } else {
        UpdateSpan<false>(u, u.param + begin, u.grad + begin, u.exp_avg + begin,
                          u.exp_avg_sq + begin, n);
      }
    });
  }

  // The parameter's AdamW state, created (zero moments) at its first step.
  torch::optim::AdamWParamState& StateOf(const at::Tensor& p) {
    const std::string key = c10::guts::to_string(p.unsafeGetTensorImpl());
    auto found = state_.find(key);
    if (found == state_.end()) {
      auto state = std::make_unique<torch::optim::AdamWParamState>();
      state->step(0);
      state->exp_avg(at::zeros_like(p, at::MemoryFormat::Contiguous));
      state->exp_avg_sq(at::zeros_like(p, at::MemoryFormat::Contiguous));
      found = state_.emplace(key, std::move(state)).first;
    }
    auto& state = static_cast<torch::optim::AdamWParamState&>(*found->second);
    CHECK(IsDenseCpuFloat(state.exp_avg()) && IsDenseCpuFloat(state.exp_avg_sq()))
        << "AdamW state of a float CPU parameter is not dense float CPU";
    return state;
  }

  // The order of torch's AdamW: decay, moments, then p += -step_size * m / denom. The gradient
  // is scaled as clipping would have scaled it in place (the same float product). The restrict
  // pointers and the simd pragma let the compiler vectorise without alias checks.
  template <bool kZeroGradient>
  static void UpdateSpan(const Update& u, float* __restrict param, float* __restrict grad,
                         float* __restrict exp_avg, float* __restrict exp_avg_sq, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float g = grad[i] * u.grad_scale;
      if constexpr (kZeroGradient) grad[i] = 0.0f;
      const float m = exp_avg[i] * u.beta1 + u.one_minus_beta1 * g;
      const float v = exp_avg_sq[i] * u.beta2 + u.one_minus_beta2 * g * g;
      exp_avg[i] = m;
      exp_avg_sq[i] = v;
      const float denom = std::sqrt(v) / u.sqrt_bias_correction2 + u.eps;
      param[i] = param[i] * u.decay + u.neg_step_size * (m / denom);
    }
  }
};

void AddGroup(const std::string& name, std::vector<at::Tensor> params, double lr,
              double weight_decay, const OptimizerOptions& o,
              std::vector<torch::optim::OptimizerParamGroup>* groups, GroupedAdamW* result) {
  if (params.empty()) return;
  auto options = std::make_unique<torch::optim::AdamWOptions>(lr);
  options->betas({o.beta1, o.beta2}).eps(o.adam_epsilon).weight_decay(weight_decay);
  groups->emplace_back(std::move(params), std::move(options));
  result->base_lrs.push_back(lr);
  result->group_names.push_back(name);
}

void AddDecayGroups(const std::string& family,
                    const std::vector<std::pair<std::string, at::Tensor>>& named, double lr,
                    const OptimizerOptions& o,
                    std::vector<torch::optim::OptimizerParamGroup>* groups, GroupedAdamW* result) {
  std::vector<at::Tensor> decay, no_decay;
  for (const auto& [name, param] : named) {
    (TakesWeightDecay(name) ? decay : no_decay).push_back(param);
  }
  AddGroup(family, std::move(decay), lr, o.weight_decay, o, groups, result);
  AddGroup(family + "_no_decay", std::move(no_decay), lr, 0.0, o, groups, result);
}

}  // namespace

GroupedAdamW MakeGroupedAdamW(const TrainableParameters& parameters,
                              const OptimizerOptions& options) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  GroupedAdamW result;
  AddDecayGroups("model", parameters.model, options.lr, options, &groups, &result);
  AddDecayGroups("router", parameters.router, options.router_lr, options, &groups, &result);
  AddGroup("task_vectors", parameters.task_vectors, options.task_vector_lr, options.weight_decay,
           options, &groups, &result);
  CHECK(!groups.empty()) << "no trainable parameters";
  result.optimizer = std::make_unique<FusedAdamW>(
      std::move(groups), torch::optim::AdamWOptions(options.lr));
  return result;
}

void GroupedAdamW::SetLrFactor(double factor) {
  auto& groups = optimizer->param_groups();
  for (size_t i = 0; i < groups.size(); ++i) {
    static_cast<torch::optim::AdamWOptions&>(groups[i].options()).lr(base_lrs[i] * factor);
  }
}

std::vector<at::Tensor> GroupedAdamW::Parameters() const { return AllParameters(*optimizer); }

double LinearWarmupDecay(int64_t step, int64_t warmup_steps, int64_t total_steps) {
  if (step < warmup_steps) {
    return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  }
  return std::max(0.0, static_cast<double>(total_steps - step) /
                           static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps)));
}

void GroupedAdamW::StepAndZeroGradients(double grad_scale) {
  auto* fused = dynamic_cast<FusedAdamW*>(optimizer.get());
  CHECK(fused != nullptr) << "GroupedAdamW not made by MakeGroupedAdamW";
  fused->StepAndZeroGradients(grad_scale);
}

double GradNorm(const std::vector<at::Tensor>& parameters) {
  const std::vector<at::Tensor> grads = DefinedGradients(parameters);
  if (grads.empty()) return 0.0;
  if (!std::all_of(grads.begin(), grads.end(), IsDenseCpuFloat)) {
    std::vector<at::Tensor> norms;
    for (const at::Tensor& g : grads) norms.push_back(g.norm(2).to(at::kFloat));
    return at::stack(norms).norm(2).item<double>();
  }
  // One pass over all gradients (a per-tensor norm() is a fork/join per small tensor). The span
  // sums are added in span order, so the norm does not depend on thread timing.
  const std::vector<Span> spans = Spans(grads);
  std::vector<double> span_sums(spans.size());
  ParallelForEach(static_cast<int64_t>(spans.size()), [&](int64_t s) {
    const float* g = grads[spans[s].tensor].data_ptr<float>();
    double span_sum = 0.0;
#pragma omp simd reduction(+ : span_sum)
    for (int64_t i = spans[s].begin; i < spans[s].end; ++i) span_sum += double(g[i]) * g[i];
    span_sums[s] = span_sum;
  });
  double sum_of_squares = 0.0;
  for (const double span_sum : span_sums) sum_of_squares += span_sum;
  return std::sqrt(sum_of_squares);
}

double ClipFactor(double norm, double max_norm) {
  const double scale = max_norm / (norm + 1e-6);
  return max_norm <= 0 || scale >= 1.0 ? 1.0 : scale;
}

double ClipGradNorm(const std::vector<at::Tensor>& parameters, double max_norm) {
  const double total = GradNorm(parameters);
  const double scale = ClipFactor(total, max_norm);
  if (scale == 1.0) return total;
  const std::vector<at::Tensor> grads = DefinedGradients(parameters);
  if (!std::all_of(grads.begin(), grads.end(), IsDenseCpuFloat)) {
    for (const at::Tensor& g : grads) g.mul_(scale);
    return total;
  }
  // The same float product as the fused AdamW step's scaling.
  const float factor = static_cast<float>(scale);
  const std::vector<Span> spans = Spans(grads);
  ParallelForEach(static_cast<int64_t>(spans.size()), [&](int64_t s) {
    float* g = grads[spans[s].tensor].data_ptr<float>();
#pragma omp simd
    for (int64_t i = spans[s].begin; i < spans[s].end; ++i) g[i] *= factor;
  });
  return total;
}

}  // namespace taskmoe
