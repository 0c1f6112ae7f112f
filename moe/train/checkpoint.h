#ifndef TASKMOE_MOE_TRAIN_CHECKPOINT_H_
#define TASKMOE_MOE_TRAIN_CHECKPOINT_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moe/formats/bart_config.h"
#include "moe/formats/safetensors.h"
#include "moe/formats/task_table.h"
#include "moe/routing/routing.h"
#include "moe/train/experiment.pb.h"

namespace taskmoe {

// The checkpoints a run keeps in its output directory: the best by dev performance, and the
// latest (with the trainer state, for --resume).
inline constexpr char kBestCheckpoint[] = "best";
inline constexpr char kLastCheckpoint[] = "last";

// File names inside a TaskMoE checkpoint directory (DESIGN.md "File formats").
inline constexpr char kModelWeightsFile[] = "model.safetensors";
inline constexpr char kModelConfigFile[] = "config.json";
inline constexpr char kExperimentFile[] = "experiment.pbtxt";
inline constexpr char kRoutingStateFile[] = "routing_state.safetensors";
// The route views of the run's train tasks (moe/routing/routing.h RouteViews), named as the
// original names them: route.npy = softmax(logits / tau now), route_t1.npy = softmax(logits),
// route_argmax.npy = one-hot argmax; each with its heatmap.
inline constexpr char kRoutesFile[] = "route.npy";
inline constexpr char kRoutesImageFile[] = "route.png";
inline constexpr char kRoutesT1File[] = "route_t1.npy";
inline constexpr char kRoutesT1ImageFile[] = "route_t1.png";
inline constexpr char kRoutesArgmaxFile[] = "route_argmax.npy";
inline constexpr char kRoutesArgmaxImageFile[] = "route_argmax.png";
// The task of each row of the route files (the run's train tasks), in id2task.json's format.
inline constexpr char kRouteTasksFile[] = "route_tasks.json";
inline constexpr char kOptimizerFile[] = "optimizer.pt";
inline constexpr char kTrainerStateFile[] = "trainer_state.json";
inline constexpr char kRngStateFile[] = "rng_state.safetensors";

// Whether `dir` is a TaskMoE checkpoint (it holds experiment.pbtxt), e.g. not a Hugging Face
// BART directory.
bool IsTaskMoeCheckpoint(const std::string& dir);

// The experiment config a checkpoint directory was trained with (its experiment.pbtxt).
absl::StatusOr<ExperimentConfig> ReadCheckpointExperiment(const std::string& dir);

// One row of losses.csv: an evaluation during training.
struct EvalRecord {
  int64_t step = 0;
  double train_loss = 0;  // per target token since the previous evaluation
  double dev_loss = 0;    // per target token
  double dev_performance = 0;
};

// What a resumed run needs beyond the weights: progress, best score so far, evaluation history
// and the position in the data stream.
struct TrainerState {
  int64_t step = 0;  // optimiser steps completed
  double best_dev_performance = -1.0;
  int64_t best_step = 0;
  std::vector<EvalRecord> history;
  // Opaque counters of the data stream (epoch, position, ...), restored as saved.
  std::map<std::string, int64_t> data_position;
};

std::string TrainerStateToJson(const TrainerState& state);
absl::StatusOr<TrainerState> TrainerStateFromJson(const std::string& json_text,
                                                  const std::string& source_name);

// The step whose routes a checkpoint's routing plugin should reproduce: the saved trainer step
// of a "last" checkpoint (trainer_state.json), else the end of training (a "best" checkpoint
// keeps no step).
absl::StatusOr<int64_t> CheckpointStep(const std::string& dir, const ExperimentConfig& experiment);

// Parameters and buffers of `module` by their module path.
TensorMap ModuleTensors(const torch::nn::Module& module);

// The default CPU generator's state (drives dropout, Gumbel noise, random init), so a resumed
// run draws the same numbers as an uninterrupted one.
at::Tensor CpuRngState();
void SetCpuRngState(const at::Tensor& state);

// Restores the CPU generator's state when it goes out of scope: evaluation and checkpointing
// must not change what training draws next, so that a run that evaluates or saves at other
// moments (a resumed one) stays on the same random sequence.
class PreserveCpuRng {
 public:
  PreserveCpuRng() : state_(CpuRngState()) {}
  ~PreserveCpuRng() { SetCpuRngState(state_); }
  PreserveCpuRng(const PreserveCpuRng&) = delete;
  PreserveCpuRng& operator=(const PreserveCpuRng&) = delete;

 private:
  at::Tensor state_;
};

absl::Status SaveOptimizer(torch::optim::Optimizer& optimizer, const std::string& path);
absl::Status LoadOptimizer(const std::string& path, torch::optim::Optimizer& optimizer);

// A checkpoint has three parts; each has a writer and a reader here, used by every module that
// writes or reads checkpoints (the trainer, two-stage building, LoadCheckpoint, BuildModel).
// Writers write into an existing (staging) directory, each file through a temporary file.

// The model: model.safetensors, config.json and experiment.pbtxt (which names the MoE structure).
absl::Status WriteCheckpointModel(const std::string& dir, const torch::nn::Module& model,
                                  const BartConfig& config, const ExperimentConfig& experiment);
// model.safetensors into `model`: every tensor present with the module's shape.
absl::Status ReadCheckpointWeights(const std::string& dir, torch::nn::Module& model);

// The routing: routing_state.safetensors and the task-vector table (id2task.json, task_vecs.npy).
absl::Status WriteCheckpointRouting(const std::string& dir, const RoutingPlugin& plugin,
                                    const TaskTable& tasks);
// routing_state.safetensors into `plugin` (see LoadRoutingState).
absl::Status ReadCheckpointRoutingState(const std::string& dir, RoutingPlugin& plugin);

// The routing state of a run's initial checkpoint (model.checkpoint) into `plugin` when the
// plugin can continue it (CanLoadRoutingState). Otherwise, or when `fresh`, the plugin keeps its
// initial state and the log says so; fixed routes (routing.fixed_routes_npy) have no state.
absl::Status ReadInitialRoutingState(const ExperimentConfig& config, bool fresh,
                                     RoutingPlugin& plugin);

// The trainer state a resumed run needs: optimizer.pt, trainer_state.json and
// rng_state.safetensors (`rng_state`: CpuRngState() before the checkpoint drew anything).
absl::Status WriteCheckpointTrainer(const std::string& dir, torch::optim::Optimizer& optimizer,
                                    const TrainerState& state, const at::Tensor& rng_state);
// Restores the optimiser moments and the CPU generator; returns the trainer state.
absl::StatusOr<TrainerState> ReadCheckpointTrainer(const std::string& dir,
                                                   torch::optim::Optimizer& optimizer);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_TRAIN_CHECKPOINT_H_
