#include "moe/train/checkpoint.h"

#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <string>

#include "absl/strings/match.h"

namespace taskmoe {
namespace {

std::string TempPath(const std::string& name) {
  return std::string(getenv("TEST_TMPDIR")) + "/" + name;
}

TEST(TrainerState, JsonRoundTrip) {
  TrainerState state;
  state.step = 120;
  state.best_dev_performance = 0.625;
  state.best_step = 100;
  state.history = {{50, 3.5, 3.25, 0.5}, {100, 2.5, 2.75, 0.625}};
  state.data_position = {{"epoch", 2}, {"batch", 17}};
  auto again = TrainerStateFromJson(TrainerStateToJson(state), "state.json");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->step, 120);
  EXPECT_EQ(again->best_step, 100);
  EXPECT_DOUBLE_EQ(again->best_dev_performance, 0.625);
  ASSERT_EQ(again->history.size(), 2u);
  EXPECT_DOUBLE_EQ(again->history[1].dev_loss, 2.75);
  EXPECT_EQ(again->data_position.at("batch"), 17);
}

TEST(TrainerState, MalformedJsonNamesTheFile) {
  auto state = TrainerStateFromJson("{\"step\": 3}", "ckpt/trainer_state.json");
  ASSERT_FALSE(state.ok());
  EXPECT_TRUE(absl::StrContains(state.status().message(), "ckpt/trainer_state.json"));
}

TEST(TrainerState, CountersOutOfRangeAreErrorsNamingTheField) {
  TrainerState state;
  state.step = 8;
  state.best_step = 4;
  state.history = {{4, 3.5, 3.25, 0.5}, {8, 2.5, 2.75, 0.625}};
  state.data_position = {{"epoch", 1}};
  const std::string valid = TrainerStateToJson(state);
  ASSERT_TRUE(TrainerStateFromJson(valid, "s.json").ok());
  struct Case {
    std::string from, to, expected;
  };
  for (const Case& c :
       {Case{"\"step\": 8", "\"step\": -3",
             "s.json: field 'step' must be an integer in [0, 2147483647], got -3"},
        Case{"\"step\": 8", "\"step\": 1e9",
             "s.json: field 'step' must be an integer in [0, 2147483647], got 1000000000.0"},
        Case{"\"best_step\": 4", "\"best_step\": 9",
             "s.json: field 'best_step' must be an integer in [0, 8], got 9"},
        Case{"\"epoch\": 1", "\"epoch\": -1",
             "s.json: data_position: field 'epoch' must be an integer in [0, "
             "9223372036854775807], got -1"}}) {
    std::string text = valid;
    const size_t at = text.rfind(c.from);  // the top-level step comes after the history's
    ASSERT_NE(at, std::string::npos) << c.from;
    text.replace(at, c.from.size(), c.to);
    const absl::StatusOr<TrainerState> parsed = TrainerStateFromJson(text, "s.json");
    ASSERT_FALSE(parsed.ok()) << c.to;
    EXPECT_EQ(parsed.status().message(), c.expected);
  }
}

TEST(Checkpoint, RngStateRestoresTheSameDraws) {
  const at::Tensor state = CpuRngState();
  const at::Tensor first = at::randn({5});
  SetCpuRngState(state);
  EXPECT_TRUE(at::equal(at::randn({5}), first));
}

TEST(Checkpoint, OptimizerMomentsSurviveSaveAndLoad) {
  torch::nn::Linear a(3, 2), b(3, 2);
  b->weight.data().copy_(a->weight.data());
  b->bias.data().copy_(a->bias.data());
  torch::optim::AdamW adam_a(a->parameters(), torch::optim::AdamWOptions(0.1));
  torch::optim::AdamW adam_b(b->parameters(), torch::optim::AdamWOptions(0.1));
  const at::Tensor x = at::randn({4, 3});
  auto step = [&](torch::nn::Linear& m, torch::optim::AdamW& opt) {
    opt.zero_grad();
    m->forward(x).pow(2).sum().backward();
    opt.step();
  };
  step(a, adam_a);
  step(b, adam_b);
  ASSERT_TRUE(SaveOptimizer(adam_a, TempPath("adam.pt")).ok());
  // A fresh optimiser with the loaded moments takes exactly the step the original takes.
  torch::optim::AdamW adam_c(b->parameters(), torch::optim::AdamWOptions(0.1));
  ASSERT_TRUE(LoadOptimizer(TempPath("adam.pt"), adam_c).ok());
  step(a, adam_a);
  step(b, adam_c);
  EXPECT_TRUE(at::equal(a->weight, b->weight));
  EXPECT_TRUE(at::equal(a->bias, b->bias));
  EXPECT_FALSE(LoadOptimizer(TempPath("missing.pt"), adam_c).ok());
}

TEST(Checkpoint, OptimizerStateOnAFullDiskIsAnErrorAndLeavesNoFile) {
  torch::nn::Linear linear(64, 64);
  torch::optim::AdamW adam(linear->parameters(), torch::optim::AdamWOptions(0.1));
  linear->forward(at::randn({2, 64})).sum().backward();
  adam.step();
  const std::string path = TempPath("full_disk_optimizer.pt");
  // A disk that takes 4 KiB more: writes past it fail with EFBIG instead of a signal.
  struct rlimit before;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &before), 0);
  void (*previous_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = before;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  const absl::Status status = SaveOptimizer(adam, path);
  setrlimit(RLIMIT_FSIZE, &before);
  signal(SIGXFSZ, previous_handler);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "cannot write " + path + ": File too large"))
      << status;
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(SaveOptimizer(adam, path).ok());
}

TEST(Checkpoint, ModuleTensorsListsParametersAndBuffers) {
  torch::nn::Linear linear(2, 2);
  linear->register_buffer("counter", at::zeros({1}));
  const TensorMap tensors = ModuleTensors(*linear);
  EXPECT_EQ(tensors.size(), 3u);
  EXPECT_TRUE(tensors.count("weight") && tensors.count("bias") && tensors.count("counter"));
}

}  // namespace
}  // namespace taskmoe
