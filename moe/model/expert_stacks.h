#ifndef TASKMOE_MOE_MODEL_EXPERT_STACKS_H_
#define TASKMOE_MOE_MODEL_EXPERT_STACKS_H_

// The parameters of a layer's E experts held in stacked tensors, so that batched work reads every
// expert's weights without copying them each pass. A stack holds a group of same-shaped
// parameters (e.g. the q, k and v projection weights) of every expert as one tensor
// [E, group size, ...]; each expert's parameter stays a registered leaf of its own module, its
// data a view of its slice of the stack, so checkpoints, optimizers and in-place loads see the
// usual per-expert parameters. Stack() returns the stack as a tensor whose gradient flows back
// to those parameters (each receives a view of its slice of the stack's gradient).
//
// Anything that gives a parameter new storage (module->to(device), set_data) unlinks it;
// Prepare() notices and copies the current values into a fresh stack.

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <map>
#include <string>
#include <vector>

namespace taskmoe {

class ExpertStacks {
 public:
  // experts: the E expert modules (same structure); groups: lists of parameter names relative
  // to an expert ("self_attn.q_proj.weight"), each list of one shape.
  ExpertStacks(std::vector<torch::nn::Module*> experts,
               std::vector<std::vector<std::string>> groups);

  // Creates or relinks every group's stack (see above). Call before Stack(), outside concurrent
  // work: Stack() only reads.
  void Prepare();

  // The stack of the group that starts with `first_name`, [E, group size, ...], connected to
  // the parameters for autograd. Prepare() must have run since the parameters last changed
  // storage.
  at::Tensor Stack(const std::string& first_name) const;

 private:
  struct Group {
    std::vector<std::string> names;
    std::vector<at::Tensor> parameters;  // expert-major: expert e's names, then expert e + 1's
    at::Tensor stack;                    // [E, names, ...]; undefined before Prepare()
  };
  // Whether every parameter of `group` is still the view of its slice of the stack.
  static bool Linked(const Group& group);

  std::vector<torch::nn::Module*> experts_;
  std::map<std::string, Group> groups_;  // by first name
};

}  // namespace taskmoe

#endif  // TASKMOE_MOE_MODEL_EXPERT_STACKS_H_
