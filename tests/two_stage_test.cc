// build_checkpoint's library and the stage-two config: experts re-initialised from the dense
// model, router and task vectors kept, errors that write nothing, and a stage-two run on a tiny
// gym that leaves the router and the task vectors untouched.

#include "moe/workflow/two_stage.h"

#include <ATen/ATen.h>
#include <glog/logging.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "data/gym/gym_writer.h"
#include "moe/base/file_io.h"
#include "moe/formats/safetensors.h"
#include "moe/routing/routing.h"
#include "moe/train/checkpoint.h"
#include "moe/train/experiment_config.h"
#include "moe/train/model_builder.h"
#include "moe/train/trainer.h"
#include "tests/bart_fixture.h"
#include "tests/checkpoint_fixture.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;
using ::taskmoe::testing::BartTinyDir;
using ::taskmoe::testing::TestTempDir;
using ::taskmoe::testing::WriteFixtureCheckpoint;

constexpr char kLearnedRouting[] =
    "routing { plugin: \"learned\" params { [type.googleapis.com/taskmoe.LearnedRoutingParams] "
    "{ router { hidden_dim: 4 } } } }";

TensorMap Read(const std::string& path) {
  absl::StatusOr<TensorMap> tensors = ReadSafetensors(path);
  CHECK(tensors.ok()) << tensors.status();
  return *tensors;
}

std::string Bytes(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFileBytes(path);
  CHECK(bytes.ok()) << bytes.status();
  return *bytes;
}

TEST(BuildCheckpointTest, ExpertsFromTheDenseModelRouterAndTaskVectorsFromStageOne) {
  const std::string stage_one = TestTempDir("build_stage_one");
  WriteFixtureCheckpoint(stage_one, kLearnedRouting);
  BuildCheckpointOptions options;
  options.stage_one_dir = stage_one;
  options.dense_dir = BartTinyDir();
  options.output_dir = TestTempDir("build_out");
  options.init_eps = 0.0;
  fs::remove_all(options.output_dir);
  absl::StatusOr<BuiltCheckpoint> built = BuildStageTwoCheckpoint(options);
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(built->tasks, 3);
  EXPECT_GT(built->routing_state_tensors, 0);
  EXPECT_EQ(built->dense_kind, "Hugging Face directory");

  const TensorMap dense = Read(BartTinyDir() + "/model.safetensors");
  const TensorMap out = Read(options.output_dir + "/model.safetensors");
  const TensorMap old = Read(stage_one + "/model.safetensors");
  for (const auto& [expert_name, dense_name] : std::vector<std::pair<std::string, std::string>>{
           {"model.encoder.layers.0.experts.2.fc1.weight", "model.encoder.layers.0.fc1.weight"},
           {"model.encoder.layers.1.fc1.weight", "model.encoder.layers.1.fc1.weight"},
           {"model.decoder.layers.1.experts.0.encoder_attn.k_proj.weight",
            "model.decoder.layers.1.encoder_attn.k_proj.weight"}}) {
    ASSERT_TRUE(out.count(expert_name)) << expert_name;
    EXPECT_TRUE(at::equal(out.at(expert_name), dense.at(dense_name))) << expert_name;
  }
  // Stage one's experts had their own noise: they were replaced, not kept.
  const std::string expert = "model.encoder.layers.0.experts.2.fc1.weight";
  EXPECT_FALSE(at::equal(out.at(expert), old.at(expert)));
  for (const char* file : {kRoutingStateFile, TaskTable::kNamesFile, TaskTable::kVectorsFile,
                           kRoutesFile}) {
    EXPECT_EQ(Bytes(options.output_dir + "/" + file), Bytes(stage_one + "/" + file)) << file;
  }
  absl::StatusOr<Checkpoint> loaded = LoadCheckpoint(options.output_dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->experiment.model().hf_dir(), BartTinyDir());
  EXPECT_EQ(loaded->experiment.model().init_eps(), 0.0f);

  // Stage two's plugin takes the router state as it is.
  absl::StatusOr<ExperimentConfig> stage_two = ParseExperimentConfig(
      "routing { plugin: \"annealed\" params { "
      "[type.googleapis.com/taskmoe.AnnealedRoutingParams] { router { hidden_dim: 4 } } } }",
      "stage_two");
  ASSERT_TRUE(stage_two.ok()) << stage_two.status();
  RoutingContext context;
  context.shape = loaded->model->shape();
  context.task_vector_dim = loaded->tasks->dim();
  context.num_tasks = loaded->tasks->size();
  absl::StatusOr<std::shared_ptr<RoutingPlugin>> annealed =
      CreateRoutingPlugin(stage_two->routing(), context);
  ASSERT_TRUE(annealed.ok()) << annealed.status();
  EXPECT_TRUE(
      LoadRoutingState(Read(options.output_dir + "/" + kRoutingStateFile), **annealed).ok());
}

// The shuffled-routes control: every routed task takes another routed task's vector, so the
// frozen router gives it that task's route.
TEST(BuildCheckpointTest, ShuffledRoutesGiveEveryTaskAnotherTasksVector) {
  const std::string stage_one = TestTempDir("shuffle_stage_one");
  WriteFixtureCheckpoint(stage_one, kLearnedRouting);
  ASSERT_TRUE(
      TaskTable::WriteNames({"alpha", "beta", "gamma"}, stage_one + "/" + kRouteTasksFile).ok());
  BuildCheckpointOptions options;
  options.stage_one_dir = stage_one;
  options.dense_dir = BartTinyDir();
  options.output_dir = TestTempDir("shuffle_out");
  options.shuffle_routes_seed = 3;
  fs::remove_all(options.output_dir);
  absl::StatusOr<BuiltCheckpoint> built = BuildStageTwoCheckpoint(options);
  ASSERT_TRUE(built.ok()) << built.status();
  absl::StatusOr<TaskTable> before = TaskTable::Load(stage_one);
  absl::StatusOr<TaskTable> after = TaskTable::Load(options.output_dir);
  ASSERT_TRUE(before.ok() && after.ok());
  EXPECT_EQ(after->names(), before->names());
  ASSERT_EQ(built->route_donors.size(), 3u);
  std::set<std::string> donors;
  for (const auto& [task, donor] : built->route_donors) {
    EXPECT_NE(task, donor);
    donors.insert(donor);
    EXPECT_TRUE(
        at::equal(after->vectors()[*after->Id(task)], before->vectors()[*before->Id(donor)]))
        << task << " should carry " << donor << "'s vector";
  }
  EXPECT_EQ(donors, (std::set<std::string>{"alpha", "beta", "gamma"}));
  EXPECT_TRUE(fs::exists(options.output_dir + "/" + kRouteDonorsFile));
  // Stage one's routes no longer describe these tasks, so they are not carried over.
  EXPECT_FALSE(fs::exists(options.output_dir + "/" + kRoutesFile));
  EXPECT_EQ(Bytes(options.output_dir + "/" + kRoutingStateFile),
            Bytes(stage_one + "/" + kRoutingStateFile));
}

TEST(BuildCheckpointTest, ExpertNoiseIsInitEpsAndSeeded) {
  const std::string stage_one = TestTempDir("noise_stage_one");
  WriteFixtureCheckpoint(stage_one, kLearnedRouting);
  BuildCheckpointOptions options;
  options.stage_one_dir = stage_one;
  options.dense_dir = BartTinyDir();
  options.init_eps = 0.5;
  options.output_dir = TestTempDir("noise_a");
  fs::remove_all(options.output_dir);
  ASSERT_TRUE(BuildStageTwoCheckpoint(options).ok());
  options.output_dir = TestTempDir("noise_b");
  fs::remove_all(options.output_dir);
  ASSERT_TRUE(BuildStageTwoCheckpoint(options).ok());
  const TensorMap a = Read(TestTempDir("noise_a") + "/model.safetensors");
  const TensorMap b = Read(TestTempDir("noise_b") + "/model.safetensors");
  const TensorMap dense = Read(BartTinyDir() + "/model.safetensors");
  const std::string name = "model.decoder.layers.0.experts.1.fc2.weight";
  EXPECT_TRUE(at::equal(a.at(name), b.at(name)));  // same seed, same experts
  const at::Tensor noise = a.at(name) - dense.at("model.decoder.layers.0.fc2.weight");
  EXPECT_NEAR(noise.std().item<double>(), 0.5, 0.05);
}

TEST(BuildCheckpointTest, DenseTaskMoeCheckpointGivesItsSingleExperts) {
  const std::string stage_one = TestTempDir("dense_ckpt_stage_one");
  WriteFixtureCheckpoint(stage_one, kLearnedRouting);
  const std::string dense = TestTempDir("dense_ckpt");
  WriteFixtureCheckpoint(dense, "routing { plugin: \"average\" }", /*experts=*/1);
  BuildCheckpointOptions options;
  options.stage_one_dir = stage_one;
  options.dense_dir = dense;
  options.init_eps = 0.0;
  options.output_dir = TestTempDir("dense_ckpt_out");
  fs::remove_all(options.output_dir);
  absl::StatusOr<BuiltCheckpoint> built = BuildStageTwoCheckpoint(options);
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(built->dense_kind, "TaskMoE checkpoint");
  const TensorMap out = Read(options.output_dir + "/model.safetensors");
  const TensorMap single = Read(dense + "/model.safetensors");
  EXPECT_TRUE(at::equal(out.at("model.encoder.layers.0.experts.2.fc1.weight"),
                        single.at("model.encoder.layers.0.experts.0.fc1.weight")));
  EXPECT_TRUE(at::equal(out.at("model.encoder.layers.1.fc1.weight"),
                        single.at("model.encoder.layers.1.fc1.weight")));
  absl::StatusOr<Checkpoint> loaded = LoadCheckpoint(options.output_dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->experiment.model().checkpoint(), dense);

  // A routed checkpoint is not a dense model.
  options.dense_dir = stage_one;
  options.output_dir = TestTempDir("dense_ckpt_refused");
  fs::remove_all(options.output_dir);
  absl::StatusOr<BuiltCheckpoint> refused = BuildStageTwoCheckpoint(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("not a dense model"), std::string::npos)
      << refused.status();
  EXPECT_FALSE(fs::exists(options.output_dir));
}

TEST(BuildCheckpointTest, CheckpointWithoutRouterIsRefusedAndNothingWritten) {
  const std::string stage_one = TestTempDir("average_stage_one");
  WriteFixtureCheckpoint(stage_one, "routing { plugin: \"average\" }");
  BuildCheckpointOptions options;
  options.stage_one_dir = stage_one;
  options.dense_dir = BartTinyDir();
  options.output_dir = TestTempDir("average_out");
  fs::remove_all(options.output_dir);
  absl::StatusOr<BuiltCheckpoint> built = BuildStageTwoCheckpoint(options);
  ASSERT_FALSE(built.ok());
  EXPECT_NE(built.status().message().find("holds no router"), std::string::npos) << built.status();
  EXPECT_NE(built.status().message().find("'average'"), std::string::npos) << built.status();
  EXPECT_FALSE(fs::exists(options.output_dir));
}

TEST(BuildCheckpointTest, ExistingOutputIsKeptUnlessOverwrite) {
  const std::string stage_one = TestTempDir("existing_stage_one");
  WriteFixtureCheckpoint(stage_one, kLearnedRouting);
  BuildCheckpointOptions options;
  options.stage_one_dir = stage_one;
  options.dense_dir = BartTinyDir();
  options.output_dir = TestTempDir("existing_out");
  fs::remove_all(options.output_dir);
  fs::create_directories(options.output_dir);
  ASSERT_TRUE(WriteFileAtomically(options.output_dir + "/keep.txt", "mine").ok());
  absl::StatusOr<BuiltCheckpoint> refused = BuildStageTwoCheckpoint(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("--overwrite"), std::string::npos);
  EXPECT_EQ(Bytes(options.output_dir + "/keep.txt"), "mine");
  options.overwrite = true;
  ASSERT_TRUE(BuildStageTwoCheckpoint(options).ok());
  EXPECT_FALSE(fs::exists(options.output_dir + "/keep.txt"));
}

// The whole two-stage path on a tiny gym: stage one (learned routing) and a dense baseline (every
// layer vanilla) trained briefly, build_checkpoint, then configs/stage_two.pbtxt.
TEST(StageTwoTest, StageTwoConfigTrainsExpertsWithRouterAndTaskVectorsFrozen) {
  const std::string gym_dir = TestTempDir("stage_two_gym");
  fs::remove_all(gym_dir);
  gym::GymOptions gym_options;
  gym_options.train_examples = 32;
  gym_options.upstream_dev_examples = 4;
  gym_options.upstream_test_examples = 4;
  gym_options.fewshot_pool_examples = 64;
  gym_options.fewshot_test_examples = 8;
  ASSERT_TRUE(gym::WriteGym(gym_options, gym_dir).ok());
  const std::vector<std::string> tiny = {
      "data.data_dir=" + gym_dir,
      "model.experts=2",
      "training.total_steps=4",
      "training.train_batch_size=8",
      "training.threads=1",
      "evaluation.eval_period=2",
      "evaluation.no_eval_until=0",
      "evaluation.max_dev_examples=2",
      "evaluation.do_predict=false",
      "data.max_input_length=40",
      "data.max_output_length=12",
  };
  const std::string random_init =
      "model.random_init={d_model: 16 encoder_layers: 1 decoder_layers: 1 attention_heads: 2 "
      "ffn_dim: 32 max_position_embeddings: 64}";
  auto run = [&](const std::string& config_path, std::vector<std::string> extra) {
    std::vector<std::string> overrides = tiny;
    overrides.insert(overrides.end(), extra.begin(), extra.end());
    absl::StatusOr<ExperimentConfig> config = LoadExperimentConfig(config_path, overrides);
    CHECK(config.ok()) << config.status();
    absl::StatusOr<RunSummary> summary = RunExperiment(*config);
    CHECK(summary.ok()) << summary.status();
  };
  const std::string stage_one = TestTempDir("stage_two_s1");
  const std::string dense = TestTempDir("stage_two_dense");
  const std::string stage_two = TestTempDir("stage_two_s2");
  run("configs/default.pbtxt", {"output_dir=" + stage_one, random_init});
  // The built-in defaults with average routing and no MoE layer: a dense model.
  run("", {"output_dir=" + dense, random_init, "routing.plugin=average",
           "model.encoder_vanilla_layers=0", "model.decoder_vanilla_layers=0"});
  BuildCheckpointOptions options;
  options.stage_one_dir = stage_one + "/best";
  options.dense_dir = dense + "/best";
  options.output_dir = TestTempDir("stage_two_init");
  fs::remove_all(options.output_dir);
  absl::StatusOr<BuiltCheckpoint> built = BuildStageTwoCheckpoint(options);
  ASSERT_TRUE(built.ok()) << built.status();
  run("configs/stage_two.pbtxt",
      {"output_dir=" + stage_two, "model.checkpoint=" + options.output_dir});

  const TensorMap router_before = Read(options.output_dir + "/" + kRoutingStateFile);
  const TensorMap router_after = Read(stage_two + "/last/" + kRoutingStateFile);
  ASSERT_EQ(router_before.size(), router_after.size());
  for (const auto& [name, tensor] : router_before) {
    EXPECT_TRUE(at::equal(tensor, router_after.at(name))) << name;
  }
  EXPECT_EQ(Bytes(stage_two + "/last/" + TaskTable::kVectorsFile),
            Bytes(options.output_dir + "/" + TaskTable::kVectorsFile));
  // The experts did train.
  const TensorMap experts_before = Read(options.output_dir + "/" + kModelWeightsFile);
  const TensorMap experts_after = Read(stage_two + "/last/" + kModelWeightsFile);
  const std::string name = "model.encoder.layers.0.experts.1.fc1.weight";
  EXPECT_FALSE(at::equal(experts_before.at(name), experts_after.at(name)));
}

}  // namespace
}  // namespace taskmoe
