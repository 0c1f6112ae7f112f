#ifndef TASKMOE_MOE_MODEL_OPTIMIZATION_H_
#define TASKMOE_MOE_MODEL_OPTIMIZATION_H_

#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

namespace taskmoe {

// Learning rates and AdamW settings of the three parameter families of a routed model.
struct OptimizerOptions {
  double lr = 1e-5;
  double router_lr = 1e-3;
  double task_vector_lr = 1e-2;
  double weight_decay = 0.01;
  double adam_epsilon = 1e-8;
  double beta1 = 0.9;
  double beta2 = 0.999;
};

// The parameters an optimiser updates, by family. Frozen families are left empty.
struct TrainableParameters {
  std::vector<std::pair<std::string, at::Tensor>> model;   // name -> parameter
  std::vector<std::pair<std::string, at::Tensor>> router;
  std::vector<at::Tensor> task_vectors;
};

// Biases and LayerNorm weights take no weight decay (the original meant to exclude them; its
// name pattern matched nothing in BART, see ../shared/bench/README.md).
bool TakesWeightDecay(const std::string& parameter_name);

// AdamW over up to five groups: model (decay / no decay) at lr, router (decay / no decay) at
// router_lr, task vectors at task_vector_lr. Each group's base lr is kept in `base_lrs` order.
struct GroupedAdamW {
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::vector<double> base_lrs;
  // The groups' names in the same order: "model", "model_no_decay", "router",
  // "router_no_decay", "task_vectors" (empty groups are left out).
  std::vector<std::string> group_names;

  // Sets every group's lr to base_lr * factor (the schedule's multiplier).
  void SetLrFactor(double factor);
  // One AdamW step on the gradients times `grad_scale` (the clipping factor), after which every
  // gradient is zero: the result of scaling the gradients, optimizer->step() and zeroing them,
  // bit for bit, in one pass over each parameter's memory instead of three.
  void StepAndZeroGradients(double grad_scale);
  // All parameters the optimiser updates, for clipping and all-reduce.
  std::vector<at::Tensor> Parameters() const;
};
GroupedAdamW MakeGroupedAdamW(const TrainableParameters& parameters,
                              const OptimizerOptions& options);

// Linear warmup from 0 to 1 over `warmup_steps`, then linear decay to 0 at `total_steps`
// (transformers' get_linear_schedule_with_warmup). `step` counts optimiser steps taken.
double LinearWarmupDecay(int64_t step, int64_t warmup_steps, int64_t total_steps);

// The global L2 norm of the parameters' gradients (parameters without one are skipped).
double GradNorm(const std::vector<at::Tensor>& parameters);

// What torch.nn.utils.clip_grad_norm_ scales gradients of global norm `norm` by:
// max_norm / (norm + 1e-6) when that is below 1 and max_norm > 0, else 1.
double ClipFactor(double norm, double max_norm);

// Scales gradients so that their global L2 norm is at most max_norm; returns the norm
// before clipping (torch.nn.utils.clip_grad_norm_).
double ClipGradNorm(const std::vector<at::Tensor>& parameters, double max_norm);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_MODEL_OPTIMIZATION_H_
