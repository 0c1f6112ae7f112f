// extract_task_model's library: one task's dense BART from a checkpoint, its errors, and the
// binary on the same fixture.

#include "moe/workflow/task_export.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "moe/base/file_io.h"
#include "moe/formats/npy.h"
#include "moe/model/bart_weights.h"
#include "moe/model/moe_model.h"
#include "tests/bart_fixture.h"
#include "tests/checkpoint_fixture.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;
using ::taskmoe::testing::MaxAbsDiff;
using ::taskmoe::testing::SharedPath;
using ::taskmoe::testing::TestTempDir;
using ::taskmoe::testing::WriteFixtureCheckpoint;

constexpr char kHardRouting[] = "routing { plugin: \"task_random\" }";
constexpr char kSoftRouting[] = "routing { plugin: \"average\" }";

TEST(HardRoutesTest, ArgmaxPerMoeLayerAndSoftnessFlag) {
  ModelShape shape{2, 1, 3};
  const at::Tensor one_hot =
      at::tensor({0.f, 1.f, 0.f, 1.f, 0.f, 0.f, 0.f, 0.f, 1.f}).reshape({3, 3});
  bool soft = true;
  RouteWeights hard = HardRoutes(one_hot, shape, {}, {}, &soft);
  EXPECT_FALSE(soft);
  EXPECT_TRUE(at::equal(hard.encoder.squeeze(1), one_hot.slice(0, 0, 2)));
  EXPECT_TRUE(at::equal(hard.decoder.squeeze(1), one_hot.slice(0, 2)));
  // A soft row in a vanilla layer does not count; in an MoE layer it does.
  at::Tensor mixed = one_hot.clone();
  mixed[1] = at::tensor({0.2f, 0.5f, 0.3f});
  HardRoutes(mixed, shape, /*encoder_vanilla_layers=*/{1}, {}, &soft);
  EXPECT_FALSE(soft);
  hard = HardRoutes(mixed, shape, {}, {}, &soft);
  EXPECT_TRUE(soft);
  EXPECT_TRUE(at::equal(hard.encoder[1][0], at::tensor({0.f, 1.f, 0.f})));
}

class TaskExportTest : public ::testing::Test {
 protected:
  // Options exporting `task` of `checkpoint` into a fresh temporary directory `output_name`.
  static TaskExportOptions ExportOptions(const std::string& checkpoint, const std::string& task,
                                         const std::string& output_name) {
    TaskExportOptions options;
    options.checkpoint_dir = checkpoint;
    options.task = task;
    options.output_dir = TestTempDir(output_name);
    fs::remove_all(options.output_dir);
    return options;
  }

  // Logits of the MoE under `routes` (one task, batch 2) and of the dense model in `dir`.
  void ExpectSameLogits(MoeBart& moe, const RouteWeights& task, const std::string& dir) {
    absl::StatusOr<BartForConditionalGeneration> dense = LoadBartDirectory(dir);
    ASSERT_TRUE(dense.ok()) << dense.status();
    const int64_t vocab = moe.config().vocab_size;
    const at::Tensor input_ids = at::randint(3, vocab, {2, 9}, at::kLong);
    const at::Tensor attention_mask = at::ones({2, 9}, at::kLong);
    const at::Tensor decoder_input_ids = at::randint(3, vocab, {2, 5}, at::kLong);
    RouteWeights batch{task.encoder.expand({-1, 2, -1}), task.decoder.expand({-1, 2, -1})};
    absl::StatusOr<BartOutput> moe_out =
        moe.Forward(input_ids, attention_mask, decoder_input_ids, batch);
    ASSERT_TRUE(moe_out.ok()) << moe_out.status();
    const at::Tensor dense_logits =
        (*dense)->Forward(input_ids, attention_mask, decoder_input_ids).logits;
    EXPECT_LT(MaxAbsDiff(moe_out->logits, dense_logits), 1e-5);
    // The other experts give other logits, so the comparison can tell experts apart.
    RouteWeights rolled{batch.encoder.roll(1, 2), batch.decoder.roll(1, 2)};
    absl::StatusOr<BartOutput> other =
        moe.Forward(input_ids, attention_mask, decoder_input_ids, rolled);
    ASSERT_TRUE(other.ok());
    EXPECT_GT(MaxAbsDiff(other->logits, dense_logits), 1e-4);
  }
};

TEST_F(TaskExportTest, ExportReproducesTheMoeLogitsOfTheTask) {
  const std::string checkpoint = TestTempDir("export_hard_checkpoint");
  MoeBart moe = WriteFixtureCheckpoint(checkpoint, kHardRouting);
  moe.model()->eval();
  absl::StatusOr<at::Tensor> routes = ReadNpy(checkpoint + "/" + kRoutesFile);
  ASSERT_TRUE(routes.ok());
  for (const auto& [task, row] : {std::pair{"alpha", 0}, std::pair{"gamma", 2}}) {
    TaskExportOptions options = ExportOptions(checkpoint, task, std::string("export_") + task);
    absl::StatusOr<TaskExport> exported = ExportTaskModel(options);
    ASSERT_TRUE(exported.ok()) << exported.status();
    EXPECT_FALSE(exported->soft_routes);
    ASSERT_EQ(exported->experts.size(), 4u);
    EXPECT_EQ(exported->experts[1], -1);  // encoder layer 1 is vanilla
    const at::Tensor task_routes = (*routes)[row];
    EXPECT_EQ(exported->experts[0], task_routes[0].argmax().item<int64_t>());
    EXPECT_EQ(exported->experts[3], task_routes[3].argmax().item<int64_t>());
    RouteWeights one_task{task_routes.slice(0, 0, 2).unsqueeze(1),
                          task_routes.slice(0, 2).unsqueeze(1)};
    ExpectSameLogits(moe, one_task, options.output_dir);
    // The tokenizer travels with the model.
    EXPECT_EQ(*ReadFileBytes(options.output_dir + "/vocab.json"),
              *ReadFileBytes(SharedPath("fixtures/bart_tokenizer/vocab.json")));
    EXPECT_EQ(*ReadFileBytes(options.output_dir + "/merges.txt"),
              *ReadFileBytes(SharedPath("fixtures/bart_tokenizer/merges.txt")));
  }
}

TEST_F(TaskExportTest, SoftRoutesNeedAllowArgmax) {
  const std::string checkpoint = TestTempDir("export_soft_checkpoint");
  MoeBart moe = WriteFixtureCheckpoint(checkpoint, kSoftRouting);
  moe.model()->eval();
  TaskExportOptions options = ExportOptions(checkpoint, "beta", "export_soft");
  absl::StatusOr<TaskExport> refused = ExportTaskModel(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("--allow_argmax"), std::string::npos)
      << refused.status();
  EXPECT_FALSE(fs::exists(options.output_dir));

  options.allow_argmax = true;
  absl::StatusOr<TaskExport> exported = ExportTaskModel(options);
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_TRUE(exported->soft_routes);
  // Uniform routes: the argmax is the first expert everywhere.
  EXPECT_EQ(exported->experts, (std::vector<int64_t>{0, -1, 0, 0}));
  const at::Tensor first = at::one_hot(at::zeros({4}, at::kLong), 3).to(at::kFloat);
  ExpectSameLogits(moe, {first.slice(0, 0, 2).unsqueeze(1), first.slice(0, 2).unsqueeze(1)},
                   options.output_dir);
}

TEST_F(TaskExportTest, MergedCheckpointExportsSoftRoutesExactly) {
  const std::string checkpoint = TestTempDir("export_merged_checkpoint");
  // Two experts at 1/2 each per layer: soft routes.
  MoeBart moe = WriteFixtureCheckpoint(
      checkpoint,
      "routing { plugin: \"task_random\" params { "
      "[type.googleapis.com/taskmoe.TaskRandomRoutingParams] { top_n: 2 } } }",
      /*experts=*/3, "expert_execution: MERGE_PARAMETERS");
  moe.model()->eval();
  absl::StatusOr<at::Tensor> routes = ReadNpy(checkpoint + "/" + kRoutesFile);
  ASSERT_TRUE(routes.ok());
  TaskExportOptions options = ExportOptions(checkpoint, "beta", "export_merged");
  absl::StatusOr<TaskExport> exported = ExportTaskModel(options);
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_TRUE(exported->merged);
  EXPECT_FALSE(exported->soft_routes);
  const at::Tensor task_routes = (*routes)[1];  // rows sorted by name: alpha, beta, gamma
  EXPECT_NEAR(task_routes[0].max().item<double>(), 0.5, 1e-6);
  ExpectSameLogits(moe, {task_routes.slice(0, 0, 2).unsqueeze(1), task_routes.slice(0, 2).unsqueeze(1)},
                   options.output_dir);
}

TEST_F(TaskExportTest, UnknownTaskListsTheKnownOnesAndWritesNothing) {
  const std::string checkpoint = TestTempDir("export_unknown_checkpoint");
  WriteFixtureCheckpoint(checkpoint, kHardRouting);
  TaskExportOptions options = ExportOptions(checkpoint, "delta", "export_unknown");
  absl::StatusOr<TaskExport> exported = ExportTaskModel(options);
  ASSERT_FALSE(exported.ok());
  EXPECT_NE(exported.status().message().find("'delta'"), std::string::npos);
  EXPECT_NE(exported.status().message().find("gamma, alpha, beta"), std::string::npos)
      << exported.status();
  EXPECT_FALSE(fs::exists(options.output_dir));
}

TEST_F(TaskExportTest, MisshapenRoutesFileIsAnError) {
  const std::string checkpoint = TestTempDir("export_bad_routes_checkpoint");
  WriteFixtureCheckpoint(checkpoint, kHardRouting);
  ASSERT_TRUE(WriteNpy(checkpoint + "/" + kRoutesFile, at::ones({3, 2, 3})).ok());
  TaskExportOptions options = ExportOptions(checkpoint, "beta", "export_bad_routes");
  absl::StatusOr<TaskExport> exported = ExportTaskModel(options);
  ASSERT_FALSE(exported.ok());
  EXPECT_EQ(exported.status().message(),
            checkpoint + "/route.npy: expected float routes [tasks, 4, 3] (the model's layers and "
                         "experts), got Float [3, 2, 3]");
  EXPECT_FALSE(fs::exists(options.output_dir));
}

TEST_F(TaskExportTest, RouteRowsMustMatchTheirTaskList) {
  const std::string checkpoint = TestTempDir("export_route_rows_checkpoint");
  WriteFixtureCheckpoint(checkpoint, kHardRouting);
  TaskExportOptions options = ExportOptions(checkpoint, "beta", "export_route_rows");
  // A row missing from route.npy is an error, not a silent switch to the router.
  const std::string tasks_file = checkpoint + "/" + kRouteTasksFile;
  ASSERT_TRUE(TaskTable::WriteNames({"alpha", "beta"}, tasks_file).ok());
  absl::StatusOr<TaskExport> exported = ExportTaskModel(options);
  ASSERT_FALSE(exported.ok());
  EXPECT_EQ(exported.status().message(),
            checkpoint + "/route.npy: 3 rows, but " + tasks_file + " names 2 tasks");
  ASSERT_TRUE(TaskTable::WriteNames({"alpha", "beta", "delta"}, tasks_file).ok());
  exported = ExportTaskModel(options);
  ASSERT_FALSE(exported.ok());
  EXPECT_EQ(exported.status().message(),
            tasks_file + ": task 'delta' is not in " + checkpoint + "/id2task.json");
  // Without route_tasks.json the rows are the table's tasks in sorted order, all of them.
  fs::remove(tasks_file);
  ASSERT_TRUE(WriteNpy(checkpoint + "/" + kRoutesFile, at::ones({2, 4, 3})).ok());
  exported = ExportTaskModel(options);
  ASSERT_FALSE(exported.ok());
  EXPECT_EQ(exported.status().message(),
            checkpoint + "/route.npy: 2 rows, but " + checkpoint + "/id2task.json names 3 tasks");
  EXPECT_FALSE(fs::exists(options.output_dir));
}

TEST_F(TaskExportTest, ATaskWithoutARouteRowIsRoutedByThePluginAndSaysSo) {
  const std::string checkpoint = TestTempDir("export_untrained_task_checkpoint");
  WriteFixtureCheckpoint(checkpoint, kHardRouting);
  absl::StatusOr<at::Tensor> routes = ReadNpy(checkpoint + "/" + kRoutesFile);
  ASSERT_TRUE(routes.ok());
  // The run trained on alpha and gamma only.
  ASSERT_TRUE(WriteNpy(checkpoint + "/" + kRoutesFile,
                       routes->index_select(0, at::tensor({0, 2}, at::kLong)))
                  .ok());
  ASSERT_TRUE(TaskTable::WriteNames({"alpha", "gamma"}, checkpoint + "/" + kRouteTasksFile).ok());
  TaskExportOptions options = ExportOptions(checkpoint, "beta", "export_untrained_task");
  absl::StatusOr<TaskExport> exported = ExportTaskModel(options);
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_NE(exported->routes_source.find("routing plugin 'task_random' at step "), std::string::npos);
  EXPECT_NE(exported->routes_source.find("the task has no row in " + checkpoint + "/route.npy"),
            std::string::npos)
      << exported->routes_source;
  options.task = "gamma";
  options.output_dir += "_gamma";
  fs::remove_all(options.output_dir);
  exported = ExportTaskModel(options);
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_EQ(exported->routes_source, checkpoint + "/route.npy");
}

TEST_F(TaskExportTest, ExistingOutputIsKeptUnlessOverwrite) {
  const std::string checkpoint = TestTempDir("export_existing_checkpoint");
  WriteFixtureCheckpoint(checkpoint, kHardRouting);
  TaskExportOptions options = ExportOptions(checkpoint, "beta", "export_existing");
  fs::create_directories(options.output_dir);
  ASSERT_TRUE(WriteFileAtomically(options.output_dir + "/keep.txt", "mine").ok());
  absl::StatusOr<TaskExport> refused = ExportTaskModel(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("--overwrite"), std::string::npos);
  EXPECT_EQ(*ReadFileBytes(options.output_dir + "/keep.txt"), "mine");

  options.overwrite = true;
  ASSERT_TRUE(ExportTaskModel(options).ok());
  EXPECT_FALSE(fs::exists(options.output_dir + "/keep.txt"));
  EXPECT_TRUE(fs::exists(options.output_dir + "/model.safetensors"));
}

}  // namespace
}  // namespace taskmoe
