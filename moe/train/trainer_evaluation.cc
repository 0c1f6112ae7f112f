#include <filesystem>
#include <string>
#include <vector>

#include <torch/utils.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "glog/logging.h"
#include "moe/base/cpu_runtime.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "moe/train/route_evolution.h"
#include "moe/train/run_options.h"
#include "moe/train/run_outputs.h"
#include "moe/train/trainer_internal.h"

namespace taskmoe {

namespace fs = std::filesystem;

absl::StatusOr<std::vector<TaskScore>> Trainer::ScoreSplit(const SplitData& split,
                                                           const at::Tensor& dataset_to_table) {
  return ScoreGenerations(model_, split.tokens, split.references, *data_.tokenizer,
                          data_.metrics, EvaluationRoutes(dataset_to_table),
                          ToGenerationOptions(config_, model_.config().bos_token_id),
                          config_.evaluation().predict_batch_size(), device_);
}

absl::Status Trainer::Evaluate() {
  PreserveCpuRng preserve;
  torch::NoGradGuard no_grad;
  model_.model()->eval();
  routing_->plugin().eval();
  const TrainingConfig& t = config_.training();
  absl::StatusOr<LossTotals> dev_loss =
      DatasetLoss(model_, data_.dev.tokens, EvaluationRoutes(dev_to_table_),
                  config_.evaluation().predict_batch_size(), t.label_smoothing(), device_);
  if (!dev_loss.ok()) return dev_loss.status();
  absl::StatusOr<std::vector<TaskScore>> scores = ScoreSplit(data_.dev, dev_to_table_);
  if (!scores.ok()) return scores.status();
  const double performance = MeanPerformance(*scores);
  const std::string eval_dir = absl::StrCat(output_dir_, "/evals/step_", state_.step);
  TASKMOE_RETURN_IF_ERROR(CreateDirectories(eval_dir));
  TASKMOE_RETURN_IF_ERROR(WriteScoresCsv(*scores, eval_dir + "/dev_results.csv"));
  TASKMOE_RETURN_IF_ERROR(WriteRouteFiles(TrainTaskRouteViews(), data_.train_tasks,
                                          data_.ontology, model_.shape(), state_.step, eval_dir));
  EvalRecord record;
  record.step = state_.step;
  record.train_loss = window_tokens_ > 0 ? window_loss_ / window_tokens_ : 0.0;
  record.dev_loss = dev_loss->PerToken();
  record.dev_performance = performance;
  state_.history.push_back(record);
  window_loss_ = 0;
  window_tokens_ = 0;
  TASKMOE_RETURN_IF_ERROR(
      WriteFileAtomically(output_dir_ + "/losses.csv", LossesCsv(state_.history)));
  TASKMOE_RETURN_IF_ERROR(tensorboard_->AfterEvaluation(record, *scores, eval_dir));
  LOG(INFO) << absl::StrFormat(
      "step %d: train loss %.4f, dev loss %.4f, dev performance %.4f (%s)", state_.step,
      record.train_loss, record.dev_loss, performance, eval_dir);
  model_.model()->train();
  routing_->plugin().train();
  if (performance > state_.best_dev_performance) {
    LOG(INFO) << absl::StrFormat("new best dev performance %.4f -> %.4f at step %d",
                                 state_.best_dev_performance, performance, state_.step);
    state_.best_dev_performance = performance;
    state_.best_step = state_.step;
    TASKMOE_RETURN_IF_ERROR(SaveCheckpoint(kBestCheckpoint, /*with_trainer_state=*/false));
  }
  return absl::OkStatus();
}

absl::Status Trainer::Predict(bool from_best, std::vector<TaskScore>* dev_scores,
                             std::vector<TaskScore>* test_scores, RouteViews* routes) {
  const std::string best = output_dir_ + "/" + kBestCheckpoint;
  if (from_best && fs::exists(best)) {
    TASKMOE_RETURN_IF_ERROR(LoadCheckpointInto(best, /*with_trainer_state=*/false));
    LOG(INFO) << "predicting with the best checkpoint (step " << state_.best_step << ")";
  }
  torch::NoGradGuard no_grad;
  model_.model()->eval();
  routing_->plugin().eval();
  *routes = TrainTaskRouteViews();
  for (const std::string split : {"dev", "test"}) {
    TASKMOE_ASSIGN_OR_RETURN(const SplitData data,
                             LoadEvaluationSplit(data_, data_.train_tasks, split, 0,
                                                 data_.predict_data_dir));
    TASKMOE_ASSIGN_OR_RETURN(const at::Tensor to_table, routing_->table().Ids(data.tokens.tasks, device_));
    TASKMOE_ASSIGN_OR_RETURN(std::vector<TaskScore> scores, ScoreSplit(data, to_table));
    TASKMOE_RETURN_IF_ERROR(WritePredictions(scores, split, output_dir_ + "/" + kPredictDir));
    LOG(INFO) << absl::StrFormat("%s average performance %.4f", split, MeanPerformance(scores));
    *(split == "dev" ? dev_scores : test_scores) = std::move(scores);
  }
  return absl::OkStatus();
}

absl::Status Trainer::WriteRouteGif() const {
  RouteEvolutionOptions options;
  if (data_.ontology.has_value()) options.categories = RouteCategoriesOf(*data_.ontology);
  options.layer_labels =
      EncoderDecoderLayerLabels(model_.shape().encoder_layers, model_.shape().decoder_layers);
  return WriteRouteEvolutionGif(output_dir_, output_dir_ + "/" + kRouteGifFile, options);
}

absl::StatusOr<RunSummary> Trainer::PredictOnly() {
  std::vector<TaskScore> dev_scores;
  std::vector<TaskScore> test_scores;
  RouteViews routes;
  if (is_main()) {
    TASKMOE_RETURN_IF_ERROR(Predict(/*from_best=*/false, &dev_scores, &test_scores, &routes));
    TASKMOE_RETURN_IF_ERROR(WriteRouteFiles(routes, data_.train_tasks, data_.ontology,
                                            model_.shape(), state_.step,
                                            output_dir_ + "/" + kPredictDir));
    if (options_.save_initial_model) {
      TASKMOE_RETURN_IF_ERROR(SaveCheckpoint(kLastCheckpoint, /*with_trainer_state=*/true));
    }
  }
  TASKMOE_RETURN_IF_ERROR(distributed_->Barrier());
  RunSummary summary;
  summary.output_dir = output_dir_;
  if (!is_main()) return summary;
  state_.best_dev_performance = MeanPerformance(dev_scores);
  summary = SummarizeRun(data_, state_, output_dir_, dev_scores, routes.soft,
                         output_dir_ + "/" + kPredictDir + "/" + kRoutesImageFile);
  summary.dev_scores = std::move(dev_scores);
  summary.test_scores = std::move(test_scores);
  return summary;
}

}  // namespace taskmoe
