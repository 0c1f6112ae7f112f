// Runs tools/finetune_tasks on a tiny generated gym with a tiny random model: the exit status,
// result.csv with a _best row per prefix, the printed summary, a rerun that trains nothing, and
// bad input.
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "data/crossfit.h"
#include "data/gym/gym_writer.h"
#include "data/results.h"
#include "glog/logging.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class FinetuneToolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    gym_ = new std::string(::testing::TempDir() + "/tool_gym");
    fs::remove_all(*gym_);
    gym::GymOptions options;
    options.train_examples = 16;
    options.upstream_dev_examples = 4;
    options.upstream_test_examples = 4;
    options.fewshot_pool_examples = 48;
    options.fewshot_test_examples = 4;
    options.fewshot_seeds = {100, 13};
    absl::StatusOr<gym::GymSummary> summary = gym::WriteGym(options, *gym_);
    CHECK(summary.ok()) << summary.status();
  }

  // Runs the tool with a tiny random model; returns the exit status, stdout in *out.
  static int Run(const std::string& args, std::string* out) {
    const std::string stdout_path = ::testing::TempDir() + "/tool_stdout.txt";
    const std::string command = absl::StrCat(
        "tools/finetune_tasks --config= --set=data.data_dir=", *gym_,
        " '--set=model.random_init={d_model: 16 encoder_layers: 1 decoder_layers: 1 "
        "attention_heads: 2 ffn_dim: 32 max_position_embeddings: 64}'"
        " --set=model.experts=1 --set=training.total_steps=2 --set=training.threads=1"
        " --set=evaluation.eval_period=2 --set=evaluation.num_beams=1"
        " --set=data.max_input_length=40 --set=data.max_output_length=12 ",
        args, " > ", stdout_path, " 2> /dev/null");
    const int status = std::system(command.c_str());
    *out = ReadAll(stdout_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  static std::string* gym_;
};

std::string* FinetuneToolTest::gym_ = nullptr;

TEST_F(FinetuneToolTest, FinetunesASplitListAndSkipsFinishedPrefixesOnRerun) {
  const std::string out_dir = ::testing::TempDir() + "/tool_finetune";
  fs::remove_all(out_dir);
  absl::StatusOr<TaskSplit> split = ReadTaskSplit(*gym_ + "/split.json");
  ASSERT_TRUE(split.ok()) << split.status();
  const std::string task = split->test[0];
  absl::StatusOr<std::vector<std::string>> prefixes = ListPrefixes(*gym_ + "/" + task);
  ASSERT_TRUE(prefixes.ok() && prefixes->size() == 2u);
  const std::string args = absl::StrCat("--tasks=", task,
                                        " --learning_rates=1e-3 --batch_sizes=4 --output_dir=",
                                        out_dir);
  std::string out;
  ASSERT_EQ(Run(args, &out), 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "2 runs done, 0 reused, 0 finished prefixes skipped"))
      << out;
  const std::string csv = ReadAll(out_dir + "/" + task + "/result.csv");
  absl::StatusOr<std::vector<ResultRow>> rows = ParseResultCsv(csv, "result.csv");
  ASSERT_TRUE(rows.ok()) << rows.status() << csv;
  ASSERT_EQ(rows->size(), 4u) << csv;
  EXPECT_EQ((*rows)[1].prefix, (*prefixes)[0] + "_best");
  EXPECT_EQ((*rows)[3].prefix, (*prefixes)[1] + "_best");
  EXPECT_EQ((*rows)[3].lr, "0.001");
  EXPECT_EQ((*rows)[3].bsz, "4");
  EXPECT_TRUE(absl::StrContains(out, (*prefixes)[1] + "_best lr 0.001 bsz 4: dev ")) << out;

  ASSERT_EQ(Run(args, &out), 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "0 runs done, 0 reused, 2 finished prefixes skipped"))
      << out;
  EXPECT_EQ(ReadAll(out_dir + "/" + task + "/result.csv"), csv);
}

TEST_F(FinetuneToolTest, BadInputFailsWithoutResults) {
  const std::string out_dir = ::testing::TempDir() + "/tool_bad";
  std::string out;
  EXPECT_EQ(Run("--tasks=no-such-task --output_dir=" + out_dir, &out), 1);
  EXPECT_EQ(Run("--tasks=a --split_list=test --output_dir=" + out_dir, &out), 1);
  EXPECT_EQ(Run("--tasks=a --batch_sizes=two --output_dir=" + out_dir, &out), 1);
  EXPECT_FALSE(fs::exists(out_dir + "/no-such-task/result.csv"));
}

}  // namespace
}  // namespace taskmoe
