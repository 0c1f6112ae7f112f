// tools/route_tasks and its library: the routes a checkpoint's router gives every task of a
// task-vector table, held-out tasks included; its errors leave nothing written.

#include "moe/workflow/table_routes.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "absl/strings/match.h"
#include "moe/base/file_io.h"
#include "moe/formats/npy.h"
#include "moe/formats/task_table.h"
#include "moe/train/checkpoint.h"
#include "tests/checkpoint_fixture.h"
#include "tests/tool_runner.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;
using ::taskmoe::testing::TestTempDir;
using ::taskmoe::testing::WriteFixtureCheckpoint;

// A softmax router over the task vectors: every task gets its own soft route.
constexpr char kLearnedRouting[] =
    "routing { plugin: \"learned\" params { [type.googleapis.com/taskmoe.LearnedRoutingParams] "
    "{ router { hidden_dim: 4 } selection { function: SOFTMAX } } } }";

class TableRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    checkpoint_ = TestTempDir("table_routes_checkpoint");
    WriteFixtureCheckpoint(checkpoint_, kLearnedRouting);
    // The checkpoint's three tasks, a held-out task, and a copy of alpha's vector under another
    // name (the same input to the router, so the same route).
    absl::StatusOr<TaskTable> own = TaskTable::Load(checkpoint_);
    ASSERT_TRUE(own.ok()) << own.status();
    const at::Tensor alpha = own->vectors()[*own->Id("alpha")];
    at::manual_seed(11);
    absl::StatusOr<TaskTable> table = TaskTable::Create(
        {"alpha", "beta", "gamma", "held_out", "alpha_twin"},
        at::cat({own->vectors().index_select(
                     0, at::tensor({*own->Id("alpha"), *own->Id("beta"), *own->Id("gamma")})),
                 at::randn({1, own->dim()}) * 3, alpha.unsqueeze(0)}));
    ASSERT_TRUE(table.ok()) << table.status();
    vectors_ = TestTempDir("table_routes_vectors");
    fs::remove_all(vectors_);
    fs::create_directories(vectors_);
    const absl::Status saved = table->Save(vectors_);
    ASSERT_TRUE(saved.ok()) << saved;
  }

  TableRoutesOptions Options(const std::string& output_name) const {
    TableRoutesOptions options;
    options.checkpoint_dir = checkpoint_;
    options.task_vectors_dir = vectors_;
    options.output_dir = TestTempDir(output_name);
    fs::remove_all(options.output_dir);
    return options;
  }

  std::string checkpoint_;
  std::string vectors_;
};

TEST_F(TableRoutesTest, EveryTaskOfTheTableIsRouted) {
  const TableRoutesOptions options = Options("table_routes_out");
  absl::StatusOr<int64_t> written = WriteTableRoutes(options);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(*written, 5);
  absl::StatusOr<std::vector<std::string>> names =
      TaskTable::ReadNames(options.output_dir + "/" + kRouteTasksFile);
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_EQ(*names, (std::vector<std::string>{"alpha", "beta", "gamma", "held_out",
                                              "alpha_twin"}));
  absl::StatusOr<at::Tensor> routes = ReadNpy(options.output_dir + "/" + kRoutesFile);
  ASSERT_TRUE(routes.ok()) << routes.status();
  ASSERT_EQ(routes->sizes().vec(), (std::vector<int64_t>{5, 4, 3}));  // tasks, layers, experts
  EXPECT_TRUE(at::allclose(routes->sum(2), at::ones({5, 4})));
  // The route is a function of the vector: the twin routes as alpha, the held-out task and the
  // other train tasks (other vectors) differently in some MoE layer.
  EXPECT_TRUE(at::equal((*routes)[4], (*routes)[0]));
  for (int64_t other : {1, 2, 3}) {
    EXPECT_GT(((*routes)[other] - (*routes)[0]).abs().max().item<float>(), 1e-6) << other;
  }
  absl::StatusOr<at::Tensor> argmax = ReadNpy(options.output_dir + "/" + kRoutesArgmaxFile);
  ASSERT_TRUE(argmax.ok()) << argmax.status();
  EXPECT_TRUE(at::equal(argmax->sum(2), at::ones({5, 4})));
  EXPECT_TRUE(fs::exists(options.output_dir + "/" + kRoutesT1File));
  EXPECT_TRUE(fs::exists(options.output_dir + "/" + kRoutesImageFile));
}

TEST_F(TableRoutesTest, ErrorsWriteNothing) {
  TableRoutesOptions options = Options("table_routes_errors");
  // Vectors of another dimension than the router reads.
  const std::string wide = TestTempDir("table_routes_wide");
  fs::remove_all(wide);
  fs::create_directories(wide);
  ASSERT_TRUE(TaskTable::Create({"alpha"}, at::randn({1, 5}))->Save(wide).ok());
  options.task_vectors_dir = wide;
  absl::Status status = WriteTableRoutes(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), wide + "/" + TaskTable::kVectorsFile +
                                                      " holds vectors of dimension 5"))
      << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "reads dimension 8")) << status;
  EXPECT_FALSE(fs::exists(options.output_dir));
  // An existing output without overwrite stays as it was.
  options.task_vectors_dir = vectors_;
  fs::create_directories(options.output_dir);
  ASSERT_TRUE(WriteFileAtomically(options.output_dir + "/keep.txt", "mine").ok());
  status = WriteTableRoutes(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists) << status;
  EXPECT_EQ(*ReadFileBytes(options.output_dir + "/keep.txt"), "mine");
  options.overwrite = true;
  ASSERT_TRUE(WriteTableRoutes(options).ok());
  EXPECT_FALSE(fs::exists(options.output_dir + "/keep.txt"));
  EXPECT_TRUE(fs::exists(options.output_dir + "/" + kRoutesFile));
}

TEST_F(TableRoutesTest, PluginsThatDoNotRouteFromVectorsAreRefused) {
  TableRoutesOptions options = Options("table_routes_random");
  options.checkpoint_dir = TestTempDir("table_routes_random_checkpoint");
  WriteFixtureCheckpoint(options.checkpoint_dir, "routing { plugin: \"task_random\" }");
  const absl::Status status = WriteTableRoutes(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(),
                                "the routing plugin 'task_random' of " + options.checkpoint_dir +
                                    " does not route from task vectors"))
      << status;
  EXPECT_FALSE(fs::exists(options.output_dir));
}

TEST_F(TableRoutesTest, Tool) {
  const TableRoutesOptions options = Options("table_routes_tool");
  testing::ToolResult result = testing::RunToolBinary(
      "route_tasks", "--model=" + checkpoint_ + " --task_vectors=" + vectors_ +
                         " --output_dir=" + options.output_dir);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(absl::StrContains(result.output,
                                "wrote the routes of 5 tasks to " + options.output_dir))
      << result.output;
  result = testing::RunToolBinary("route_tasks", "--model=" + checkpoint_ +
                                                     " --output_dir=" + options.output_dir);
  EXPECT_EQ(WEXITSTATUS(result.exit_code), 1) << result.output;
  EXPECT_TRUE(absl::StrContains(
      result.output, "route_tasks: --model, --task_vectors and --output_dir are required"))
      << result.output;
}

}  // namespace
}  // namespace taskmoe
