// tools/build_checkpoint and tools/extract_task_model as a user runs them on fixture checkpoints:
// success writes loadable directories, bad input exits non-zero and writes nothing.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "moe/model/bart_weights.h"
#include "moe/train/model_builder.h"
#include "tests/bart_fixture.h"
#include "tests/checkpoint_fixture.h"
#include "tests/tool_runner.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;
using ::taskmoe::testing::BartTinyDir;
using ::taskmoe::testing::TestTempDir;
using ::taskmoe::testing::WriteFixtureCheckpoint;

int RunTool(const std::string& command_line) { return std::system(command_line.c_str()); }

TEST(CheckpointToolsTest, BuildThenExtract) {
  const std::string stage_one = TestTempDir("tools_stage_one");
  WriteFixtureCheckpoint(
      stage_one,
      "routing { plugin: \"learned\" params { [type.googleapis.com/taskmoe.LearnedRoutingParams] "
      "{ router { hidden_dim: 4 } selection { function: GUMBEL_SOFTMAX_ST } } } }");
  const std::string built = TestTempDir("tools_built");
  fs::remove_all(built);
  ASSERT_EQ(RunTool("tools/build_checkpoint --stage_one=" + stage_one + " --dense=" + BartTinyDir() +
                " --output_dir=" + built + " --init_eps=0.001"),
            0);
  ASSERT_TRUE(LoadCheckpoint(built).ok());
  // Straight-through Gumbel-softmax routes are one-hot in evaluation: exported as they are.
  const std::string exported = TestTempDir("tools_exported");
  fs::remove_all(exported);
  ASSERT_EQ(RunTool("tools/extract_task_model --checkpoint=" + built +
                " --task=beta --output_dir=" + exported),
            0);
  EXPECT_TRUE(LoadBartDirectory(exported).ok());
  EXPECT_TRUE(fs::exists(exported + "/vocab.json"));
  // Run again: the output exists.
  EXPECT_NE(RunTool("tools/extract_task_model --checkpoint=" + built + " --task=beta --output_dir=" +
                exported),
            0);
  EXPECT_EQ(RunTool("tools/extract_task_model --checkpoint=" + built + " --task=beta --output_dir=" +
                exported + " --overwrite"),
            0);
  // --overwrite never replaces an input: the checkpoint itself, or a directory holding it.
  const std::string holder = TestTempDir("tools_holder");
  fs::remove_all(holder);
  fs::create_directories(holder);
  fs::copy(built, holder + "/checkpoint", fs::copy_options::recursive);
  for (const std::string& output : {holder + "/checkpoint", holder}) {
    const testing::ToolResult into_input = testing::RunToolBinary(
        "extract_task_model", "--model=" + holder + "/checkpoint --task=beta --overwrite "
                              "--output_dir=" + output);
    EXPECT_EQ(WEXITSTATUS(into_input.exit_code), 1) << into_input.output;
    EXPECT_NE(into_input.output.find("extract_task_model: the output " + output +
                                     " would overwrite the input " + holder + "/checkpoint"),
              std::string::npos)
        << into_input.output;
  }
  EXPECT_TRUE(LoadCheckpoint(holder + "/checkpoint").ok());
  const testing::ToolResult into_stage_one = testing::RunToolBinary(
      "build_checkpoint", "--stage_one=" + stage_one + " --model=" + BartTinyDir() +
                              " --overwrite --output_dir=" + stage_one);
  EXPECT_EQ(WEXITSTATUS(into_stage_one.exit_code), 1) << into_stage_one.output;
  EXPECT_TRUE(LoadCheckpoint(stage_one).ok());
}

TEST(CheckpointToolsTest, BadInputExitsNonZeroAndWritesNothing) {
  const std::string average = TestTempDir("tools_average");
  WriteFixtureCheckpoint(average, "routing { plugin: \"average\" }");
  const std::string out = TestTempDir("tools_bad_out");
  fs::remove_all(out);
  EXPECT_NE(RunTool("tools/build_checkpoint --stage_one=" + average + " --dense=" + BartTinyDir() +
                " --output_dir=" + out),
            0);
  EXPECT_NE(RunTool("tools/extract_task_model --checkpoint=" + average + " --task=nope --output_dir=" +
                out),
            0);
  EXPECT_NE(RunTool("tools/extract_task_model --checkpoint=" + average + " --task=beta --output_dir=" +
                out),
            0);  // soft routes without --allow_argmax
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(RunTool("tools/extract_task_model --checkpoint=" + average +
                " --task=beta --allow_argmax --output_dir=" + out),
            0);
  EXPECT_TRUE(fs::exists(out + "/model.safetensors"));
}

}  // namespace
}  // namespace taskmoe
