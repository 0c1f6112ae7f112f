// Experts that run concurrently on two intra-op threads (moe/model/expert_jobs.h) against the
// sequential run, and their reproducibility: gradients summed in job order, dropout seeded per job.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <glog/logging.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include <utility>
#include <vector>

#include "moe/model/bart.h"
#include "moe/model/moe_layers.h"
#include "moe/model/moe_model.h"
#include "tests/moe_fixture.h"

namespace taskmoe {
namespace {

using testing::Batch;
using testing::IntraOpThreads;
using testing::MaxAbsDiff;
using testing::RandomBatch;
using testing::RandomHardRoutes;
using testing::UsedConcurrentExperts;
using testing::TinyConfig;

// A tiny MoE model with a batch of 6 and routes for it: soft on the encoder (every expert runs),
// hard on the decoder (each example one expert).
struct MixedRouteCase {
  MoeBart moe;
  Batch batch;
  at::Tensor encoder_routes;
  at::Tensor decoder_routes;
};
MixedRouteCase MakeMixedRouteCase(const BartConfig& config) {
  absl::StatusOr<MoeBart> moe = MoeBart::Create(config, MoeOptions());
  CHECK(moe.ok()) << moe.status();
  Batch batch = RandomBatch(config, 6, 8, 5);
  at::Tensor encoder_routes = at::softmax(at::randn({3, 6, 3}), -1);
  return {*std::move(moe), std::move(batch), std::move(encoder_routes), RandomHardRoutes(2, 6, 3)};
}

// With two intra-op threads the experts run concurrently (forward and backward) on worker
// threads; outputs and gradients equal the sequential run.
TEST(ConcurrentExpertsTest, EqualTheSequentialRunWithGradients) {
  torch::manual_seed(12);
  MixedRouteCase mixed = MakeMixedRouteCase(TinyConfig());
  BartForConditionalGeneration& model = mixed.moe.model();
  const Batch& batch = mixed.batch;
  const at::Tensor& encoder_routes = mixed.encoder_routes;
  const at::Tensor& decoder_routes = mixed.decoder_routes;

  struct Result {
    at::Tensor logits;
    at::Tensor encoder_route_grad;
    at::Tensor decoder_route_grad;
    std::vector<at::Tensor> parameter_grads;
    bool used_concurrent_experts = false;
  };
  const auto run = [&](int threads) {
    IntraOpThreads intra_op(threads);
    model->zero_grad();
    RouteWeights routes{encoder_routes.clone().requires_grad_(),
                        decoder_routes.clone().requires_grad_()};
    Result result;
    result.logits = model
                        ->Forward(batch.input_ids, batch.attention_mask, batch.decoder_input_ids,
                                  &routes)
                        .logits;
    result.used_concurrent_experts = UsedConcurrentExperts(result.logits);
    result.logits.logsumexp(-1).sum().backward();
    result.encoder_route_grad = routes.encoder.grad();
    result.decoder_route_grad = routes.decoder.grad();
    for (const auto& p : model->parameters()) {
      result.parameter_grads.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
    }
    return result;
  };
  const Result sequential = run(1);
  const Result concurrent = run(2);
  EXPECT_FALSE(sequential.used_concurrent_experts);
  ASSERT_TRUE(concurrent.used_concurrent_experts)
      << "two intra-op threads did not run experts concurrently";
  EXPECT_LT(MaxAbsDiff(concurrent.logits, sequential.logits), 1e-4);
  EXPECT_LT(MaxAbsDiff(concurrent.encoder_route_grad, sequential.encoder_route_grad), 1e-3);
  // Hard decoder routes: the exact straight-through gradient reaches every expert's weight.
  EXPECT_LT(MaxAbsDiff(concurrent.decoder_route_grad, sequential.decoder_route_grad), 1e-3);
  EXPECT_GT(sequential.decoder_route_grad.abs().min().item<double>(), 0.0);
  ASSERT_EQ(concurrent.parameter_grads.size(), sequential.parameter_grads.size());
  for (size_t i = 0; i < sequential.parameter_grads.size(); ++i) {
    const double scale = 1.0 + sequential.parameter_grads[i].abs().max().item<double>();
    EXPECT_LT(MaxAbsDiff(concurrent.parameter_grads[i], sequential.parameter_grads[i]) / scale,
              1e-4)
        << "parameter " << i;
  }
  // The encoder's soft routes use every expert: all their parameters got gradients.
  auto& layer = dynamic_cast<MoeEncoderLayerImpl&>(model->model->encoder->block(0));
  for (int64_t e = 0; e < layer.num_experts(); ++e) {
    EXPECT_GT(layer.expert(e).fc2->weight.grad().abs().sum().item<double>(), 0.0) << "expert " << e;
  }
}

// Concurrent experts' backward passes add their gradients to what .grad already holds, summed in
// job order: repeated passes from the same held gradients give the same result bit for bit,
// whichever of three threads finishes first, and the added part equals a pass from zero.
TEST(ConcurrentExpertsTest, AccumulateReproducibleGradients) {
  torch::manual_seed(13);
  MixedRouteCase mixed = MakeMixedRouteCase(TinyConfig());
  BartForConditionalGeneration& model = mixed.moe.model();
  const auto backward = [&]() {
    RouteWeights routes{mixed.encoder_routes, mixed.decoder_routes};
    const at::Tensor logits = model
                                  ->Forward(mixed.batch.input_ids, mixed.batch.attention_mask,
                                            mixed.batch.decoder_input_ids, &routes)
                                  .logits;
    ASSERT_TRUE(UsedConcurrentExperts(logits));
    logits.logsumexp(-1).sum().backward();
  };
  const auto gradients = [&]() {
    std::vector<at::Tensor> grads;
    for (const auto& p : model->parameters()) {
      grads.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
    }
    return grads;
  };
  IntraOpThreads intra_op(3);
  model->zero_grad();
  backward();
  const std::vector<at::Tensor> from_zero = gradients();
  const std::vector<at::Tensor> parameters = model->parameters();
  std::vector<at::Tensor> held;
  for (const auto& p : parameters) held.push_back(at::randn_like(p));
  const auto backward_from_held = [&]() {
    for (size_t i = 0; i < held.size(); ++i) parameters[i].mutable_grad() = held[i].clone();
    backward();
    return gradients();
  };
  const std::vector<at::Tensor> first = backward_from_held();
  for (int run = 0; run < 5; ++run) {
    const std::vector<at::Tensor> again = backward_from_held();
    for (size_t i = 0; i < first.size(); ++i) {
      EXPECT_TRUE(at::equal(again[i], first[i])) << "run " << run << ", parameter " << i;
    }
  }
  int64_t with_gradient = 0;
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_TRUE(at::allclose(first[i] - held[i], from_zero[i], 1e-5, 1e-6)) << "parameter " << i;
    with_gradient += from_zero[i].abs().sum().item<double>() > 0 ? 1 : 0;
  }
  EXPECT_GT(with_gradient, static_cast<int64_t>(first.size()) / 2);
}

// Dropout inside experts that run concurrently draws from generators seeded in job order, so a
// seeded training-mode pass is the same every time, whichever thread runs which job first.
TEST(ConcurrentExpertsTest, WithDropoutAreReproducible) {
  BartConfig config = TinyConfig();
  config.dropout = config.attention_dropout = config.activation_dropout = 0.3;
  torch::manual_seed(21);
  MixedRouteCase mixed = MakeMixedRouteCase(config);
  BartForConditionalGeneration& model = mixed.moe.model();
  const auto logits = [&]() {
    torch::manual_seed(4);
    RouteWeights routes{mixed.encoder_routes, mixed.decoder_routes};
    return model
        ->Forward(mixed.batch.input_ids, mixed.batch.attention_mask,
                  mixed.batch.decoder_input_ids, &routes)
        .logits;
  };
  IntraOpThreads intra_op(2);
  model->train();
  const at::Tensor first = logits();
  ASSERT_TRUE(UsedConcurrentExperts(first));
  for (int run = 0; run < 5; ++run) EXPECT_TRUE(at::equal(logits(), first)) << "run " << run;
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(at::equal(logits(), first)) << "without autograd";
  }
  model->eval();
  EXPECT_FALSE(at::allclose(logits(), first)) << "dropout was not active in training mode";
}

}  // namespace
}  // namespace taskmoe
