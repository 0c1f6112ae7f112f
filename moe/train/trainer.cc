#include "moe/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>

#include <torch/autograd.h>
#include <torch/utils.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "glog/logging.h"
#include "moe/base/atomic_directory.h"
#include "moe/base/cpu_runtime.h"
#include "moe/base/progress.h"
#include "moe/base/status_macros.h"
#include "moe/formats/task_table.h"
#include "moe/train/model_builder.h"
#include "moe/train/run_options.h"
#include "moe/train/run_outputs.h"
#include "moe/train/task_vectors.h"
#include "moe/train/trainer_internal.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

std::vector<std::pair<std::string, at::Tensor>> Trainable(
    const torch::OrderedDict<std::string, at::Tensor>& parameters) {
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (const auto& item : parameters) {
    if (item.value().requires_grad()) named.emplace_back(item.key(), item.value());
  }
  return named;
}

}  // namespace

absl::Status Trainer::SetUpRouting(bool fresh_routing_state) {
  TASKMOE_ASSIGN_OR_RETURN(
      routing_, RunRouting::Create(config_, data_, model_, device_, fresh_routing_state));
  const RunTaskVectors& table = routing_->table();
  TASKMOE_ASSIGN_OR_RETURN(train_to_table_, table.Ids(data_.train.tokens.tasks, device_));
  TASKMOE_ASSIGN_OR_RETURN(dev_to_table_, table.Ids(data_.dev.tokens.tasks, device_));
  TASKMOE_ASSIGN_OR_RETURN(train_task_table_ids_, table.Ids(data_.train_tasks, device_));
  model_.model()->to(device_);
  model_.model()->train();
  return absl::OkStatus();
}

void Trainer::SetUpOptimization() {
  TrainableParameters trainable;
  trainable.model = Trainable(model_.model()->named_parameters());
  trainable.router = Trainable(routing_->plugin().named_parameters());
  if (config_.task_vectors().trainable()) {
    trainable.task_vectors.push_back(routing_->table().vectors);
  }
  optimizer_ = MakeGroupedAdamW(trainable, ToOptimizerOptions(config_.optimizer()));
  std::vector<at::Tensor> router_and_task_parameters;
  for (const auto& [name, p] : trainable.router) router_and_task_parameters.push_back(p);
  for (const at::Tensor& p : trainable.task_vectors) router_and_task_parameters.push_back(p);
  train_step_ = std::make_unique<TrainStep>(
      model_, optimizer_, std::move(router_and_task_parameters), distributed_.get(),
      ToTrainStepOptions(config_, model_.config().pad_token_id));
  batches_ = std::make_unique<BatchStream>(
      data_.train.tokens, ToBatchOptions(config_, data_.tokenizer->pad_id()),
      distributed_->rank(), distributed_->world_size());
}

absl::Status Trainer::SyncAndResume() {
  std::vector<at::Tensor> synced = optimizer_.Parameters();
  for (const auto& item : routing_->plugin().named_buffers()) synced.push_back(item.value());
  {
    torch::NoGradGuard no_grad;
    TASKMOE_RETURN_IF_ERROR(distributed_->Broadcast(synced));
  }
  if (!options_.resume) return absl::OkStatus();
  const std::string last = output_dir_ + "/" + kLastCheckpoint;
  if (!fs::exists(last + "/" + kTrainerStateFile)) {
    return absl::NotFoundError(absl::StrCat("--resume: no checkpoint with trainer state at ",
                                            last));
  }
  TASKMOE_RETURN_IF_ERROR(LoadCheckpointInto(last, /*with_trainer_state=*/true));
  if (state_.step > config_.training().total_steps()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--resume: ", last, "/", kTrainerStateFile, " is at step ", state_.step,
        ", beyond training.total_steps ", config_.training().total_steps()));
  }
  LOG(INFO) << "resumed from " << last << " at step " << state_.step;
  return absl::OkStatus();
}

absl::Status Trainer::Setup(bool fresh_routing_state) {
  TASKMOE_RETURN_IF_ERROR(SetUpRouting(fresh_routing_state));
  SetUpOptimization();
  return SyncAndResume();
}

absl::StatusOr<double> Trainer::Step(int64_t* tokens) {
  const int64_t decoder_start = model_.config().decoder_start_token_id;
  absl::StatusOr<StepResult> result = train_step_->Run(
      state_.step, [&] { return ToTensors(batches_->Next(state_.data_position), decoder_start, device_); },
      [&](const at::Tensor& task_ids) {
        return routing_->RoutesFor(train_to_table_.index_select(0, task_ids), state_.step);
      });
  if (!result.ok()) return result.status();
  ++state_.step;
  if (tensorboard_) TASKMOE_RETURN_IF_ERROR(tensorboard_->AfterStep(state_.step, *result));
  last_lr_ = config_.optimizer().lr() * result->lr_factor;
  window_loss_ += result->loss_sum;
  window_tokens_ += result->tokens;
  *tokens = result->tokens;
  return result->tokens > 0 ? result->loss_sum / result->tokens : 0.0;
}

absl::Status Trainer::SaveCheckpoint(const std::string& name, bool with_trainer_state) {
  const absl::Status written = WriteCheckpoint(name, with_trainer_state);
  if (written.ok()) return written;
  // The failing file is in the staging directory; say which checkpoint that is.
  return absl::Status(written.code(),
                      absl::StrCat("writing checkpoint ", output_dir_, "/", name,
                                   " failed (any previous version is kept): ", written.message()));
}

absl::Status Trainer::WriteCheckpoint(const std::string& name, bool with_trainer_state) {
  const at::Tensor rng_state = CpuRngState();
  PreserveCpuRng preserve;
  TASKMOE_ASSIGN_OR_RETURN(AtomicDirectory dir, AtomicDirectory::Begin(output_dir_ + "/" + name));
  const std::string staging = dir.staging();
  TASKMOE_RETURN_IF_ERROR(WriteCheckpointModel(staging, *model_.model(), model_.config(), config_));
  TASKMOE_ASSIGN_OR_RETURN(
      const TaskTable table,
      TaskTable::Create(routing_->table().names, routing_->table().vectors.detach().to(at::kCPU)));
  TASKMOE_RETURN_IF_ERROR(WriteCheckpointRouting(staging, routing_->plugin(), table));
  TASKMOE_RETURN_IF_ERROR(WriteRouteFiles(TrainTaskRouteViews(), data_.train_tasks,
                                          data_.ontology, model_.shape(), state_.step, staging));
  if (with_trainer_state) {
    TASKMOE_RETURN_IF_ERROR(
        WriteCheckpointTrainer(staging, *optimizer_.optimizer, state_, rng_state));
  }
  if (options_.before_checkpoint_commit) {
    TASKMOE_RETURN_IF_ERROR(options_.before_checkpoint_commit(staging));
  }
  return dir.Commit();
}

absl::Status Trainer::LoadCheckpointInto(const std::string& dir, bool with_trainer_state) {
  TASKMOE_RETURN_IF_ERROR(ReadCheckpointWeights(dir, *model_.model()));
  TASKMOE_RETURN_IF_ERROR(ReadCheckpointRoutingState(dir, routing_->plugin()));
  RunTaskVectors& run_table = routing_->table();
  TASKMOE_ASSIGN_OR_RETURN(const TaskTable table, TaskTable::Load(dir));
  if (table.names() != run_table.names ||
      !table.vectors().sizes().equals(run_table.vectors.sizes())) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir, "/", TaskTable::kNamesFile, ": the checkpoint's tasks differ from this run's"));
  }
  {
    torch::NoGradGuard no_grad;
    run_table.vectors.copy_(table.vectors());
  }
  if (!with_trainer_state) return absl::OkStatus();
  TASKMOE_ASSIGN_OR_RETURN(state_, ReadCheckpointTrainer(dir, *optimizer_.optimizer));
  return absl::OkStatus();
}

namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

absl::StatusOr<RunSummary> Trainer::Run() {
  if (config_.training().total_steps() == 0) return PredictOnly();
  if (options_.save_initial_model) {
    return absl::InvalidArgumentError(absl::StrCat(
        "saving the initial model (--save_initial_model) needs training.total_steps 0, not ",
        config_.training().total_steps(), "; a training run saves its checkpoints itself"));
  }
  const Clock::time_point run_start = Clock::now();
  double evaluation_seconds = 0;  // dev evaluation during training and the final prediction
  const TrainingConfig& t = config_.training();
  const EvaluationConfig& e = config_.evaluation();
  if (is_main()) {
    TASKMOE_ASSIGN_OR_RETURN(
        tensorboard_, TensorBoardLog::Open(output_dir_, t.log_every(), model_.shape(), optimizer_,
                                           [this] { return TrainTaskRouteViews(); }));
  }
  const int64_t last_step =
      options_.stop_after_step > 0 ? std::min<int64_t>(options_.stop_after_step, t.total_steps())
                                   : t.total_steps();
  ProgressOptions progress_options;
  progress_options.total_steps = t.total_steps();
  progress_options.start_step = state_.step;
  progress_options.log_every_steps = t.log_every();
  ProgressReporter progress(progress_options);
  const std::string last_dir = output_dir_ + "/" + kLastCheckpoint;
  while (state_.step < last_step) {
    int64_t tokens = 0;
    absl::StatusOr<double> loss = Step(&tokens);
    if (!loss.ok()) {
      progress.Finish();
      return absl::Status(
          loss.status().code(),
          absl::StrCat(loss.status().message(), "; training stopped. The last good checkpoint ",
                       fs::exists(last_dir) ? "is " + last_dir : std::string("was never written"),
                       " (unchanged)."));
    }
    if (is_main()) {
      progress.Update(state_.step, *loss, last_lr_, tokens);
    }
    const bool evaluate = state_.step % e.eval_period() == 0 && state_.step >= e.no_eval_until();
    if (evaluate) {
      if (is_main()) {
        const Clock::time_point start = Clock::now();
        TASKMOE_RETURN_IF_ERROR(Evaluate());
        evaluation_seconds += SecondsSince(start);
        TASKMOE_RETURN_IF_ERROR(SaveCheckpoint(kLastCheckpoint, /*with_trainer_state=*/true));
      }
      TASKMOE_RETURN_IF_ERROR(distributed_->Barrier());
    }
    if (t.save_period() > 0 && state_.step % t.save_period() == 0 && is_main()) {
      TASKMOE_RETURN_IF_ERROR(SaveCheckpoint(absl::StrCat("step_", state_.step),
                                             /*with_trainer_state=*/true));
    }
  }
  progress.Finish();
  if (is_main()) {
    TASKMOE_RETURN_IF_ERROR(SaveCheckpoint(kLastCheckpoint, /*with_trainer_state=*/true));
    if (!state_.history.empty()) TASKMOE_RETURN_IF_ERROR(WriteRouteGif());
  }
  TASKMOE_RETURN_IF_ERROR(distributed_->Barrier());
  RunSummary summary;
  summary.output_dir = output_dir_;
  summary.steps = state_.step;
  if (state_.step < t.total_steps() || !is_main()) {
    summary.text = absl::StrCat("stopped at step ", state_.step, "; continue with --resume\n");
    return summary;
  }
  std::vector<TaskScore> dev_scores;
  std::vector<TaskScore> test_scores;
  RouteViews routes = TrainTaskRouteViews();
  if (e.do_predict()) {
    const Clock::time_point start = Clock::now();
    TASKMOE_RETURN_IF_ERROR(Predict(/*from_best=*/true, &dev_scores, &test_scores, &routes));
    evaluation_seconds += SecondsSince(start);
  }
  summary = SummarizeRun(data_, state_, output_dir_, dev_scores, routes.soft,
                         output_dir_ + "/" + kBestCheckpoint + "/" + kRoutesImageFile);
  summary.seconds = SecondsSince(run_start);
  summary.evaluation_seconds = evaluation_seconds;
  absl::StrAppend(&summary.text, "time: ", absl::StrFormat("%.1f", summary.seconds),
                  " s, of which evaluation and prediction ",
                  absl::StrFormat("%.1f s (%.1f%%)", evaluation_seconds,
                                  100.0 * evaluation_seconds / summary.seconds),
                  "\n");
  summary.dev_scores = std::move(dev_scores);
  summary.test_scores = std::move(test_scores);
  return summary;
}

namespace {

// The caller's data, else the config's: the main process reads first (it may generate the
// gym), the others after it.
absl::StatusOr<ExperimentData> ReadRunData(const ExperimentConfig& config,
                                           DistributedContext& distributed,
                                           std::optional<ExperimentData> given) {
  if (given.has_value()) return *std::move(given);
  const bool main = distributed.is_main();
  absl::StatusOr<ExperimentData> data = absl::UnavailableError("not read yet");
  if (main) data = LoadExperimentData(config, /*may_write=*/true);
  TASKMOE_RETURN_IF_ERROR(distributed.Barrier());
  if (!main) data = LoadExperimentData(config, /*may_write=*/false);
  return data;
}

}  // namespace

absl::StatusOr<RunSummary> RunExperiment(const ExperimentConfig& config,
                                         const TrainerOptions& options, RunInputs inputs) {
  torch::set_num_threads(IntraOpThreads(config.training().threads()));
  TASKMOE_ASSIGN_OR_RETURN(const DistributedEnv env, DistributedEnvFromEnvironment());
  TASKMOE_ASSIGN_OR_RETURN(const at::Device device,
                           ChooseDevice(config.training().device(), env.local_rank));
  DistributedOptions distributed_options;
  distributed_options.device = device;
  TASKMOE_ASSIGN_OR_RETURN(std::unique_ptr<DistributedContext> distributed,
                           DistributedContext::Create(env, distributed_options));
  std::optional<DirectoryLock> output_lock;  // held until the run ends
  if (distributed->is_main()) {
    TASKMOE_ASSIGN_OR_RETURN(output_lock, StartRunOutputs(config));
  }
  TASKMOE_ASSIGN_OR_RETURN(ExperimentData data,
                           ReadRunData(config, *distributed, std::move(inputs.data)));
  torch::manual_seed(config.training().seed());
  TASKMOE_ASSIGN_OR_RETURN(MoeBart model, BuildModel(config, *data.tokenizer));
  LOG(INFO) << "model: " << model.shape().encoder_layers << "+" << model.shape().decoder_layers
            << " layers, " << model.shape().experts << " experts, d_model "
            << model.config().d_model << ", routing plugin " << config.routing().plugin()
            << ", " << data.train_tasks.size() << " train tasks, device " << device.str();
  Trainer trainer(config, options, std::move(data), std::move(distributed), device,
                  std::move(model));
  try {
    TASKMOE_RETURN_IF_ERROR(trainer.Setup(inputs.fresh_routing_state));
    return trainer.Run();
  } catch (const c10::Error& e) {
    // LibTorch reports numeric trouble (overflow, NaN conversions) by throwing.
    return absl::InternalError(absl::StrCat("LibTorch error: ", e.what_without_backtrace()));
  }
}

}  // namespace taskmoe
