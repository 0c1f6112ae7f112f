#include "moe/optimization.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "glog/logging.h"

namespace taskmoe {

bool TakesWeightDecay(const std::string& name) {
  return !(absl::EndsWith(name, ".bias") || absl::EndsWith(name, "layer_norm.weight") ||
           absl::EndsWith(name, "layernorm_embedding.weight") || name == "bias");
}

namespace {

void AddGroup(std::vector<at::Tensor> params, double lr, double weight_decay,
              const OptimizerOptions& o, std::vector<torch::optim::OptimizerParamGroup>* groups,
              std::vector<double>* base_lrs) {
  if (params.empty()) return;
  auto options = std::make_unique<torch::optim::AdamWOptions>(lr);
  options->betas({o.beta1, o.beta2}).eps(o.adam_epsilon).weight_decay(weight_decay);
  groups->emplace_back(std::move(params), std::move(options));
  base_lrs->push_back(lr);
}

void AddDecayGroups(const std::vector<std::pair<std::string, at::Tensor>>& named, double lr,
                    const OptimizerOptions& o,
                    std::vector<torch::optim::OptimizerParamGroup>* groups,
                    std::vector<double>* base_lrs) {
  std::vector<at::Tensor> decay, no_decay;
  for (const auto& [name, param] : named) {
    (TakesWeightDecay(name) ? decay : no_decay).push_back(param);
  }
  AddGroup(std::move(decay), lr, o.weight_decay, o, groups, base_lrs);
  AddGroup(std::move(no_decay), lr, 0.0, o, groups, base_lrs);
}

}  // namespace

GroupedAdamW MakeGroupedAdamW(const TrainableParameters& parameters,
                              const OptimizerOptions& options) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  GroupedAdamW result;
  AddDecayGroups(parameters.model, options.lr, options, &groups, &result.base_lrs);
  AddDecayGroups(parameters.router, options.router_lr, options, &groups, &result.base_lrs);
  AddGroup(parameters.task_vectors, options.task_vector_lr, options.weight_decay, options,
           &groups, &result.base_lrs);
  CHECK(!groups.empty()) << "no trainable parameters";
  result.optimizer = std::make_unique<torch::optim::AdamW>(
      std::move(groups), torch::optim::AdamWOptions(options.lr));
  return result;
}

void GroupedAdamW::SetLrFactor(double factor) {
  auto& groups = optimizer->param_groups();
  for (size_t i = 0; i < groups.size(); ++i) {
    static_cast<torch::optim::AdamWOptions&>(groups[i].options()).lr(base_lrs[i] * factor);
  }
}

std::vector<at::Tensor> GroupedAdamW::Parameters() const {
  std::vector<at::Tensor> all;
  for (const auto& group : optimizer->param_groups()) {
    all.insert(all.end(), group.params().begin(), group.params().end());
  }
  return all;
}

double LinearWarmupDecay(int64_t step, int64_t warmup_steps, int64_t total_steps) {
  if (step < warmup_steps) {
    return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  }
  return std::max(0.0, static_cast<double>(total_steps - step) /
                           static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps)));
}

double ClipGradNorm(const std::vector<at::Tensor>& parameters, double max_norm) {
  std::vector<at::Tensor> norms;
  for (const at::Tensor& p : parameters) {
    if (p.grad().defined()) norms.push_back(p.grad().detach().norm(2).to(at::kFloat));
  }
  if (norms.empty()) return 0.0;
  const double total = at::stack(norms).norm(2).item<double>();
  const double scale = max_norm / (total + 1e-6);
  if (max_norm > 0 && scale < 1.0) {
    for (const at::Tensor& p : parameters) {
      if (p.grad().defined()) p.grad().detach().mul_(scale);
    }
  }
  return total;
}

}  // namespace taskmoe
