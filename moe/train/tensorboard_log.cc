#include "moe/train/tensorboard_log.h"

#include <utility>

#include <ATen/ATen.h>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "moe/drawing/route_map.h"

namespace taskmoe {

absl::StatusOr<std::unique_ptr<TensorBoardLog>> TensorBoardLog::Open(
    const std::string& output_dir, int64_t log_every, const ModelShape& shape,
    const GroupedAdamW& optimizer, std::function<RouteViews()> train_task_views) {
  TASKMOE_ASSIGN_OR_RETURN(std::unique_ptr<EventFileWriter> events,
                           EventFileWriter::Create(output_dir + "/" + kTensorBoardDir));
  return std::unique_ptr<TensorBoardLog>(new TensorBoardLog(
      std::move(events), log_every,
      EncoderDecoderLayerLabels(shape.encoder_layers, shape.decoder_layers), optimizer,
      std::move(train_task_views)));
}

absl::Status TensorBoardLog::AfterStep(int64_t step, const StepResult& result) {
  window_loss_sum_ += result.loss_sum;
  window_tokens_ += result.tokens;
  const StepPhases& phases = result.phases;
  window_seconds_ += phases.forward + phases.backward + phases.clip + phases.optimizer;
  if (log_every_ > 0 && step % log_every_ != 0) return absl::OkStatus();

  std::vector<std::pair<std::string, double>> scalars;
  if (window_tokens_ > 0) {
    scalars.emplace_back("train/loss", window_loss_sum_ / static_cast<double>(window_tokens_));
  }
  if (window_seconds_ > 0) {
    scalars.emplace_back("train/tokens_per_second",
                         static_cast<double>(window_tokens_) / window_seconds_);
  }
  scalars.emplace_back("train/grad_norm", result.grad_norm);
  const auto& groups = optimizer_.optimizer->param_groups();
  CHECK_EQ(groups.size(), optimizer_.group_names.size());
  for (size_t i = 0; i < groups.size(); ++i) {
    scalars.emplace_back("train/lr/" + optimizer_.group_names[i], groups[i].options().get_lr());
  }
  const RouteViews views = train_task_views_();
  if (views.tau.has_value()) scalars.emplace_back("train/tau", *views.tau);
  // Entropy of each task's route distribution per layer (0 log 0 = 0), mean over tasks.
  const at::Tensor entropy =
      (-at::xlogy(views.soft, views.soft)).sum(-1).mean(0).to(at::kDouble).contiguous();
  CHECK_EQ(entropy.numel(), static_cast<int64_t>(layer_labels_.size()));
  for (size_t layer = 0; layer < layer_labels_.size(); ++layer) {
    scalars.emplace_back("routes/entropy/" + layer_labels_[layer],
                         entropy.data_ptr<double>()[layer]);
  }
  window_loss_sum_ = 0;
  window_tokens_ = 0;
  window_seconds_ = 0;
  return events_->WriteScalars(step, scalars);
}

absl::Status TensorBoardLog::AfterEvaluation(const EvalRecord& record,
                                             const std::vector<TaskScore>& dev_scores,
                                             const std::string& eval_dir) {
  std::vector<std::pair<std::string, double>> scalars = {
      {"dev/loss", record.dev_loss}, {"dev/performance", record.dev_performance}};
  for (const TaskScore& score : dev_scores) {
    scalars.emplace_back("dev/performance/" + score.task, score.performance);
  }
  TASKMOE_RETURN_IF_ERROR(events_->WriteScalars(record.step, scalars));
  TASKMOE_ASSIGN_OR_RETURN(const std::string png, ReadFileBytes(eval_dir + "/" + kRoutesImageFile));
  TASKMOE_RETURN_IF_ERROR(events_->WritePng(record.step, "routes/heatmap", png));
  return events_->Flush();
}

}  // namespace taskmoe
