#ifndef TASKMOE_MOE_TRAIN_TENSORBOARD_LOG_H_
#define TASKMOE_MOE_TRAIN_TENSORBOARD_LOG_H_

// A training run's TensorBoard event file (moe/formats/tensorboard_events.h), written by the
// main process: <output_dir>/tensorboard/events.out.tfevents.<time>.<host>. Each start of the
// trainer opens a new file, so a resumed run adds one and continues the step axis (steps are
// optimiser steps). Tags:
//   every log_every steps (every step when log_every <= 0):
//     train/loss               label-smoothed loss per target token since the previous write
//     train/tokens_per_second  target tokens (all processes) per second spent in training steps
//     train/grad_norm          the step's global gradient norm before clipping
//     train/lr/<group>         each optimiser group's learning rate (GroupedAdamW::group_names)
//     train/tau                the routing temperature, for plugins with router logits
//     routes/entropy/<layer>   entropy (nats) of the train tasks' soft routes, mean over tasks;
//                              layers enc0.., dec0..
//   at each evaluation, which also flushes the file:
//     dev/loss, dev/performance (mean over tasks), dev/performance/<task>
//     routes/heatmap           the evaluation's soft-route heatmap (evals/step_N/route.png)

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moe/formats/tensorboard_events.h"
#include "moe/model/optimization.h"
#include "moe/model/route_weights.h"
#include "moe/routing/routing.h"
#include "moe/train/checkpoint.h"
#include "moe/train/evaluation.h"
#include "moe/train/train_step.h"

namespace taskmoe {

// The folder of a run's event files, under its output_dir.
inline constexpr char kTensorBoardDir[] = "tensorboard";

class TensorBoardLog {
 public:
  // A new event file under <output_dir>/tensorboard for a model of `shape` trained by
  // `optimizer` (which must outlive the log; its groups' learning rates are read at each write).
  // `train_task_views` gives the current route views of the run's train tasks; it is called
  // only on the steps that write.
  static absl::StatusOr<std::unique_ptr<TensorBoardLog>> Open(
      const std::string& output_dir, int64_t log_every, const ModelShape& shape,
      const GroupedAdamW& optimizer, std::function<RouteViews()> train_task_views);

  // After optimiser step `step`, which gave `result`.
  absl::Status AfterStep(int64_t step, const StepResult& result);

  // After the evaluation `record` with its per-task dev scores, whose files are in `eval_dir`
  // (the image is its kRoutesImageFile). Flushes, so TensorBoard shows the run so far.
  absl::Status AfterEvaluation(const EvalRecord& record, const std::vector<TaskScore>& dev_scores,
                               const std::string& eval_dir);

  const std::string& path() const { return events_->path(); }

 private:
  TensorBoardLog(std::unique_ptr<EventFileWriter> events, int64_t log_every,
                 std::vector<std::string> layer_labels, const GroupedAdamW& optimizer,
                 std::function<RouteViews()> train_task_views)
      : events_(std::move(events)),
        log_every_(log_every),
        layer_labels_(std::move(layer_labels)),
        optimizer_(optimizer),
        train_task_views_(std::move(train_task_views)) {}

  std::unique_ptr<EventFileWriter> events_;
  int64_t log_every_;
  std::vector<std::string> layer_labels_;
  const GroupedAdamW& optimizer_;
  std::function<RouteViews()> train_task_views_;
  // Since the previous write of training scalars.
  double window_loss_sum_ = 0;
  int64_t window_tokens_ = 0;
  double window_seconds_ = 0;
};

}  // namespace taskmoe

#endif  // TASKMOE_MOE_TRAIN_TENSORBOARD_LOG_H_
