#ifndef TASKMOE_MOE_EMBEDDING_TASK_TRAINING_H_
#define TASKMOE_MOE_EMBEDDING_TASK_TRAINING_H_

// The per-task training of the original's task-embedding scripts
// (task_emb/finetuneTaskemb/run_singletask.py and run_singletask_adapter.py as
// finetune*_a_list_of_tasks.sh runs them), shared by the methods that train on each task before
// embedding it: AdamW, linear warmup then linear decay to zero, clipping of the global gradient
// norm, batches drawn at random and reshuffled every epoch, and the label-smoothed loss summed
// over the batch's target tokens.

#include <ATen/ATen.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "data/batching.h"
#include "moe/embedding/task_embedding.h"
#include "moe/model/optimization.h"

namespace taskmoe {

// Defaults: the values finetuneTextEmb_a_list_of_tasks.sh and finetuneFisher_a_list_of_tasks.sh
// pass (--total_steps 2500 --warmup_steps 150 --learning_rate_list 3e-5 --bsz_list 8
// --max_grad_norm 0.1 --weight_decay 0.01; label smoothing 0.1 in the model's loss).
struct TaskTrainingOptions {
  int64_t steps = 2500;
  int64_t warmup_steps = 150;
  double learning_rate = 3e-5;
  double weight_decay = 0.01;
  double max_grad_norm = 0.1;
  int64_t batch_size = 8;
  double label_smoothing = 0.1;
  uint64_t seed = 42;  // dropout and batch order
};

// The options of a method's params message with the fields steps, warmup_steps, learning_rate,
// weight_decay, max_grad_norm, train_batch_size and label_smoothing; seed stays the default.
template <typename Params>
TaskTrainingOptions TaskTrainingOptionsFrom(const Params& params) {
  TaskTrainingOptions options;
  options.steps = params.steps();
  options.warmup_steps = params.warmup_steps();
  options.learning_rate = params.learning_rate();
  options.weight_decay = params.weight_decay();
  options.max_grad_norm = params.max_grad_norm();
  options.batch_size = params.train_batch_size();
  options.label_smoothing = params.label_smoothing();
  return options;
}

// InvalidArgument naming `params_name` and the offending values unless steps >= 0,
// 0 <= warmup_steps, batch_size >= 1, learning_rate > 0, weight_decay >= 0, max_grad_norm > 0
// and 0 <= label_smoothing < 1.
absl::Status ValidateTaskTrainingOptions(const TaskTrainingOptions& options,
                                         std::string_view params_name);

// The model's label-smoothed loss on `batch`, summed over its target tokens (the original's
// MyBart loss, not a mean), with average routes when the model is routed. Runs in the model's
// current mode, with gradients if enabled.
at::Tensor SummedTaskLoss(const TaskEmbeddingInput& input, const Batch& batch,
                          double label_smoothing);

// Trains `trainable` for options.steps optimiser steps on `task_data` (a one-task dataset),
// minimising SummedTaskLoss with the model in training mode (its mode is restored). Before each
// step the gradients of `clipped` (which must hold every trainable parameter) are clipped
// together to max_grad_norm: the original clips over every parameter of the model, frozen ones
// included. The step's learning rate is learning_rate * LinearWarmupDecay(steps done), so the
// first step has rate 0, as with transformers' scheduler. Gradients of `clipped` are cleared
// afterwards. Errors: a non-finite loss (names the task and the step).
absl::Status TrainOnTask(const TaskEmbeddingInput& input, const TokenizedDataset& task_data,
                         const TrainableParameters& trainable,
                         const std::vector<at::Tensor>& clipped,
                         const TaskTrainingOptions& options);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_EMBEDDING_TASK_TRAINING_H_
