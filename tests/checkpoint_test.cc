#include "moe/train/checkpoint.h"

#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>

#include <gtest/gtest.h>

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

TEST(Checkpoint, ModuleTensorsListsParametersAndBuffers) {
  torch::nn::Linear linear(2, 2);
  linear->register_buffer("counter", at::zeros({1}));
  const TensorMap tensors = ModuleTensors(*linear);
  EXPECT_EQ(tensors.size(), 3u);
  EXPECT_TRUE(tensors.count("weight") && tensors.count("bias") && tensors.count("counter"));
}

}  // namespace
}  // namespace taskmoe
