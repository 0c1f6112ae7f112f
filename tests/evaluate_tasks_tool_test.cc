// The zero-shot pipeline through the tools on a tiny generated gym: tools/trainer writes a routed
// MoE checkpoint (routing from a fixed task-vector table that also holds the held-out tasks) and a
// dense one, tools/evaluate_tasks evaluates both on the held-out tasks without training, and
// tools/aggregate_results reads the results and prints the zero-shot ARG table. Also: a held-out
// task without a vector is an error naming it, and vectors computed by a named method.
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "data/crossfit.h"
#include "data/gym/gym_writer.h"
#include "data/results.h"
#include "glog/logging.h"
#include "moe/formats/npy.h"
#include "moe/formats/task_table.h"
#include "tests/tiny_gym.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs a command line; returns the exit status, stdout and stderr in *out.
int RunCommand(const std::string& command, std::string* out) {
  const std::string output_path = ::testing::TempDir() + "/zero_shot_tool_output.txt";
  const int status = std::system(absl::StrCat(command, " > ", output_path, " 2>&1").c_str());
  *out = ReadAll(output_path);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class EvaluateTasksToolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(testing::FreshTempDir("zero_shot"));
    gym::GymOptions options;
    options.train_examples = 16;
    options.upstream_dev_examples = 4;
    options.upstream_test_examples = 4;
    options.fewshot_pool_examples = 48;
    options.fewshot_test_examples = 4;
    options.fewshot_seeds = {100, 13};
    gym_ = new std::string(testing::MakeTinyGym("zero_shot_gym", options));
    absl::StatusOr<TaskSplit> split = ReadTaskSplit(Gym() + "/split.json");
    CHECK(split.ok()) << split.status();
    split_ = new TaskSplit(*split);
    // One fixed vector per task of the split, held-out ones included (as text_emb would give).
    absl::StatusOr<TaskTable> table = TaskTable::Create(
        split->all, at::randn({static_cast<int64_t>(split->all.size()), 8}));
    CHECK(table.ok()) << table.status();
    fs::create_directories(Vectors());
    CHECK(table->Save(Vectors()).ok());
    std::string out;
    CHECK_EQ(RunCommand(Train("moe", "--set=model.experts=2 --set=routing.plugin=learned "
                              "--set=task_vectors.dir=" + Vectors() +
                              " --set=task_vectors.trainable=false"),
                 &out),
             0)
        << out;
    CHECK_EQ(RunCommand(Train("dense", "--set=model.experts=1 --set=routing.plugin=average"), &out), 0)
        << out;
  }

  static std::string Gym() { return *gym_; }
  static std::string Vectors() { return *root_ + "/vectors"; }

  static std::string Common() {
    return absl::StrCat(
        " --config= --set=data.data_dir=", Gym(), " --set=training.threads=1",
        " --set=evaluation.num_beams=1 --set=evaluation.predict_batch_size=8",
        " --set=data.max_input_length=40 --set=data.max_output_length=12");
  }

  static std::string Train(const std::string& name, const std::string& flags) {
    return absl::StrCat(
        "tools/trainer", Common(), " --set=output_dir=", *root_, "/", name,
        " '--set=model.random_init={d_model: 16 encoder_layers: 1 decoder_layers: 1 "
        "attention_heads: 2 ffn_dim: 32 max_position_embeddings: 64}'",
        " --set=training.total_steps=4 --set=training.train_batch_size=8",
        " --set=training.gradient_accumulation_steps=1 --set=evaluation.eval_period=4",
        " --set=evaluation.max_dev_examples=2 --set=evaluation.do_predict=false ", flags);
  }

  static std::string Evaluate(const std::string& model, const std::string& output,
                              const std::string& flags) {
    return absl::StrCat("tools/evaluate_tasks", Common(), " --model=", *root_, "/", model,
                        "/best --split_list=test --output_dir=", *root_, "/", output, " ", flags);
  }

  static std::string* root_;
  static std::string* gym_;
  static TaskSplit* split_;
};

std::string* EvaluateTasksToolTest::root_ = nullptr;
std::string* EvaluateTasksToolTest::gym_ = nullptr;
TaskSplit* EvaluateTasksToolTest::split_ = nullptr;

// The trainer tool ends a run with its HTML report (moe/report), images inline.
TEST_F(EvaluateTasksToolTest, TheTrainerWritesTheRunReport) {
  const std::string html = ReadAll(*root_ + "/moe/report.html");
  EXPECT_TRUE(absl::StartsWith(html, "<!DOCTYPE html>")) << html.substr(0, 100);
  EXPECT_TRUE(absl::StrContains(html, "<h2 id=\"curves\">Training curves</h2>"));
  EXPECT_TRUE(absl::StrContains(html, "<img src=\"data:image/png;base64,"));
  EXPECT_TRUE(absl::StrContains(html, "Route–skill agreement"));
}

TEST_F(EvaluateTasksToolTest, ZeroShotResultsGiveAnArgTable) {
  std::string out;
  ASSERT_EQ(RunCommand(Evaluate("moe", "zs_moe", "--task_vectors=" + Vectors()), &out), 0) << out;
  ASSERT_EQ(RunCommand(Evaluate("dense", "zs_dense", ""), &out), 0) << out;
  // A baseline of known scores: every held-out task at 0.5.
  const std::string baseline = *root_ + "/half";
  double gain_sum = 0;
  for (const std::string& task : split_->test) {
    absl::StatusOr<std::vector<std::string>> prefixes = ListPrefixes(Gym() + "/" + task);
    ASSERT_TRUE(prefixes.ok() && prefixes->size() == 2u);
    for (const char* model : {"zs_moe", "zs_dense"}) {
      const std::string csv = ReadAll(absl::StrCat(*root_, "/", model, "/", task, "/result.csv"));
      absl::StatusOr<std::vector<ResultRow>> rows = ParseResultCsv(csv, task + "/result.csv");
      ASSERT_TRUE(rows.ok()) << rows.status();
      ASSERT_EQ(rows->size(), 4u) << csv;  // per prefix: the evaluation, and it again as _best
      EXPECT_EQ((*rows)[3].prefix, (*prefixes)[1] + "_best");
      EXPECT_EQ((*rows)[3].lr, "0.0");
      EXPECT_EQ((*rows)[3].bsz, "0");
      if (std::string(model) == "zs_moe") {
        const double mean = ((*rows)[1].test_performance + (*rows)[3].test_performance) / 2;
        gain_sum += (mean - 0.5) / 0.5;
      }
    }
    // The zero-shot route of the task came from the checkpoint's router and its vector.
    EXPECT_TRUE(fs::exists(absl::StrCat(*root_, "/zs_moe/", task, "/init/task_routes.npy")));
    fs::create_directories(baseline + "/" + task);
    std::ofstream(baseline + "/" + task + "/result.csv")
        << ",prefix,lr,bsz,dev_performance,test_performance\n0," << (*prefixes)[0]
        << "_best,0.0,0,0.5,0.5\n";
  }
  ASSERT_EQ(RunCommand(absl::StrCat("tools/aggregate_results --results=", *root_,
                                    "/zs_moe --baseline=", baseline),
                       &out),
            0)
      << out;
  const double arg = 100 * gain_sum / split_->test.size();
  EXPECT_TRUE(absl::StrContains(
      out, absl::StrFormat("| **ARG over %d tasks** | | | %+.2f%% |", split_->test.size(), arg)))
      << out;
  ASSERT_EQ(RunCommand(absl::StrCat("tools/aggregate_results --results=", *root_, "/zs_dense"),
                       &out),
            0)
      << out;
  for (const std::string& task : split_->test) EXPECT_TRUE(absl::StrContains(out, task)) << out;
}

TEST_F(EvaluateTasksToolTest, HeldOutTaskWithoutAVectorIsAnError) {
  std::string out;
  // The checkpoint's own table holds only the vectors it was given at training: all tasks here,
  // so point it at a table of the train tasks only.
  const std::string train_only = *root_ + "/train_vectors";
  absl::StatusOr<TaskTable> all = TaskTable::Load(Vectors());
  ASSERT_TRUE(all.ok());
  std::vector<int64_t> rows;
  for (const std::string& task : split_->train) rows.push_back(*all->Id(task));
  absl::StatusOr<TaskTable> table =
      TaskTable::Create(split_->train, all->vectors().index_select(0, at::tensor(rows)));
  ASSERT_TRUE(table.ok());
  fs::create_directories(train_only);
  ASSERT_TRUE(table->Save(train_only).ok());
  EXPECT_EQ(RunCommand(Evaluate("moe", "zs_missing", "--task_vectors=" + train_only), &out), 1) << out;
  EXPECT_TRUE(absl::StrContains(out, absl::StrCat("task '", split_->test[0], "' has no vector")))
      << out;
  EXPECT_FALSE(fs::exists(absl::StrCat(*root_, "/zs_missing/", split_->test[0], "/result.csv")));
  EXPECT_EQ(RunCommand(Evaluate("moe", "zs_both", "--task_vectors=" + Vectors() +
                                               " --task_embedding=text_emb"),
                &out),
            1)
      << out;
}

TEST_F(EvaluateTasksToolTest, VectorsFromANamedMethodAreComputedAndUsed) {
  std::string out;
  ASSERT_EQ(RunCommand(Evaluate("moe", "zs_random", "--task_embedding=random --embedding_dim=8"
                                             " --max_prefixes=1"),
                &out),
            0)
      << out;
  absl::StatusOr<TaskTable> table = TaskTable::Load(*root_ + "/zs_random/task_vectors");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->names(), split_->test);
  EXPECT_TRUE(fs::exists(absl::StrCat(*root_, "/zs_random/", split_->test[0], "/result.csv")));
}

// --expert_mask switches experts off in the routes taken from the checkpoint's router (the
// original's get_routes(override)); a bad mask is an error naming the item.
TEST_F(EvaluateTasksToolTest, ExpertMaskSwitchesExpertsOffInTheInheritedRoutes) {
  std::string out;
  ASSERT_EQ(RunCommand(Evaluate("moe", "zs_masked",
                                "--task_vectors=" + Vectors() + " --expert_mask=*:0 --max_prefixes=1"),
                       &out),
            0)
      << out;
  for (const std::string& task : split_->test) {
    absl::StatusOr<at::Tensor> routes =
        ReadNpy(absl::StrCat(*root_, "/zs_masked/", task, "/init/task_routes.npy"));
    ASSERT_TRUE(routes.ok()) << routes.status();
    ASSERT_EQ(routes->size(2), 2);
    EXPECT_TRUE(at::equal(routes->select(2, 0), at::zeros({1, 2}))) << task;
    EXPECT_TRUE(at::equal(routes->select(2, 1), at::ones({1, 2}))) << task;
  }
  EXPECT_EQ(RunCommand(Evaluate("moe", "zs_bad_mask",
                                "--task_vectors=" + Vectors() + " --expert_mask=enc9:0"),
                       &out),
            1)
      << out;
  EXPECT_TRUE(absl::StrContains(out, "enc9")) << out;
}

}  // namespace
}  // namespace taskmoe
