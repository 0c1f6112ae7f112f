#ifndef TASKMOE_MOE_TRAIN_MODEL_BUILDER_H_
#define TASKMOE_MOE_TRAIN_MODEL_BUILDER_H_

#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "data/tokenizer.h"
#include "moe/embedding/task_embedding.h"
#include "moe/formats/task_table.h"
#include "moe/model/moe_model.h"
#include "moe/routing/routing.h"
#include "moe/train/experiment.pb.h"

namespace taskmoe {

// The routed model an experiment's `model` section describes: from a Hugging Face BART
// directory (experts = copies of each dense layer + init_eps noise), from a TaskMoE checkpoint
// (its config.json + model.safetensors, with the experts and vanilla layers its experiment.pbtxt
// names), or randomly initialised like Hugging Face BART (a dense
// random model copied into the experts). Dropout overrides applied. Train mode is the caller's.
absl::StatusOr<MoeBart> BuildModel(const ExperimentConfig& experiment,
                                   const BartTokenizer& tokenizer);

// The MoE structure (experts, vanilla layers, init_eps) of a model config.
MoeOptions ToMoeOptions(const ModelConfig& model);

// A TaskMoE checkpoint directory read back whole: its experiment config, the model, the task
// table, its routing plugin with the saved state, and the saved per-task routes with the task of
// each row (route_tasks.json; checked against the routes' shape and the task table).
struct Checkpoint {
  ExperimentConfig experiment;
  std::unique_ptr<MoeBart> model;
  std::unique_ptr<TaskTable> tasks;
  std::shared_ptr<RoutingPlugin> plugin;
  at::Tensor routes;  // route.npy, [tasks of the run's train split, layers, experts]
  std::vector<std::string> route_tasks;  // the task of each row of `routes`
};
absl::StatusOr<Checkpoint> LoadCheckpoint(const std::string& dir);

// The model of a TaskMoE checkpoint directory, as task-embedding methods use it (average routes).
absl::StatusOr<TaskEmbeddingModel> LoadCheckpointEmbeddingModel(const std::string& checkpoint_dir);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_TRAIN_MODEL_BUILDER_H_
