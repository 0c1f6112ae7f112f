// Runs tools/route_gif on run directories written here: frames in step order, the run's
// ontology from its experiment.pbtxt, and errors that name what is wrong.
#include <gif_lib.h>

#include <ATen/ATen.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "moe/base/file_io.h"
#include "moe/formats/npy.h"
#include "moe/formats/task_table.h"
#include "tests/tool_runner.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;
using ::taskmoe::testing::ToolResult;

const std::vector<std::string> kTasks = {"task_a", "task_b", "task_c"};

ToolResult RunRouteGif(const std::string& arguments) {
  return testing::RunToolBinary("route_gif", arguments);
}

// Frames of the GIF at `path`, or -1 when it does not decode.
int FrameCount(const std::string& path) {
  int error = 0;
  GifFileType* gif = DGifOpenFileName(path.c_str(), &error);
  if (gif == nullptr) return -1;
  const int frames = DGifSlurp(gif) == GIF_OK ? gif->ImageCount : -1;
  DGifCloseFile(gif, &error);
  return frames;
}

// A run directory as the trainer leaves it: experiment.pbtxt naming an ontology (with a
// routing plugin's params, which only a tool linking the plugins can parse) and evaluations.
std::string MakeRun(const std::string& name, const std::vector<int>& steps) {
  const std::string run = (fs::path(::testing::TempDir()) / name).string();
  fs::remove_all(run);
  fs::create_directories(run);
  const std::string ontology = run + "/ontology.json";
  EXPECT_TRUE(WriteFileAtomically(
                  ontology, R"({"qa": {"extractive": ["task_c"], "lookup": ["task_a"]}})")
                  .ok());
  EXPECT_TRUE(WriteFileAtomically(run + "/experiment.pbtxt",
                                  "data { ontology: \"" + ontology + "\" }\n"
                                  "routing { plugin: \"learned\" params {\n"
                                  "  [type.googleapis.com/taskmoe.LearnedRoutingParams] {\n"
                                  "    router { hidden_dim: 8 } } } }\n")
                  .ok());
  for (int step : steps) {
    const std::string eval = run + "/evals/step_" + std::to_string(step);
    fs::create_directories(eval);
    EXPECT_TRUE(WriteNpy(eval + "/route.npy", at::full({3, 4, 2}, 0.5)).ok());
    EXPECT_TRUE(TaskTable::WriteNames(kTasks, eval + "/route_tasks.json").ok());
  }
  return run;
}

TEST(RouteGifToolTest, AnimatesEveryEvaluationInStepOrder) {
  const std::string run = MakeRun("tool_run", {300, 100, 200});
  ToolResult result = RunRouteGif("--run=" + run);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("wrote " + run + "/routes.gif (3 frames, steps 100..300)"),
            std::string::npos)
      << result.output;
  EXPECT_EQ(FrameCount(run + "/routes.gif"), 3);

  const std::string other = run + "/other.gif";
  result = RunRouteGif("--run=" + run + " --output=" + other + " --ontology=" + run +
                       "/ontology.json --layer_labels=a,b,c,d --delay_ms=500");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(FrameCount(other), 3);

  result = RunRouteGif("--run=" + run + " --output=" + other + " --layer_labels=a,b");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("4 layers but 2 layer labels"), std::string::npos)
      << result.output;
}

TEST(RouteGifToolTest, ErrorsNameTheProblemAndKeepTheOldGif) {
  ToolResult result = RunRouteGif("");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("route_gif: --run is required"), std::string::npos)
      << result.output;

  const std::string empty = MakeRun("tool_run_without_evals", {});
  result = RunRouteGif("--run=" + empty);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find(empty + "/evals"), std::string::npos) << result.output;

  const std::string run = MakeRun("tool_run_errors", {10, 20});
  ASSERT_EQ(RunRouteGif("--run=" + run).exit_code, 0);
  const std::string before = ReadFileBytes(run + "/routes.gif").value_or("");
  ASSERT_FALSE(before.empty());

  const std::string step_20 = run + "/evals/step_20/route.npy";
  ASSERT_TRUE(WriteFileAtomically(step_20, "\x93NUMPY garbage").ok());
  result = RunRouteGif("--run=" + run);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find(step_20 + ": not a valid .npy file"), std::string::npos)
      << result.output;

  ASSERT_TRUE(WriteNpy(step_20, at::full({3, 4, 3}, 0.5)).ok());
  result = RunRouteGif("--run=" + run);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find(step_20 + " holds routes [3, 4, 3] but " + run +
                               "/evals/step_10/route.npy holds [3, 4, 2]"),
            std::string::npos)
      << result.output;
  EXPECT_EQ(ReadFileBytes(run + "/routes.gif").value_or(""), before);
}

}  // namespace
}  // namespace taskmoe
