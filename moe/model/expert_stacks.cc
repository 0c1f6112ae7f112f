#include "moe/model/expert_stacks.h"

#include <utility>

#include <glog/logging.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/grad_mode.h>

namespace taskmoe {
namespace {

// The stack as an autograd node over the parameters it holds: forward hands out the stack's
// storage (no copy), backward gives each parameter its slice of the gradient.
class StackedParameters : public torch::autograd::Function<StackedParameters> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::TensorList parameters,
                            const at::Tensor* stack) {
    ctx->saved_data["count"] = static_cast<int64_t>(parameters.size());
    // A new tensor on the stack's storage: autograd attaches this node to it, not to the stack.
    at::Tensor out = at::empty({0}, stack->options());
    out.set_(*stack);
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const int64_t count = ctx->saved_data["count"].toInt();
    const at::Tensor flat = grads[0].flatten(0, 1);  // [E * group size, ...]
    torch::autograd::variable_list parameter_grads;
    for (int64_t i = 0; i < count; ++i) parameter_grads.push_back(flat[i]);
    parameter_grads.emplace_back();  // none for the stack pointer
    return parameter_grads;
  }
};

}  // namespace

ExpertStacks::ExpertStacks(std::vector<torch::nn::Module*> experts,
                           std::vector<std::vector<std::string>> groups)
    : experts_(std::move(experts)) {
  CHECK(!experts_.empty());
  for (std::vector<std::string>& names : groups) {
    CHECK(!names.empty());
    const std::string first = names.front();
    groups_[first].names = std::move(names);
  }
}

bool ExpertStacks::Linked(const Group& group) {
  if (!group.stack.defined()) return false;
  // Parameter i must be the contiguous slice i of the stack: compared by address arithmetic, as
  // Stack() checks this on every call.
  const auto* base = static_cast<const char*>(group.stack.data_ptr());
  for (size_t i = 0; i < group.parameters.size(); ++i) {
    const at::Tensor& p = group.parameters[i];
    const int64_t slice_bytes = p.numel() * static_cast<int64_t>(p.element_size());
    if (p.data_ptr() != base + static_cast<int64_t>(i) * slice_bytes || !p.is_contiguous() ||
        !p.sizes().equals(group.stack.sizes().slice(2)) ||
        p.scalar_type() != group.stack.scalar_type() || p.device() != group.stack.device()) {
      return false;
    }
  }
  return true;
}

void ExpertStacks::Prepare() {
  for (auto& [first, group] : groups_) {
    if (group.parameters.empty()) {
      for (torch::nn::Module* expert : experts_) {
        const auto named = expert->named_parameters();
        for (const std::string& name : group.names) {
          const at::Tensor* p = named.find(name);
          CHECK(p != nullptr) << "expert has no parameter " << name;
          group.parameters.push_back(*p);
        }
      }
    }
    if (Linked(group)) continue;
    at::NoGradGuard no_grad;
    const int64_t experts = static_cast<int64_t>(experts_.size());
    std::vector<at::Tensor> values;
    for (const at::Tensor& p : group.parameters) values.push_back(p.detach());
    at::Tensor stack = at::stack(values).view(
        [&] {
          std::vector<int64_t> sizes = {experts, static_cast<int64_t>(group.names.size())};
          for (int64_t s : values.front().sizes()) sizes.push_back(s);
          return sizes;
        }());
    const at::Tensor flat = stack.flatten(0, 1);
    for (size_t i = 0; i < group.parameters.size(); ++i) {
      group.parameters[i].set_data(flat[static_cast<int64_t>(i)]);
    }
    group.stack = stack;
  }
}

at::Tensor ExpertStacks::Stack(const std::string& first_name) const {
  const auto it = groups_.find(first_name);
  CHECK(it != groups_.end()) << "no stacked group starts with " << first_name;
  const Group& group = it->second;
  CHECK(Linked(group)) << "stack of " << first_name << " is not prepared";
  if (!at::GradMode::is_enabled()) return group.stack;
  return StackedParameters::apply(at::TensorList(group.parameters), &group.stack);
}

}  // namespace taskmoe
