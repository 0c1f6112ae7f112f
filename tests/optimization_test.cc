#include "moe/model/optimization.h"

#include <cmath>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/serialize.h>

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
  EXPECT_EQ(adam.group_names,
            (std::vector<std::string>{"model", "model_no_decay", "router", "task_vectors"}));
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


// The fused step must be torch's AdamW: same updates over several steps with changing lr and
// gradients (parameters larger than one work span, decay and no-decay groups), and the same
// state, so a checkpoint written by one loads into the other.
TEST(GroupedAdamW, FusedStepEqualsTorchAdamW) {
  torch::manual_seed(3);
  TrainableParameters fused_params;
  fused_params.model = {{"fc1.weight", at::randn({300, 200})}, {"fc1.bias", at::randn({7})}};
  fused_params.router = {{"router.0.weight", at::randn({5, 3})}};
  fused_params.task_vectors = {at::randn({4, 6})};
  std::vector<at::Tensor> reference_params;
  for (auto* named : {&fused_params.model, &fused_params.router}) {
    for (auto& [name, p] : *named) {
      reference_params.push_back(p.clone());
      p.set_requires_grad(true);
    }
  }
  reference_params.push_back(fused_params.task_vectors[0].clone());
  fused_params.task_vectors[0].set_requires_grad(true);
  for (at::Tensor& p : reference_params) p.set_requires_grad(true);

  OptimizerOptions options;
  GroupedAdamW fused = MakeGroupedAdamW(fused_params, options);
  // The same groups, in the same order, over the reference copies.
  std::vector<torch::optim::OptimizerParamGroup> groups;
  const auto group = [&](std::vector<at::Tensor> params, double lr, double decay) {
    auto group_options = std::make_unique<torch::optim::AdamWOptions>(lr);
    group_options->weight_decay(decay).eps(options.adam_epsilon);
    groups.emplace_back(std::move(params), std::move(group_options));
  };
  group({reference_params[0]}, options.lr, options.weight_decay);
  group({reference_params[1]}, options.lr, 0.0);
  group({reference_params[2]}, options.router_lr, options.weight_decay);
  group({reference_params[3]}, options.task_vector_lr, options.weight_decay);
  torch::optim::AdamW reference(std::move(groups), torch::optim::AdamWOptions(options.lr));

  const std::vector<at::Tensor> fused_all = fused.Parameters();
  ASSERT_EQ(fused_all.size(), reference_params.size());
  for (int step = 0; step < 4; ++step) {
    const double factor = 0.25 * (step + 1);
    fused.SetLrFactor(factor);
    for (size_t g = 0; g < reference.param_groups().size(); ++g) {
      auto& group_options =
          static_cast<torch::optim::AdamWOptions&>(reference.param_groups()[g].options());
      group_options.lr(fused.base_lrs[g] * factor);
    }
    for (size_t i = 0; i < fused_all.size(); ++i) {
      const at::Tensor grad = at::randn_like(fused_all[i]) * static_cast<double>(i + 1);
      fused_all[i].mutable_grad() = grad.clone();
      reference_params[i].mutable_grad() = grad.clone();
    }
    fused.optimizer->step();
    reference.step();
    for (size_t i = 0; i < fused_all.size(); ++i) {
      EXPECT_TRUE(at::allclose(fused_all[i], reference_params[i], 1e-6, 1e-7))
          << "parameter " << i << " after step " << step << ": max difference "
          << (fused_all[i] - reference_params[i]).abs().max().item<double>();
    }
  }

  // The fused optimiser's state loads into torch's AdamW and yields the same next step.
  std::stringstream stream;
  {
    torch::serialize::OutputArchive archive;
    fused.optimizer->save(archive);
    archive.save_to(stream);
  }
  torch::optim::AdamW restored(reference.param_groups(), torch::optim::AdamWOptions(options.lr));
  torch::serialize::InputArchive input;
  input.load_from(stream);
  restored.load(input);
  for (size_t i = 0; i < fused_all.size(); ++i) {
    reference_params[i].mutable_grad() = at::ones_like(reference_params[i]);
    fused_all[i].mutable_grad() = at::ones_like(fused_all[i]);
  }
  restored.step();
  fused.optimizer->step();
  for (size_t i = 0; i < fused_all.size(); ++i) {
    EXPECT_TRUE(at::allclose(fused_all[i], reference_params[i], 1e-6, 1e-7)) << "parameter " << i;
  }
}

TEST(ClipFactor, IsClipGradNormsScale) {
  EXPECT_DOUBLE_EQ(ClipFactor(5.0, 1.0), 1.0 / (5.0 + 1e-6));
  EXPECT_DOUBLE_EQ(ClipFactor(0.5, 1.0), 1.0);  // below the limit: unchanged
  EXPECT_DOUBLE_EQ(ClipFactor(5.0, 0.0), 1.0);  // max_norm 0: no clipping
}

// Parameters of every group, two larger than one work span, in `dtype`.
TrainableParameters SomeParameters(at::ScalarType dtype) {
  torch::manual_seed(11);
  const auto make = [dtype](at::IntArrayRef shape) {
    return at::randn(shape).to(dtype).set_requires_grad(true);
  };
  TrainableParameters params;
  params.model = {{"fc1.weight", make({300, 200})}, {"fc1.bias", make({40000})}};
  params.router = {{"router.0.weight", make({5, 3})}};
  params.task_vectors = {make({4, 6})};
  return params;
}

// The step the trainer takes (the gradients' norm, then AdamW on the clipped gradients, which it
// leaves zeroed) equals clipping in place, torch's step and zeroing, bit for bit: with clipping,
// without (a large max_norm), and for dense float parameters (the fused pass) as for others
// (double here, as CUDA: torch's step).
TEST(GroupedAdamW, StepAndZeroGradientsEqualsClipStepAndZero) {
  for (const at::ScalarType dtype : {at::kFloat, at::kDouble}) {
    GroupedAdamW fused = MakeGroupedAdamW(SomeParameters(dtype), OptimizerOptions());
    GroupedAdamW reference = MakeGroupedAdamW(SomeParameters(dtype), OptimizerOptions());
    const std::vector<at::Tensor> fused_params = fused.Parameters();
    const std::vector<at::Tensor> reference_params = reference.Parameters();
    for (int step = 0; step < 3; ++step) {
      const double max_norm = step == 1 ? 1e9 : 1.0;
      for (size_t i = 0; i < fused_params.size(); ++i) {
        const at::Tensor grad = at::randn_like(fused_params[i]);
        fused_params[i].mutable_grad() = grad.clone();
        reference_params[i].mutable_grad() = grad.clone();
      }
      const double norm = GradNorm(fused_params);
      fused.StepAndZeroGradients(ClipFactor(norm, max_norm));
      EXPECT_EQ(ClipGradNorm(reference_params, max_norm), norm);
      reference.optimizer->step();
      for (size_t i = 0; i < fused_params.size(); ++i) {
        EXPECT_TRUE(at::equal(fused_params[i], reference_params[i]))
            << c10::toString(dtype) << " parameter " << i << " after step " << step;
        EXPECT_EQ(fused_params[i].grad().abs().max().item<double>(), 0.0)
            << c10::toString(dtype) << " gradient " << i << " after step " << step;
      }
    }
  }
}

// Gradients spread over many tensors, some larger than one work span: the norm and the scaled
// gradients equal torch's.
TEST(ClipGradNorm, EqualsTorchNormOverManyTensors) {
  torch::manual_seed(5);
  std::vector<at::Tensor> params;
  std::vector<at::Tensor> grads;
  for (int64_t size : {1, 100, 40000, 70000, 3}) {
    params.push_back(at::zeros({size}).set_requires_grad(true));
    grads.push_back(at::randn({size}));
    params.back().mutable_grad() = grads.back().clone();
  }
  params.push_back(at::zeros({2}).set_requires_grad(true));  // no gradient: skipped
  const double expected = at::cat(grads).norm(2).item<double>();
  EXPECT_NEAR(ClipGradNorm(params, 1.0), expected, 1e-4 * expected);
  for (size_t i = 0; i < grads.size(); ++i) {
    EXPECT_TRUE(at::allclose(params[i].grad(), grads[i] / (expected + 1e-6), 1e-5, 1e-7));
  }
  EXPECT_FALSE(params.back().grad().defined());
}

}  // namespace
}  // namespace taskmoe
