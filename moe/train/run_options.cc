#include "moe/train/run_options.h"

namespace taskmoe {

OptimizerOptions ToOptimizerOptions(const OptimizerConfig& config) {
  OptimizerOptions o;
  o.lr = config.lr();
  o.router_lr = config.router_lr();
  o.task_vector_lr = config.task_vector_lr();
  o.weight_decay = config.weight_decay();
  o.adam_epsilon = config.adam_epsilon();
  o.beta1 = config.adam_beta1();
  o.beta2 = config.adam_beta2();
  return o;
}

TrainStepOptions ToTrainStepOptions(const ExperimentConfig& config, int64_t pad_id) {
  const TrainingConfig& t = config.training();
  TrainStepOptions step;
  step.gradient_accumulation_steps = t.gradient_accumulation_steps();
  step.label_smoothing = t.label_smoothing();
  step.expert_regularization = t.expert_regularization();
  step.max_grad_norm = config.optimizer().max_grad_norm();
  step.alternate_every = t.alternate_every();
  step.warmup_steps = static_cast<int64_t>(t.total_steps() * t.warmup_ratio());
  step.total_steps = t.total_steps();
  step.pad_id = pad_id;
  return step;
}

BatchOptions ToBatchOptions(const ExperimentConfig& config, int64_t pad_id) {
  BatchOptions options;
  options.batch_size = config.training().train_batch_size();
  options.grouping = config.data().batching() == DataConfig::TASK_GROUPED
                         ? BatchGrouping::kTaskGrouped
                         : BatchGrouping::kMixed;
  options.seed = static_cast<uint64_t>(config.training().seed());
  options.pad_id = pad_id;
  return options;
}

GenerationOptions ToGenerationOptions(const ExperimentConfig& config, int64_t bos_token_id) {
  const EvaluationConfig& e = config.evaluation();
  GenerationOptions generation;
  generation.max_length = config.data().max_output_length();
  generation.num_beams = e.num_beams();
  generation.early_stopping = e.early_stopping();
  if (e.generation_start() == EvaluationConfig::BOS) {
    generation.decoder_start_token_id = bos_token_id;
  }
  return generation;
}

}  // namespace taskmoe
