// Plays a plugin author: a routing plugin and a task-embedding method defined only in this
// folder (their own .cc, .proto and BUILD, no file elsewhere edited) are registered, named by an
// experiment config, trained for a few steps, and come back from the checkpoint.
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moe/embedding/task_embedding.h"
#include "moe/routing/routing.h"
#include "moe/train/experiment_config.h"
#include "moe/train/model_builder.h"
#include "moe/train/trainer.h"
#include "tests/tiny_gym.h"

namespace taskmoe {
namespace {

using ::testing::Contains;

TEST(PluginAuthorTest, PluginsOfTheTestTreeAreRegisteredBesideTheBuiltIns) {
  EXPECT_THAT(RegisteredRoutingPlugins(), Contains("task_id_routing"));
  EXPECT_THAT(RegisteredRoutingPlugins(), Contains("learned"));
  EXPECT_THAT(RegisteredTaskEmbeddingMethods(), Contains("one_hot_tasks"));
  EXPECT_THAT(RegisteredTaskEmbeddingMethods(), Contains("random"));
}

TEST(PluginAuthorTest, TrainsWithTheNewPluginsAndLoadsTheCheckpointBack) {
  gym::GymOptions gym;
  gym.train_examples = 16;
  gym.upstream_dev_examples = 4;
  gym.upstream_test_examples = 4;
  gym.fewshot_pool_examples = 48;
  gym.fewshot_test_examples = 4;
  const std::string data_dir = testing::MakeTinyGym("author_gym", gym);
  const std::string output_dir = testing::FreshTempDir("author_run");
  absl::StatusOr<ExperimentConfig> config = LoadExperimentConfig(
      "", {"output_dir=" + output_dir, "data.data_dir=" + data_dir,
           "model.random_init={d_model: 16 encoder_layers: 1 decoder_layers: 1 attention_heads: 2 "
           "ffn_dim: 32 max_position_embeddings: 64}",
           "model.experts=3", "routing.plugin=task_id_routing",
           "routing.params={[type.googleapis.com/taskmoe.example.TaskIdRoutingParams] "
           "{ offset: 1 }}",
           "task_vectors.method={name: \"one_hot_tasks\" params { "
           "[type.googleapis.com/taskmoe.example.OneHotTasksParams] { scale: 2 } } }",
           "task_vectors.dim=64", "task_vectors.trainable=false", "training.total_steps=2",
           "training.train_batch_size=4", "training.gradient_accumulation_steps=1",
           "training.threads=1", "evaluation.eval_period=2", "evaluation.num_beams=1",
           "evaluation.max_dev_examples=2", "evaluation.do_predict=false",
           "data.max_input_length=40", "data.max_output_length=12"});
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<RunSummary> summary = RunExperiment(*config);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->steps, 2);

  absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(output_dir + "/last");
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ(checkpoint->experiment.routing().plugin(), "task_id_routing");
  // The method's vectors: task i is 2 * e_i.
  const at::Tensor vectors = checkpoint->tasks->vectors();
  ASSERT_EQ(vectors.size(1), 64);
  for (int64_t task = 0; task < vectors.size(0); ++task) {
    at::Tensor expected = at::zeros({64}, at::kFloat);
    expected[task % 64] = 2.0;
    EXPECT_TRUE(at::equal(vectors[task], expected)) << "task " << task << ": " << vectors[task];
  }
  // The plugin's routes: task t uses expert (t + 1) mod 3 in every layer.
  const at::Tensor routes = TaskRoutes(*checkpoint->plugin, vectors, /*step=*/2);
  for (int64_t task = 0; task < routes.size(0); ++task) {
    EXPECT_TRUE(at::all(routes[task].argmax(-1).eq((task + 1) % 3)).item<bool>()) << task;
    EXPECT_TRUE(at::allclose(routes[task].sum(-1), at::ones({routes.size(1)})));
  }
}

}  // namespace
}  // namespace taskmoe
