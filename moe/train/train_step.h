#ifndef TASKMOE_MOE_TRAIN_TRAIN_STEP_H_
#define TASKMOE_MOE_TRAIN_TRAIN_STEP_H_

#include <chrono>
#include <functional>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "moe/model/batch_tensors.h"
#include "moe/model/moe_model.h"
#include "moe/model/optimization.h"
#include "moe/model/route_weights.h"
#include "moe/train/distributed.h"

namespace taskmoe {

struct TrainStepOptions {
  int gradient_accumulation_steps = 1;
  double label_smoothing = 0.1;
  double expert_regularization = 0;  // weight of ExpertDistance in the objective; 0: off
  double max_grad_norm = 1.0;
  // > 0: phases of this many steps alternate between updating only the model and only the
  // router and task vectors.
  int64_t alternate_every = 0;
  // The learning-rate schedule, LinearWarmupDecay(step, warmup_steps, total_steps).
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  int64_t pad_id = 1;
};

// Wall seconds on the steady clock since `start`; how StepPhases and the trainer's run time are
// measured.
double SecondsSince(std::chrono::steady_clock::time_point start);

// Seconds of one step in each phase (summed over its micro-batches).
struct StepPhases {
  double forward = 0;  // routes, model and loss
  double backward = 0;
  double clip = 0;  // all-reduce across processes, then the gradients' global norm
  double optimizer = 0;  // AdamW on the clipped gradients, which it leaves zeroed
};

struct StepResult {
  double loss_sum = 0;  // summed label-smoothed loss over the step's target tokens (all ranks)
  int64_t tokens = 0;
  double lr_factor = 0;  // the schedule's multiplier this step used
  double grad_norm = 0;  // global L2 norm of the summed gradients, before clipping
  StepPhases phases;
};

// The training step of the trainer: for each micro-batch the routes, the forward pass, the
// fairseq label-smoothed loss (summed over target tokens) plus expert regularisation, and
// backward; the gradients summed across data-parallel processes; global grad-norm clipping;
// the alternate-phase masking; the scheduled learning rate; AdamW; gradients zeroed.
// tools/bench times this same step.
class TrainStep {
 public:
  // `router_and_task_parameters` are those the alternate phases switch off. `distributed` may
  // be null (one process).
  TrainStep(MoeBart& model, GroupedAdamW& optimizer,
            std::vector<at::Tensor> router_and_task_parameters,
            DistributedContext* distributed, const TrainStepOptions& options);

  // Runs optimiser step number `completed_steps` + 1. `next_batch` gives each micro-batch,
  // `routes` the routes of its examples from their task ids. A non-finite loss is an error
  // (nothing is updated).
  absl::StatusOr<StepResult> Run(int64_t completed_steps,
                                 const std::function<BatchTensors()>& next_batch,
                                 const std::function<RouteWeights(const at::Tensor&)>& routes);

 private:
  MoeBart& model_;
  GroupedAdamW& optimizer_;
  std::vector<at::Tensor> all_parameters_;
  std::vector<at::Tensor> router_and_task_parameters_;
  DistributedContext* distributed_;
  TrainStepOptions options_;
};

// Sum over MoE layers of the mean over expert pairs of sum_p ||p_e1 - p_e2|| (the original's
// expert_regularization term).
at::Tensor ExpertDistance(BartForConditionalGeneration& model);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_TRAIN_TRAIN_STEP_H_
