#include "moe/train/train_step.h"

#include <chrono>
#include <cmath>
#include <utility>

#include <torch/autograd.h>

#include "absl/strings/str_cat.h"
#include "moe/base/status_macros.h"
#include "moe/model/loss.h"
#include "moe/model/moe_layers.h"

namespace taskmoe {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

at::Tensor ExpertDistance(BartForConditionalGeneration& model) {
  at::Tensor total = at::zeros({}, model->final_logits_bias.options());
  auto add_layer = [&total](torch::nn::ModuleList experts) {
    const int64_t n = static_cast<int64_t>(experts->size());
    if (n < 2) return;
    at::Tensor layer = at::zeros_like(total);
    for (int64_t a = 0; a < n; ++a) {
      for (int64_t b = a + 1; b < n; ++b) {
        const auto pa = experts[a]->parameters();
        const auto pb = experts[b]->parameters();
        for (size_t i = 0; i < pa.size(); ++i) layer = layer + (pa[i] - pb[i]).norm();
      }
    }
    total = total + layer / static_cast<double>(n * (n - 1) / 2);
  };
  for (const auto& layer : *model->model->encoder->layers) {
    if (auto* moe = layer->as<MoeEncoderLayerImpl>()) add_layer(moe->experts);
  }
  for (const auto& layer : *model->model->decoder->layers) {
    if (auto* moe = layer->as<MoeDecoderLayerImpl>()) add_layer(moe->experts);
  }
  return total;
}

TrainStep::TrainStep(MoeBart& model, GroupedAdamW& optimizer,
                     std::vector<at::Tensor> router_and_task_parameters,
                     DistributedContext* distributed, const TrainStepOptions& options)
    : model_(model),
      optimizer_(optimizer),
      all_parameters_(optimizer.Parameters()),
      router_and_task_parameters_(std::move(router_and_task_parameters)),
      distributed_(distributed),
      options_(options) {}

absl::StatusOr<StepResult> TrainStep::Run(
    int64_t completed_steps, const std::function<BatchTensors()>& next_batch,
    const std::function<RouteWeights(const at::Tensor&)>& routes) {
  StepResult result;
  StepPhases& phases = result.phases;
  for (int micro = 0; micro < options_.gradient_accumulation_steps; ++micro) {
    Clock::time_point start = Clock::now();
    const BatchTensors b = next_batch();
    absl::StatusOr<BartOutput> out =
        model_.Forward(b.input_ids, b.attention_mask, b.decoder_input_ids, routes(b.task_ids));
    if (!out.ok()) return out.status();
    const LabelSmoothedLoss loss =
        LabelSmoothedNllLoss(out->logits, b.labels, options_.label_smoothing, options_.pad_id);
    const double value = loss.loss.item<double>();
    if (!std::isfinite(value)) {
      return absl::InternalError(
          absl::StrCat("training loss is ", value, " at step ", completed_steps + 1));
    }
    result.loss_sum += value;
    result.tokens += loss.ntokens.item<int64_t>();
    at::Tensor objective = loss.loss;
    if (options_.expert_regularization > 0) {
      objective = objective + options_.expert_regularization * ExpertDistance(model_.model());
    }
    phases.forward += SecondsSince(start);
    start = Clock::now();
    objective.backward();
    phases.backward += SecondsSince(start);
  }
  Clock::time_point start = Clock::now();
  if (distributed_ != nullptr && distributed_->world_size() > 1) {
    // Gradients of summed losses: the sum over ranks is the combined batch's gradient.
    TASKMOE_RETURN_IF_ERROR(distributed_->AllReduceGradients(all_parameters_));
    torch::NoGradGuard no_grad;
    for (at::Tensor& p : all_parameters_) {
      if (p.grad().defined()) p.mutable_grad().mul_(distributed_->world_size());
    }
    absl::StatusOr<double> total_loss = distributed_->AllReduceSum(result.loss_sum);
    if (!total_loss.ok()) return total_loss.status();
    absl::StatusOr<double> total_tokens =
        distributed_->AllReduceSum(static_cast<double>(result.tokens));
    if (!total_tokens.ok()) return total_tokens.status();
    result.loss_sum = *total_loss;
    result.tokens = static_cast<int64_t>(*total_tokens);
  }
  result.grad_norm = GradNorm(all_parameters_);
  phases.clip = SecondsSince(start);
  start = Clock::now();
  const int64_t step = completed_steps + 1;
  if (options_.alternate_every > 0) {
    // Odd phases update only the model, even phases only the router and task vectors.
    const bool model_phase = (step / options_.alternate_every) % 2 == 1;
    torch::NoGradGuard no_grad;
    if (model_phase) {
      for (at::Tensor& p : router_and_task_parameters_) {
        if (p.grad().defined()) p.mutable_grad().zero_();
      }
    } else {
      for (const auto& item : model_.model()->named_parameters()) {
        if (item.value().grad().defined()) item.value().mutable_grad().zero_();
      }
    }
  }
  result.lr_factor =
      LinearWarmupDecay(completed_steps, options_.warmup_steps, options_.total_steps);
  optimizer_.SetLrFactor(result.lr_factor);
  // Clipping's scaling and the zeroing of the gradients happen inside AdamW's pass.
  optimizer_.StepAndZeroGradients(ClipFactor(result.grad_norm, options_.max_grad_norm));
  phases.optimizer = SecondsSince(start);
  return result;
}

}  // namespace taskmoe
