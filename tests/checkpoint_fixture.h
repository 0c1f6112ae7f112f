#ifndef TASKMOE_TESTS_CHECKPOINT_FIXTURE_H_
#define TASKMOE_TESTS_CHECKPOINT_FIXTURE_H_

// A TaskMoE checkpoint directory written file by file in the trainer's layout (moe/checkpoint.h),
// from the bart_tiny MoE with clearly different experts, so tools that read checkpoints can be
// tested without running training.

#include <ATen/ATen.h>
#include <glog/logging.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "moe/base/file_io.h"
#include "moe/formats/npy.h"
#include "moe/formats/safetensors.h"
#include "moe/formats/task_table.h"
#include "moe/model/moe_model.h"
#include "moe/routing/routing.h"
#include "moe/train/checkpoint.h"
#include "moe/train/experiment_config.h"
#include "moe/train/model_builder.h"
#include "tests/bart_fixture.h"

namespace taskmoe::testing {

inline std::string TestTempDir(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / name).string();
}

// The experiment text of a fixture checkpoint: bart_tiny with `experts` experts, encoder layer 1
// vanilla, the given routing section and further model fields, tokenizer files from the
// bart_tokenizer fixture.
inline std::string FixtureExperimentText(const std::string& routing, int experts,
                                         const std::string& model_fields = "") {
  return "model { hf_dir: \"" + BartTinyDir() + "\" experts: " + std::to_string(experts) +
         " encoder_vanilla_layers: 1 init_eps: 0.01 " + model_fields + " }\n"
         "tokenizer { vocab: \"" + SharedPath("fixtures/bart_tokenizer/vocab.json") +
         "\" merges: \"" + SharedPath("fixtures/bart_tokenizer/merges.txt") + "\" }\n" +
         routing + "\ntask_vectors { random: true dim: 8 }\n";
}

// Writes the checkpoint (tasks "alpha", "beta", "gamma") into `dir` and returns its model.
inline MoeBart WriteFixtureCheckpoint(const std::string& dir, const std::string& routing,
                                      int experts = 3, const std::string& model_fields = "") {
  torch::manual_seed(5);
  absl::StatusOr<ExperimentConfig> experiment =
      ParseExperimentConfig(FixtureExperimentText(routing, experts, model_fields), "fixture");
  CHECK(experiment.ok()) << experiment.status();
  absl::StatusOr<MoeBart> model =
      MoeBart::FromDenseDirectory(BartTinyDir(), ToMoeOptions(experiment->model()));
  CHECK(model.ok()) << model.status();
  absl::StatusOr<TaskTable> tasks =
      TaskTable::Create({"gamma", "alpha", "beta"}, at::randn({3, 8}));
  CHECK(tasks.ok()) << tasks.status();
  RoutingContext context;
  context.shape = model->shape();
  context.task_vector_dim = tasks->dim();
  context.num_tasks = tasks->size();
  absl::StatusOr<std::shared_ptr<RoutingPlugin>> plugin =
      CreateRoutingPlugin(experiment->routing(), context);
  CHECK(plugin.ok()) << plugin.status();
  (*plugin)->eval();

  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  TensorMap weights;
  for (auto& [key, tensor] : ModuleTensors(*model->model())) weights[key] = tensor.detach();
  CHECK(WriteSafetensors(dir + "/" + kModelWeightsFile, weights).ok());
  CHECK(WriteFileAtomically(dir + "/" + kModelConfigFile, BartConfigJson(model->config())).ok());
  CHECK(WriteFileAtomically(dir + "/" + kExperimentFile, ExperimentConfigToText(*experiment)).ok());
  TensorMap state;
  for (auto& [key, tensor] : RoutingState(**plugin)) state[key] = tensor.detach();
  CHECK(WriteSafetensors(dir + "/" + kRoutingStateFile, state).ok());
  CHECK(tasks->Save(dir).ok());
  // routes.npy rows: the run's train tasks, sorted (here all of the table's tasks).
  const at::Tensor by_id = TaskRoutes(**plugin, tasks->vectors(), /*step=*/0);
  const at::Tensor sorted_rows = at::tensor({*tasks->Id("alpha"), *tasks->Id("beta"),
                                             *tasks->Id("gamma")}, at::kLong);
  CHECK(WriteNpy(dir + "/" + kRoutesFile, by_id.index_select(0, sorted_rows)).ok());
  CHECK(TaskTable::WriteNames({"alpha", "beta", "gamma"}, dir + "/" + kRouteTasksFile).ok());
  return *std::move(model);
}

}  // namespace taskmoe::testing

#endif  // TASKMOE_TESTS_CHECKPOINT_FIXTURE_H_
