#include "moe/train/trainer.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>

#include <torch/autograd.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "glog/logging.h"
#include "moe/base/atomic_directory.h"
#include "moe/base/file_io.h"
#include "moe/base/progress.h"
#include "moe/base/status_macros.h"
#include "moe/drawing/route_map.h"
#include "moe/embedding/task_embedding.h"
#include "moe/formats/npy.h"
#include "moe/formats/safetensors.h"
#include "moe/formats/task_table.h"
#include "moe/model/bart_weights.h"
#include "moe/model/moe_model.h"
#include "moe/model/optimization.h"
#include "moe/routing/routing.h"
#include "moe/train/checkpoint.h"
#include "moe/train/distributed.h"
#include "moe/train/evaluation.h"
#include "moe/train/experiment_config.h"
#include "moe/train/model_builder.h"
#include "moe/train/run_data.h"
#include "moe/train/run_report.h"
#include "moe/train/train_step.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

// Evaluation and checkpointing must not change what training draws next, so that a run that
// evaluates or saves at other moments (a resumed one) stays on the same random sequence.
class PreserveCpuRng {
 public:
  PreserveCpuRng() : state_(CpuRngState()) {}
  ~PreserveCpuRng() { SetCpuRngState(state_); }

 private:
  at::Tensor state_;
};

absl::StatusOr<at::Device> ChooseDevice(const std::string& name, int local_rank) {
  const bool cuda = torch::cuda::is_available();
  if (name == "cuda" && !cuda) {
    return absl::FailedPreconditionError(
        "config field training.device: cuda requested but LibTorch sees no CUDA device (a CPU "
        "build of LibTorch? see README, 'LibTorch location')");
  }
  if (name == "cuda" || (name == "auto" && cuda)) {
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
  }
  return at::Device(at::kCPU);
}

std::vector<std::pair<std::string, at::Tensor>> Named(
    const torch::OrderedDict<std::string, at::Tensor>& dict, bool trainable_only) {
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (const auto& item : dict) {
    if (!trainable_only || item.value().requires_grad()) named.emplace_back(item.key(), item.value());
  }
  return named;
}

std::string CsvHistory(const std::vector<EvalRecord>& history) {
  std::string csv = "steps,train_loss,dev_loss,dev_performance\n";
  for (const EvalRecord& r : history) {
    absl::StrAppend(&csv, r.step, ",", r.train_loss, ",", r.dev_loss, ",", r.dev_performance,
                    "\n");
  }
  return csv;
}

// Loads the routing state of the run's initial checkpoint into `plugin` when the plugin can
// continue it (CanLoadRoutingState); otherwise the plugin keeps its initial state, and the log
// says so.
absl::Status LoadInitialRoutingState(const ExperimentConfig& config, RoutingPlugin& plugin) {
  const std::string dir = config.model().checkpoint();
  const std::string path = dir + "/" + kRoutingStateFile;
  if (!fs::exists(path)) return absl::OkStatus();
  absl::StatusOr<ExperimentConfig> saved = ReadCheckpointExperiment(dir);
  if (!saved.ok()) return saved.status();
  if (!CanLoadRoutingState(saved->routing().plugin(), config.routing(), plugin)) {
    LOG(WARNING) << path << " was saved by routing plugin '" << saved->routing().plugin()
                 << "', which this run's routing cannot continue: it starts from its own "
                    "initial state instead";
    return absl::OkStatus();
  }
  absl::StatusOr<TensorMap> state = ReadSafetensors(path);
  if (!state.ok()) return state.status();
  absl::Status loaded = LoadRoutingState(*state, plugin);
  if (!loaded.ok()) return absl::Status(loaded.code(), absl::StrCat(path, ": ", loaded.message()));
  return absl::OkStatus();
}

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

  absl::Status Setup();
  absl::StatusOr<RunSummary> Run();

 private:
  bool is_main() const { return distributed_->is_main(); }

  // Table ids of task names (e.g. a dataset's tasks, indexed by its task ids).
  absl::StatusOr<at::Tensor> TableIds(const std::vector<std::string>& tasks) const;
  RouteWeights RoutesFor(const at::Tensor& table_ids);
  BatchRoutes DatasetRoutes(const at::Tensor& dataset_to_table);
  at::Tensor AllTaskRoutes();

  const Batch& NextBatch();
  // One optimiser step (train_step_), with the run's bookkeeping.
  absl::StatusOr<double> Step(int64_t* tokens);
  absl::Status Evaluate();
  absl::Status SaveCheckpoint(const std::string& name, bool with_trainer_state);
  absl::Status LoadCheckpointInto(const std::string& dir, bool with_trainer_state);
  absl::Status WriteRoutes(const at::Tensor& routes, const std::string& dir);
  absl::StatusOr<std::vector<TaskScore>> ScoreSplit(const SplitData& split,
                                                    const at::Tensor& dataset_to_table);
  absl::Status Predict(std::vector<TaskScore>* dev_scores, at::Tensor* best_routes);

  ExperimentConfig config_;
  TrainerOptions options_;
  ExperimentData data_;
  std::unique_ptr<DistributedContext> distributed_;
  at::Device device_;
  MoeBart model_;
  std::string output_dir_;

  std::shared_ptr<RoutingPlugin> plugin_;
  std::vector<std::string> table_names_;
  std::string table_source_;  // where the task-vector table came from, for messages
  at::Tensor task_vectors_;  // [tasks, dim]; a leaf that requires grad when trainable
  at::Tensor train_to_table_;
  at::Tensor dev_to_table_;
  at::Tensor train_task_table_ids_;  // table ids of data_.train_tasks, in that order
  GroupedAdamW optimizer_;
  std::unique_ptr<TrainStep> train_step_;
  TrainerState state_;

  std::vector<Batch> epoch_batches_;
  int64_t loaded_epoch_ = -1;
  double window_loss_ = 0;
  int64_t window_tokens_ = 0;
  double last_lr_ = 0;  // the model's learning rate in the latest step
};

absl::StatusOr<at::Tensor> Trainer::TableIds(const std::vector<std::string>& tasks) const {
  std::vector<int64_t> ids;
  for (const std::string& task : tasks) {
    auto it = std::find(table_names_.begin(), table_names_.end(), task);
    if (it == table_names_.end()) {
      return absl::NotFoundError(absl::StrCat("task ", task, " has no task vector in the table (",
                                              table_source_, ")"));
    }
    ids.push_back(it - table_names_.begin());
  }
  return at::tensor(ids, at::kLong).to(device_);
}

RouteWeights Trainer::RoutesFor(const at::Tensor& table_ids) {
  RoutingInput input;
  input.task_ids = table_ids;
  input.task_vectors = task_vectors_.index_select(0, table_ids);
  input.step = state_.step;
  return plugin_->Route(input);
}

BatchRoutes Trainer::DatasetRoutes(const at::Tensor& dataset_to_table) {
  return [this, dataset_to_table](const at::Tensor& task_ids) {
    return RoutesFor(dataset_to_table.index_select(0, task_ids));
  };
}

at::Tensor Trainer::AllTaskRoutes() {
  PreserveCpuRng preserve;
  torch::NoGradGuard no_grad;
  const bool training = plugin_->is_training();
  plugin_->eval();
  at::Tensor routes = PerTaskLayout(RoutesFor(train_task_table_ids_)).to(at::kCPU);
  plugin_->train(training);
  return routes;
}

absl::Status Trainer::Setup() {
  const ModelShape& shape = model_.shape();
  // Task vectors: a table from disk, or random ones for the train tasks.
  const TaskVectorConfig& tv = config_.task_vectors();
  at::Tensor vectors;
  if (tv.has_dir()) {
    table_source_ = tv.dir() + "/" + TaskTable::kNamesFile;
    absl::StatusOr<TaskTable> table = TaskTable::Load(tv.dir());
    if (!table.ok()) return table.status();
    table_names_ = table->names();
    vectors = table->vectors();
  } else if (tv.has_method()) {
    table_source_ = "task_vectors.method " + tv.method().name();
    TaskEmbeddingModel embedding_model{model_.model(), /*routed=*/true, model_.shape()};
    TaskEmbeddingInput input;
    input.model = &embedding_model;
    input.data = &data_.train.tokens;
    input.pad_id = model_.config().pad_token_id;
    input.decoder_start_token_id = model_.config().decoder_start_token_id;
    input.device = device_;
    TaskEmbeddingRequest request;
    request.method = tv.method().name();
    request.params = tv.method().params();
    request.context.dim = tv.dim();
    request.context.seed = static_cast<uint64_t>(config_.training().seed());
    request.pca_dim = tv.method().pca_dim();
    absl::StatusOr<TaskTable> table = ComputeTaskEmbeddings(request, input);
    if (!table.ok()) {
      return absl::Status(table.status().code(), absl::StrCat("config field task_vectors.method: ",
                                                              table.status().message()));
    }
    table_names_ = table->names();
    vectors = table->vectors();
  } else if (config_.model().has_checkpoint() && !tv.has_random()) {
    table_source_ = config_.model().checkpoint() + "/" + TaskTable::kNamesFile;
    absl::StatusOr<TaskTable> table = TaskTable::Load(config_.model().checkpoint());
    if (!table.ok()) return table.status();
    table_names_ = table->names();
    vectors = table->vectors();
  } else {
    table_source_ = "random task vectors of the train tasks";
    table_names_ = data_.train_tasks;
    vectors = at::randn({static_cast<int64_t>(table_names_.size()), tv.dim()});
  }
  task_vectors_ = vectors.to(device_, at::kFloat).clone().set_requires_grad(tv.trainable());
  absl::StatusOr<at::Tensor> train_ids = TableIds(data_.train.tokens.tasks);
  if (!train_ids.ok()) return train_ids.status();
  train_to_table_ = *train_ids;
  absl::StatusOr<at::Tensor> dev_ids = TableIds(data_.dev.tokens.tasks);
  if (!dev_ids.ok()) return dev_ids.status();
  dev_to_table_ = *dev_ids;
  absl::StatusOr<at::Tensor> task_ids = TableIds(data_.train_tasks);
  if (!task_ids.ok()) return task_ids.status();
  train_task_table_ids_ = *task_ids;

  RoutingContext context;
  context.shape = shape;
  context.task_vector_dim = task_vectors_.size(1);
  context.num_tasks = task_vectors_.size(0);
  absl::StatusOr<std::shared_ptr<RoutingPlugin>> plugin =
      CreateRoutingPlugin(config_.routing(), context);
  if (!plugin.ok()) {
    return absl::Status(plugin.status().code(), absl::StrCat("config field routing: ",
                                                             plugin.status().message()));
  }
  plugin_ = *plugin;
  if (config_.model().has_checkpoint()) {
    TASKMOE_RETURN_IF_ERROR(LoadInitialRoutingState(config_, *plugin_));
  }
  if (config_.optimizer().freeze_router()) {
    for (at::Tensor p : plugin_->parameters()) p.set_requires_grad(false);
  }
  model_.model()->to(device_);
  plugin_->to(device_);
  model_.model()->train();
  plugin_->train();

  TrainableParameters trainable;
  trainable.model = Named(model_.model()->named_parameters(), /*trainable_only=*/true);
  trainable.router = Named(plugin_->named_parameters(), /*trainable_only=*/true);
  if (tv.trainable()) trainable.task_vectors.push_back(task_vectors_);
  OptimizerOptions o;
  o.lr = config_.optimizer().lr();
  o.router_lr = config_.optimizer().router_lr();
  o.task_vector_lr = config_.optimizer().task_vector_lr();
  o.weight_decay = config_.optimizer().weight_decay();
  o.adam_epsilon = config_.optimizer().adam_epsilon();
  o.beta1 = config_.optimizer().adam_beta1();
  o.beta2 = config_.optimizer().adam_beta2();
  optimizer_ = MakeGroupedAdamW(trainable, o);
  std::vector<at::Tensor> router_and_task_parameters;
  for (const auto& [name, p] : trainable.router) router_and_task_parameters.push_back(p);
  for (const at::Tensor& p : trainable.task_vectors) router_and_task_parameters.push_back(p);
  const TrainingConfig& t = config_.training();
  TrainStepOptions step;
  step.gradient_accumulation_steps = t.gradient_accumulation_steps();
  step.label_smoothing = t.label_smoothing();
  step.expert_regularization = t.expert_regularization();
  step.max_grad_norm = config_.optimizer().max_grad_norm();
  step.alternate_every = t.alternate_every();
  step.warmup_steps = static_cast<int64_t>(t.total_steps() * t.warmup_ratio());
  step.total_steps = t.total_steps();
  step.pad_id = model_.config().pad_token_id;
  train_step_ = std::make_unique<TrainStep>(model_, optimizer_,
                                            std::move(router_and_task_parameters),
                                            distributed_.get(), step);

  // Every replica starts from rank 0's values.
  std::vector<at::Tensor> synced = optimizer_.Parameters();
  for (const auto& item : plugin_->named_buffers()) synced.push_back(item.value());
  {
    torch::NoGradGuard no_grad;
    TASKMOE_RETURN_IF_ERROR(distributed_->Broadcast(synced));
  }
  if (options_.resume) {
    const std::string last = output_dir_ + "/" + kLastCheckpoint;
    if (!fs::exists(last + "/" + kTrainerStateFile)) {
      return absl::NotFoundError(absl::StrCat("--resume: no checkpoint with trainer state at ",
                                              last));
    }
    TASKMOE_RETURN_IF_ERROR(LoadCheckpointInto(last, /*with_trainer_state=*/true));
    LOG(INFO) << "resumed from " << last << " at step " << state_.step;
  }
  return absl::OkStatus();
}

const Batch& Trainer::NextBatch() {
  const int64_t world = distributed_->world_size();
  for (;;) {
    int64_t& epoch = state_.data_position["epoch"];
    int64_t& position = state_.data_position["batch"];
    if (loaded_epoch_ != epoch) {
      BatchOptions options;
      options.batch_size = config_.training().train_batch_size();
      options.grouping = config_.data().batching() == DataConfig::TASK_GROUPED
                             ? BatchGrouping::kTaskGrouped
                             : BatchGrouping::kMixed;
      options.seed = static_cast<uint64_t>(config_.training().seed());
      options.pad_id = data_.tokenizer->pad_id();
      epoch_batches_ = MakeEpochBatches(data_.train.tokens, options, epoch);
      loaded_epoch_ = epoch;
    }
    // Every rank takes its own batch of each group of `world` consecutive batches.
    const int64_t usable = static_cast<int64_t>(epoch_batches_.size()) / world * world;
    if (position + world <= usable) {
      const Batch& batch = epoch_batches_[position + distributed_->rank()];
      position += world;
      return batch;
    }
    CHECK_GT(usable, 0) << "fewer training batches than processes";
    ++epoch;
    position = 0;
  }
}

absl::StatusOr<double> Trainer::Step(int64_t* tokens) {
  const int64_t decoder_start = model_.config().decoder_start_token_id;
  absl::StatusOr<StepResult> result = train_step_->Run(
      state_.step, [&] { return ToTensors(NextBatch(), decoder_start, device_); },
      [&](const at::Tensor& task_ids) {
        return RoutesFor(train_to_table_.index_select(0, task_ids));
      });
  if (!result.ok()) return result.status();
  ++state_.step;
  last_lr_ = config_.optimizer().lr() * result->lr_factor;
  window_loss_ += result->loss_sum;
  window_tokens_ += result->tokens;
  *tokens = result->tokens;
  return result->tokens > 0 ? result->loss_sum / result->tokens : 0.0;
}

absl::StatusOr<std::vector<TaskScore>> Trainer::ScoreSplit(const SplitData& split,
                                                           const at::Tensor& dataset_to_table) {
  const EvaluationConfig& e = config_.evaluation();
  GenerationOptions generation;
  generation.max_length = config_.data().max_output_length();
  generation.num_beams = e.num_beams();
  generation.early_stopping = e.early_stopping();
  if (e.generation_start() == EvaluationConfig::BOS) {
    generation.decoder_start_token_id = model_.config().bos_token_id;
  }
  return ScoreGenerations(model_, split.tokens, split.references, *data_.tokenizer,
                          data_.metrics, DatasetRoutes(dataset_to_table), generation,
                          e.predict_batch_size(), device_);
}

absl::Status Trainer::WriteRoutes(const at::Tensor& routes, const std::string& dir) {
  TASKMOE_RETURN_IF_ERROR(WriteNpy(dir + "/" + kRoutesFile, routes));
  TASKMOE_RETURN_IF_ERROR(TaskTable::WriteNames(data_.train_tasks, dir + "/" + kRouteTasksFile));
  absl::StatusOr<RouteTable> table = RouteTableFromTensor(routes);
  if (!table.ok()) return table.status();
  const std::vector<RouteCategory> categories =
      data_.ontology.has_value() ? RouteCategoriesOf(*data_.ontology) : std::vector<RouteCategory>();
  RouteMapOptions options;
  options.title = absl::StrCat("routes at step ", state_.step);
  return WriteRouteMapPng(
      *table, data_.train_tasks, categories,
      EncoderDecoderLayerLabels(model_.shape().encoder_layers, model_.shape().decoder_layers),
      dir + "/" + kRoutesImageFile, options);
}

absl::Status Trainer::Evaluate() {
  PreserveCpuRng preserve;
  torch::NoGradGuard no_grad;
  model_.model()->eval();
  plugin_->eval();
  const TrainingConfig& t = config_.training();
  absl::StatusOr<LossTotals> dev_loss =
      DatasetLoss(model_, data_.dev.tokens, DatasetRoutes(dev_to_table_),
                  config_.evaluation().predict_batch_size(), t.label_smoothing(), device_);
  if (!dev_loss.ok()) return dev_loss.status();
  absl::StatusOr<std::vector<TaskScore>> scores = ScoreSplit(data_.dev, dev_to_table_);
  if (!scores.ok()) return scores.status();
  const double performance = MeanPerformance(*scores);
  const std::string eval_dir = absl::StrCat(output_dir_, "/evals/step_", state_.step);
  fs::create_directories(eval_dir);
  TASKMOE_RETURN_IF_ERROR(WriteScoresCsv(*scores, eval_dir + "/dev_results.csv"));
  TASKMOE_RETURN_IF_ERROR(WriteRoutes(AllTaskRoutes(), eval_dir));
  EvalRecord record;
  record.step = state_.step;
  record.train_loss = window_tokens_ > 0 ? window_loss_ / window_tokens_ : 0.0;
  record.dev_loss = dev_loss->PerToken();
  record.dev_performance = performance;
  state_.history.push_back(record);
  window_loss_ = 0;
  window_tokens_ = 0;
  TASKMOE_RETURN_IF_ERROR(
      WriteFileAtomically(output_dir_ + "/losses.csv", CsvHistory(state_.history)));
  LOG(INFO) << absl::StrFormat(
      "step %d: train loss %.4f, dev loss %.4f, dev performance %.4f (%s)", state_.step,
      record.train_loss, record.dev_loss, performance, eval_dir);
  model_.model()->train();
  plugin_->train();
  if (performance > state_.best_dev_performance) {
    LOG(INFO) << absl::StrFormat("new best dev performance %.4f -> %.4f at step %d",
                                 state_.best_dev_performance, performance, state_.step);
    state_.best_dev_performance = performance;
    state_.best_step = state_.step;
    TASKMOE_RETURN_IF_ERROR(SaveCheckpoint(kBestCheckpoint, /*with_trainer_state=*/false));
  }
  return absl::OkStatus();
}

absl::Status Trainer::SaveCheckpoint(const std::string& name, bool with_trainer_state) {
  const at::Tensor rng_state = CpuRngState();
  PreserveCpuRng preserve;
  absl::StatusOr<AtomicDirectory> dir = AtomicDirectory::Begin(output_dir_ + "/" + name);
  if (!dir.ok()) return dir.status();
  const std::string staging = dir->staging();
  TensorMap weights;
  for (auto& [key, tensor] : ModuleTensors(*model_.model())) weights[key] = tensor.detach();
  TASKMOE_RETURN_IF_ERROR(WriteSafetensors(staging + "/" + kModelWeightsFile, weights));
  TASKMOE_RETURN_IF_ERROR(
      WriteFileAtomically(staging + "/" + kModelConfigFile, BartConfigJson(model_.config())));
  TASKMOE_RETURN_IF_ERROR(
      WriteFileAtomically(staging + "/" + kExperimentFile, ExperimentConfigToText(config_)));
  TensorMap routing_state;
  for (auto& [key, tensor] : RoutingState(*plugin_)) routing_state[key] = tensor.detach();
  TASKMOE_RETURN_IF_ERROR(WriteSafetensors(staging + "/" + kRoutingStateFile, routing_state));
  absl::StatusOr<TaskTable> table =
      TaskTable::Create(table_names_, task_vectors_.detach().to(at::kCPU));
  if (!table.ok()) return table.status();
  TASKMOE_RETURN_IF_ERROR(table->Save(staging));
  TASKMOE_RETURN_IF_ERROR(WriteRoutes(AllTaskRoutes(), staging));
  if (with_trainer_state) {
    TASKMOE_RETURN_IF_ERROR(SaveOptimizer(*optimizer_.optimizer, staging + "/" + kOptimizerFile));
    TASKMOE_RETURN_IF_ERROR(
        WriteFileAtomically(staging + "/" + kTrainerStateFile, TrainerStateToJson(state_)));
    TASKMOE_RETURN_IF_ERROR(
        WriteSafetensors(staging + "/" + kRngStateFile, {{"cpu", rng_state}}));
  }
  if (options_.before_checkpoint_commit) {
    TASKMOE_RETURN_IF_ERROR(options_.before_checkpoint_commit(staging));
  }
  return dir->Commit();
}

absl::Status Trainer::LoadCheckpointInto(const std::string& dir, bool with_trainer_state) {
  const std::string weights_path = dir + "/" + kModelWeightsFile;
  absl::StatusOr<TensorMap> weights = ReadSafetensors(weights_path);
  if (!weights.ok()) return weights.status();
  TASKMOE_RETURN_IF_ERROR(LoadIntoModule(*weights, weights_path, *model_.model()));
  const std::string routing_path = dir + "/" + kRoutingStateFile;
  absl::StatusOr<TensorMap> routing = ReadSafetensors(routing_path);
  if (!routing.ok()) return routing.status();
  TASKMOE_RETURN_IF_ERROR(LoadRoutingState(*routing, *plugin_));
  absl::StatusOr<TaskTable> table = TaskTable::Load(dir);
  if (!table.ok()) return table.status();
  if (table->names() != table_names_ || !table->vectors().sizes().equals(task_vectors_.sizes())) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir, "/", TaskTable::kNamesFile, ": the checkpoint's tasks differ from this run's"));
  }
  {
    torch::NoGradGuard no_grad;
    task_vectors_.copy_(table->vectors());
  }
  if (!with_trainer_state) return absl::OkStatus();
  TASKMOE_RETURN_IF_ERROR(LoadOptimizer(dir + "/" + kOptimizerFile, *optimizer_.optimizer));
  absl::StatusOr<std::string> state_text = ReadFileBytes(dir + "/" + kTrainerStateFile);
  if (!state_text.ok()) return state_text.status();
  absl::StatusOr<TrainerState> state =
      TrainerStateFromJson(*state_text, dir + "/" + kTrainerStateFile);
  if (!state.ok()) return state.status();
  state_ = *std::move(state);
  const std::string rng_path = dir + "/" + kRngStateFile;
  absl::StatusOr<TensorMap> rng = ReadSafetensors(rng_path);
  if (!rng.ok()) return rng.status();
  if (!rng->count("cpu")) return absl::InvalidArgumentError(rng_path + ": no tensor 'cpu'");
  SetCpuRngState(rng->at("cpu"));
  return absl::OkStatus();
}

absl::Status Trainer::Predict(std::vector<TaskScore>* dev_scores, at::Tensor* best_routes) {
  const std::string best = output_dir_ + "/" + kBestCheckpoint;
  if (fs::exists(best)) {
    TASKMOE_RETURN_IF_ERROR(LoadCheckpointInto(best, /*with_trainer_state=*/false));
    LOG(INFO) << "predicting with the best checkpoint (step " << state_.best_step << ")";
  }
  torch::NoGradGuard no_grad;
  model_.model()->eval();
  plugin_->eval();
  *best_routes = AllTaskRoutes();
  const std::string predict_dir = output_dir_ + "/predict";
  fs::create_directories(predict_dir);
  for (const std::string split : {"dev", "test"}) {
    absl::StatusOr<SplitData> data = LoadEvaluationSplit(data_, data_.train_tasks, split, 0);
    if (!data.ok()) return data.status();
    absl::StatusOr<at::Tensor> to_table = TableIds(data->tokens.tasks);
    if (!to_table.ok()) return to_table.status();
    absl::StatusOr<std::vector<TaskScore>> scores = ScoreSplit(*data, *to_table);
    if (!scores.ok()) return scores.status();
    TASKMOE_RETURN_IF_ERROR(WriteScoresCsv(
        *scores, absl::StrCat(predict_dir, "/eval-", split, "-performance.csv")));
    fs::create_directories(predict_dir + "/" + split);
    for (const TaskScore& score : *scores) {
      std::string lines;
      for (const std::string& p : score.predictions) absl::StrAppend(&lines, p, "\n");
      TASKMOE_RETURN_IF_ERROR(WriteFileAtomically(
          absl::StrCat(predict_dir, "/", split, "/", score.task, ".txt"), lines));
    }
    LOG(INFO) << absl::StrFormat("%s average performance %.4f", split, MeanPerformance(*scores));
    if (std::string(split) == "dev") *dev_scores = *std::move(scores);
  }
  return absl::OkStatus();
}

absl::StatusOr<RunSummary> Trainer::Run() {
  const TrainingConfig& t = config_.training();
  const EvaluationConfig& e = config_.evaluation();
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
        TASKMOE_RETURN_IF_ERROR(Evaluate());
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
  at::Tensor routes = AllTaskRoutes();
  if (e.do_predict()) TASKMOE_RETURN_IF_ERROR(Predict(&dev_scores, &routes));
  return SummarizeRun(data_, state_, output_dir_, dev_scores, routes);
}

}  // namespace

absl::StatusOr<RunSummary> RunExperiment(const ExperimentConfig& config,
                                         const TrainerOptions& options) {
  const int threads = config.training().threads() > 0
                          ? config.training().threads()
                          : static_cast<int>(std::thread::hardware_concurrency());
  torch::set_num_threads(std::max(1, threads));
  absl::StatusOr<DistributedEnv> env = DistributedEnvFromEnvironment();
  if (!env.ok()) return env.status();
  absl::StatusOr<at::Device> device = ChooseDevice(config.training().device(), env->local_rank);
  if (!device.ok()) return device.status();
  DistributedOptions distributed_options;
  distributed_options.device = *device;
  absl::StatusOr<std::unique_ptr<DistributedContext>> distributed =
      DistributedContext::Create(*env, distributed_options);
  if (!distributed.ok()) return distributed.status();
  const bool main = (*distributed)->is_main();
  if (main) {
    std::error_code error;
    fs::create_directories(config.output_dir(), error);
    if (error) {
      return absl::InternalError(absl::StrCat("cannot create output_dir ", config.output_dir(),
                                              ": ", error.message()));
    }
    google::SetLogDestination(google::GLOG_INFO, (config.output_dir() + "/train.log.").c_str());
    TASKMOE_RETURN_IF_ERROR(WriteFileAtomically(config.output_dir() + "/" + kExperimentFile,
                                          ExperimentConfigToText(config)));
  }
  // The main process reads first (it may generate the gym); the others read after it.
  absl::StatusOr<ExperimentData> data = absl::UnavailableError("not read yet");
  if (main) data = LoadExperimentData(config, /*may_write=*/true);
  TASKMOE_RETURN_IF_ERROR((*distributed)->Barrier());
  if (!main) data = LoadExperimentData(config, /*may_write=*/false);
  if (!data.ok()) return data.status();
  torch::manual_seed(config.training().seed());
  absl::StatusOr<MoeBart> model = BuildModel(config, *data->tokenizer);
  if (!model.ok()) return model.status();
  LOG(INFO) << "model: " << model->shape().encoder_layers << "+" << model->shape().decoder_layers
            << " layers, " << model->shape().experts << " experts, d_model "
            << model->config().d_model << ", routing plugin " << config.routing().plugin()
            << ", " << data->train_tasks.size() << " train tasks, device " << device->str();
  Trainer trainer(config, options, *std::move(data), *std::move(distributed), *device,
                  *std::move(model));
  try {
    TASKMOE_RETURN_IF_ERROR(trainer.Setup());
    return trainer.Run();
  } catch (const c10::Error& e) {
    // LibTorch reports numeric trouble (overflow, NaN conversions) by throwing.
    return absl::InternalError(absl::StrCat("LibTorch error: ", e.what_without_backtrace()));
  }
}

}  // namespace taskmoe
