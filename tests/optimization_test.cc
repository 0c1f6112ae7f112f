#include "moe/optimization.h"

#include <cmath>

#include <gtest/gtest.h>

namespace taskmoe {
namespace {

TEST(LinearWarmupDecay, MatchesTransformersSchedule) {
  // warmup 10 of 110 steps: 0 -> 1 linearly, then 1 -> 0 linearly over 100 steps.
  EXPECT_DOUBLE_EQ(LinearWarmupDecay(0, 10, 110), 0.0);
  EXPECT_DOUBLE_EQ(LinearWarmupDecay(5, 10, 110), 0.5);
  EXPECT_DOUBLE_EQ(LinearWarmupDecay(10, 10, 110), 1.0);
  EXPECT_DOUBLE_EQ(LinearWarmupDecay(60, 10, 110), 0.5);
  EXPECT_DOUBLE_EQ(LinearWarmupDecay(110, 10, 110), 0.0);
  EXPECT_DOUBLE_EQ(LinearWarmupDecay(200, 10, 110), 0.0);
  EXPECT_DOUBLE_EQ(LinearWarmupDecay(0, 0, 4), 1.0);
}

TEST(TakesWeightDecay, ExcludesBiasesAndLayerNormWeights) {
  EXPECT_TRUE(TakesWeightDecay("model.encoder.layers.0.fc1.weight"));
  EXPECT_TRUE(TakesWeightDecay("model.shared.weight"));
  EXPECT_FALSE(TakesWeightDecay("model.encoder.layers.0.fc1.bias"));
  EXPECT_FALSE(TakesWeightDecay("model.encoder.layers.0.self_attn_layer_norm.weight"));
  EXPECT_FALSE(TakesWeightDecay("model.decoder.layers.1.final_layer_norm.weight"));
  EXPECT_FALSE(TakesWeightDecay("model.encoder.layernorm_embedding.weight"));
}

TEST(ClipGradNorm, ScalesToMaxNormAndReturnsOriginalNorm) {
  at::Tensor a = at::zeros({2}).set_requires_grad(true);
  at::Tensor b = at::zeros({1}).set_requires_grad(true);
  a.mutable_grad() = at::tensor({3.0f, 0.0f});
  b.mutable_grad() = at::tensor({4.0f});
  EXPECT_NEAR(ClipGradNorm({a, b}, 1.0), 5.0, 1e-6);
  const double after = std::sqrt(a.grad().pow(2).sum().item<double>() +
                                 b.grad().pow(2).sum().item<double>());
  EXPECT_NEAR(after, 1.0, 1e-5);
  EXPECT_NEAR(a.grad()[0].item<double>() / b.grad()[0].item<double>(), 0.75, 1e-6);
  // A norm below the limit is left alone.
  EXPECT_NEAR(ClipGradNorm({a, b}, 10.0), 1.0, 1e-5);
  EXPECT_NEAR(b.grad()[0].item<double>(), 0.8, 1e-5);
}

TEST(GroupedAdamW, GroupsByFamilyAndDecayWithScheduledLr) {
  TrainableParameters params;
  params.model = {{"fc1.weight", at::ones({2}).set_requires_grad(true)},
                  {"fc1.bias", at::ones({2}).set_requires_grad(true)}};
  params.router = {{"router.0.weight", at::ones({2}).set_requires_grad(true)}};
  params.task_vectors = {at::ones({3, 2}).set_requires_grad(true)};
  OptimizerOptions options;
  options.lr = 1e-5;
  options.router_lr = 1e-3;
  options.task_vector_lr = 1e-2;
  GroupedAdamW adam = MakeGroupedAdamW(params, options);
  auto& groups = adam.optimizer->param_groups();
  ASSERT_EQ(groups.size(), 4u);  // model decay, model no-decay, router decay, task vectors
  auto opts = [&](int i) { return static_cast<torch::optim::AdamWOptions&>(groups[i].options()); };
  EXPECT_DOUBLE_EQ(opts(0).weight_decay(), 0.01);
  EXPECT_DOUBLE_EQ(opts(1).weight_decay(), 0.0);
  EXPECT_DOUBLE_EQ(opts(2).lr(), 1e-3);
  adam.SetLrFactor(0.5);
  EXPECT_DOUBLE_EQ(opts(0).lr(), 0.5e-5);
  EXPECT_DOUBLE_EQ(opts(3).lr(), 0.5e-2);
  EXPECT_EQ(adam.Parameters().size(), 4u);
  // One AdamW step moves every parameter by about lr in the gradient's sign direction.
  for (at::Tensor p : adam.Parameters()) p.mutable_grad() = at::ones_like(p);
  adam.optimizer->step();
  EXPECT_NEAR(params.router[0].second[0].item<double>(), 1.0 - 0.5e-3 - 0.5e-3 * 0.01, 1e-6);
  EXPECT_NEAR(params.model[1].second[0].item<double>(), 1.0 - 0.5e-5, 1e-7);
}

}  // namespace
}  // namespace taskmoe
