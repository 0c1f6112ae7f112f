#ifndef TASKMOE_MOE_TRAIN_TRAINER_INTERNAL_H_
#define TASKMOE_MOE_TRAIN_TRAINER_INTERNAL_H_

// The run behind RunExperiment(), shared by trainer.cc (set-up, training loop, checkpoints) and
// trainer_evaluation.cc (evaluation during training and the final prediction).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moe/model/moe_model.h"
#include "moe/model/optimization.h"
#include "moe/train/batch_stream.h"
#include "moe/train/checkpoint.h"
#include "moe/train/distributed.h"
#include "moe/train/evaluation.h"
#include "moe/train/run_data.h"
#include "moe/train/run_report.h"
#include "moe/train/run_routing.h"
#include "moe/train/tensorboard_log.h"
#include "moe/train/train_step.h"
#include "moe/train/trainer.h"

namespace taskmoe {

class Trainer {
 public:
  Trainer(const ExperimentConfig& config, const TrainerOptions& options, ExperimentData data,
          std::unique_ptr<DistributedContext> distributed, at::Device device, MoeBart model)
      : config_(config),
        options_(options),
        data_(std::move(data)),
        distributed_(std::move(distributed)),
        device_(device),
        model_(std::move(model)),
        output_dir_(config.output_dir()) {}

  absl::Status Setup(bool fresh_routing_state);
  absl::StatusOr<RunSummary> Run();

 private:
  bool is_main() const { return distributed_->is_main(); }

  absl::Status SetUpRouting(bool fresh_routing_state);
  void SetUpOptimization();
  // Every replica starts from rank 0's values; then --resume loads <output_dir>/last.
  absl::Status SyncAndResume();

  BatchRoutes EvaluationRoutes(const at::Tensor& dataset_to_table) {
    return routing_->EvaluationRoutes(dataset_to_table, state_.step);
  }
  // The route views of the run's train tasks (for the route files and the summary).
  RouteViews TrainTaskRouteViews() { return routing_->ViewsOf(train_task_table_ids_, state_.step); }

  // One optimiser step (train_step_), with the run's bookkeeping.
  absl::StatusOr<double> Step(int64_t* tokens);
  absl::Status Evaluate();
  // Writes <output_dir>/<name> whole (WriteCheckpoint), or names it in the error.
  absl::Status SaveCheckpoint(const std::string& name, bool with_trainer_state);
  absl::Status WriteCheckpoint(const std::string& name, bool with_trainer_state);
  absl::Status LoadCheckpointInto(const std::string& dir, bool with_trainer_state);
  absl::StatusOr<std::vector<TaskScore>> ScoreSplit(const SplitData& split,
                                                    const at::Tensor& dataset_to_table);
  // Scores dev and test with the best checkpoint (when `from_best` and one was saved, else the
  // weights as they are) and writes the prediction files.
  absl::Status Predict(bool from_best, std::vector<TaskScore>* dev_scores,
                       std::vector<TaskScore>* test_scores, RouteViews* routes);
  // <output_dir>/routes.gif: the route map of every evaluation so far, in step order.
  absl::Status WriteRouteGif() const;
  // training.total_steps 0: the initial model predicts dev and test; nothing is trained.
  absl::StatusOr<RunSummary> PredictOnly();

  ExperimentConfig config_;
  TrainerOptions options_;
  ExperimentData data_;
  std::unique_ptr<DistributedContext> distributed_;
  at::Device device_;
  MoeBart model_;
  std::string output_dir_;

  std::optional<RunRouting> routing_;
  at::Tensor train_to_table_;
  at::Tensor dev_to_table_;
  at::Tensor train_task_table_ids_;  // table ids of data_.train_tasks, in that order
  GroupedAdamW optimizer_;
  std::unique_ptr<TrainStep> train_step_;
  TrainerState state_;

  std::unique_ptr<BatchStream> batches_;
  std::unique_ptr<TensorBoardLog> tensorboard_;  // the main process's, while training
  double window_loss_ = 0;
  int64_t window_tokens_ = 0;
  double last_lr_ = 0;  // the model's learning rate in the latest step
};

}  // namespace taskmoe

#endif  // TASKMOE_MOE_TRAIN_TRAINER_INTERNAL_H_
