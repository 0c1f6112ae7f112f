#include "moe/embedding/task_training.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "moe/model/batch_tensors.h"
#include "moe/model/loss.h"

namespace taskmoe {
namespace {

void ClearGradients(const std::vector<at::Tensor>& parameters) {
  for (const at::Tensor& parameter : parameters) {
    if (parameter.grad().defined()) parameter.mutable_grad() = at::Tensor();
  }
}

}  // namespace

absl::Status ValidateTaskTrainingOptions(const TaskTrainingOptions& options,
                                         std::string_view params_name) {
  if (options.steps < 0 || options.warmup_steps < 0 || options.batch_size < 1 ||
      !(options.learning_rate > 0) || !(options.weight_decay >= 0) ||
      !(options.max_grad_norm > 0) ||
      !(options.label_smoothing >= 0 && options.label_smoothing < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(params_name),
        " need steps >= 0, warmup_steps >= 0, train_batch_size >= 1, learning_rate > 0, "
        "weight_decay >= 0, max_grad_norm > 0 and 0 <= label_smoothing < 1; got steps ",
        options.steps, ", warmup_steps ", options.warmup_steps, ", train_batch_size ",
        options.batch_size, ", learning_rate ", options.learning_rate, ", weight_decay ",
        options.weight_decay, ", max_grad_norm ", options.max_grad_norm, ", label_smoothing ",
        options.label_smoothing));
  }
  return absl::OkStatus();
}

at::Tensor SummedTaskLoss(const TaskEmbeddingInput& input, const Batch& batch,
                          double label_smoothing) {
  const BatchTensors tensors = ToTensors(batch, input.decoder_start_token_id, input.device);
  const RouteWeights routes = input.model->AverageRoutes(batch.size, input.device);
  const at::Tensor logits =
      input.model->model
          ->Forward(tensors.input_ids, tensors.attention_mask, tensors.decoder_input_ids,
                    RoutesOrNull(*input.model, routes))
          .logits;
  return LabelSmoothedNllLoss(logits, tensors.labels, label_smoothing, input.pad_id).loss;
}

absl::Status TrainOnTask(const TaskEmbeddingInput& input, const TokenizedDataset& task_data,
                         const TrainableParameters& trainable,
                         const std::vector<at::Tensor>& clipped,
                         const TaskTrainingOptions& options) {
  if (options.steps == 0) return absl::OkStatus();
  BartForConditionalGeneration& model = input.model->model;
  const bool was_training = model->is_training();
  at::manual_seed(options.seed);  // dropout
  OptimizerOptions optimizer_options;
  optimizer_options.lr = options.learning_rate;
  optimizer_options.weight_decay = options.weight_decay;
  GroupedAdamW optimizer = MakeGroupedAdamW(trainable, optimizer_options);
  BatchOptions batch_options;
  batch_options.batch_size = options.batch_size;
  batch_options.seed = options.seed;
  batch_options.pad_id = input.pad_id;
  BatchCycle batches(task_data, batch_options);
  model->train();
  absl::Status status;
  for (int64_t step = 0; step < options.steps; ++step) {
    ClearGradients(clipped);
    const at::Tensor loss = SummedTaskLoss(input, batches.Next(), options.label_smoothing);
    if (!std::isfinite(loss.item<double>())) {
      status = absl::InternalError(absl::StrCat("the training loss of task ", task_data.tasks.at(0),
                                                " is not finite at step ", step));
      break;
    }
    loss.backward();
    ClipGradNorm(clipped, options.max_grad_norm);
    optimizer.SetLrFactor(LinearWarmupDecay(step, options.warmup_steps, options.steps));
    optimizer.optimizer->step();
  }
  ClearGradients(clipped);
  model->train(was_training);
  return status;
}

}  // namespace taskmoe
