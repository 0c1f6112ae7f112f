// The "polytropon" routing plugin: a learned task x expert allocation, relaxed Bernoulli samples in
// training, the allocation normalised over the experts as the route, and its active-expert prior.
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moe/routing/routing.h"
#include "moe/routing/routing.pb.h"
#include "routing_plugins/polytropon/polytropon.pb.h"
#include "routing_plugins/router/router.h"

namespace taskmoe {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

const RoutingContext kContext = {ModelShape{/*encoder_layers=*/3, /*decoder_layers=*/2, /*experts=*/4},
                                 /*task_vector_dim=*/8, /*num_tasks=*/6};
constexpr int64_t kLayers = 5;
constexpr int64_t kExperts = 4;

absl::StatusOr<std::shared_ptr<RoutingPlugin>> Create(const PolytroponRoutingParams& params) {
  RoutingConfig config;
  config.set_plugin("polytropon");
  config.mutable_params()->PackFrom(params);
  return CreateRoutingPlugin(config, kContext);
}

std::shared_ptr<RoutingPlugin> MustCreate(const PolytroponRoutingParams& params) {
  absl::StatusOr<std::shared_ptr<RoutingPlugin>> plugin = Create(params);
  EXPECT_TRUE(plugin.ok()) << plugin.status();
  return plugin.ok() ? *plugin : nullptr;
}

PolytroponRoutingParams Shared() {
  PolytroponRoutingParams params;
  params.set_allocation(PolytroponRoutingParams::SHARED);
  return params;
}

PolytroponRoutingParams WithRouter() {
  PolytroponRoutingParams params;
  params.mutable_router()->set_hidden_dim(16);
  return params;
}

at::Tensor AllLayers(const RouteWeights& routes) { return at::cat({routes.encoder, routes.decoder}, 0); }

at::Tensor Routes(RoutingPlugin& plugin, const at::Tensor& task_ids, const at::Tensor& task_vectors) {
  return AllLayers(plugin.Route({task_ids, task_vectors, /*step=*/0}));
}

at::Tensor Routes(RoutingPlugin& plugin, const std::vector<int64_t>& task_ids) {
  const int64_t batch = static_cast<int64_t>(task_ids.size());
  return Routes(plugin, at::tensor(task_ids, at::kLong), at::randn({batch, kContext.task_vector_dim}));
}

at::Tensor AllocationLogits(RoutingPlugin& plugin) { return plugin.named_parameters()["allocation_logits"]; }

void SetAllocationLogits(RoutingPlugin& plugin, const at::Tensor& values) {
  at::NoGradGuard no_grad;
  AllocationLogits(plugin).copy_(values);
}

void ExpectDistributions(const at::Tensor& routes, int64_t batch) {
  ASSERT_EQ(routes.sizes().vec(), std::vector<int64_t>({kLayers, batch, kExperts}));
  EXPECT_TRUE((routes >= 0).all().item<bool>());
  EXPECT_TRUE(at::allclose(routes.sum(-1), at::ones({kLayers, batch}, routes.options()), 1e-5, 1e-6));
}

TEST(PolytroponRoutingTest, RoutesAreDistributionsInTrainingAndEvaluation) {
  for (const PolytroponRoutingParams& params : {PolytroponRoutingParams(), Shared(), WithRouter()}) {
    std::shared_ptr<RoutingPlugin> plugin = MustCreate(params);
    ASSERT_NE(plugin, nullptr);
    plugin->train();
    ExpectDistributions(Routes(*plugin, {0, 3, 3, 5}), 4);
    plugin->eval();
    ExpectDistributions(Routes(*plugin, {0, 3, 3, 5}), 4);
  }
}

TEST(PolytroponRoutingTest, TableIsStateStartingAtInitProbability) {
  PolytroponRoutingParams params;
  params.set_init_probability(0.2);
  std::shared_ptr<RoutingPlugin> per_layer = MustCreate(params);
  params.set_allocation(PolytroponRoutingParams::SHARED);
  std::shared_ptr<RoutingPlugin> shared = MustCreate(params);
  for (const auto& [plugin, shape] : {std::pair{per_layer, std::vector<int64_t>{6, kLayers, kExperts}},
                                      std::pair{shared, std::vector<int64_t>{6, kExperts}}}) {
    EXPECT_FALSE(plugin->RoutesDependOnTaskVectors());
    const at::Tensor logits = AllocationLogits(*plugin);
    ASSERT_TRUE(logits.defined());
    EXPECT_TRUE(logits.requires_grad());
    EXPECT_EQ(logits.sizes().vec(), shape);
    EXPECT_TRUE(at::allclose(logits.sigmoid(), at::full_like(logits, 0.2)));
    std::vector<std::string> names;
    for (const auto& [name, tensor] : RoutingState(*plugin)) names.push_back(name);
    EXPECT_EQ(names, std::vector<std::string>{"allocation_logits"});
  }
}

TEST(PolytroponRoutingTest, CheckpointRestoresTheAllocation) {
  std::shared_ptr<RoutingPlugin> trained = MustCreate(PolytroponRoutingParams());
  SetAllocationLogits(*trained, at::randn({6, kLayers, kExperts}));
  std::map<std::string, at::Tensor> state;
  for (const auto& [name, tensor] : RoutingState(*trained)) state[name] = tensor;
  std::shared_ptr<RoutingPlugin> restored = MustCreate(PolytroponRoutingParams());
  ASSERT_TRUE(LoadRoutingState(state, *restored).ok());
  trained->eval();
  restored->eval();
  EXPECT_TRUE(at::equal(Routes(*trained, {1, 4}), Routes(*restored, {1, 4})));
}

TEST(PolytroponRoutingTest, SharedAllocationRoutesEveryLayerAlike) {
  std::shared_ptr<RoutingPlugin> plugin = MustCreate(Shared());
  SetAllocationLogits(*plugin, at::randn({6, kExperts}));
  for (const bool training : {true, false}) {
    plugin->train(training);
    const at::Tensor routes = Routes(*plugin, {0, 1, 2});
    for (int64_t layer = 1; layer < kLayers; ++layer) {
      EXPECT_TRUE(at::equal(routes[layer], routes[0])) << "layer " << layer << " training " << training;
    }
  }
}

TEST(PolytroponRoutingTest, TrainingSamplesAreRandom) {
  std::shared_ptr<RoutingPlugin> plugin = MustCreate(PolytroponRoutingParams());
  plugin->train();
  EXPECT_FALSE(at::allclose(Routes(*plugin, {0, 1}), Routes(*plugin, {0, 1})));
}

TEST(PolytroponRoutingTest, EvaluationIsTheNormalisedSigmoidOfTheAllocation) {
  std::shared_ptr<RoutingPlugin> plugin = MustCreate(PolytroponRoutingParams());
  const at::Tensor logits = at::randn({6, kLayers, kExperts}) * 3;
  SetAllocationLogits(*plugin, logits);
  plugin->eval();
  const at::Tensor ids = at::tensor({4, 0, 4, 2}, at::kLong);
  const at::Tensor routes = Routes(*plugin, ids, at::randn({4, kContext.task_vector_dim}));
  const at::Tensor z = logits.sigmoid().index_select(0, ids).transpose(0, 1);
  EXPECT_TRUE(at::allclose(routes, z / z.sum(-1, true), 1e-5, 1e-7));
  EXPECT_TRUE(at::equal(routes, Routes(*plugin, ids, at::randn({4, kContext.task_vector_dim}))));
  // The route views show the same evaluation routes.
  const RouteViews views = TaskRouteViews(*plugin, at::randn({6, kContext.task_vector_dim}), 0);
  EXPECT_TRUE(at::allclose(views.soft, logits.sigmoid() / logits.sigmoid().sum(-1, true), 1e-5, 1e-7));
}

TEST(PolytroponRoutingTest, BinaryEvaluationWeighsActiveExpertsEquallyOrTakesTheArgmax) {
  PolytroponRoutingParams params = Shared();
  params.set_binary_evaluation(true);
  std::shared_ptr<RoutingPlugin> plugin = MustCreate(params);
  at::Tensor logits = at::full({6, kExperts}, -1.0);
  logits[0] = at::tensor({1.0, -1.0, 0.0, -2.0});   // sigmoid >= 0.5: experts 0 and 2 (logit 0)
  logits[1] = at::tensor({-1.0, -0.2, -3.0, -2.0});  // none active: argmax expert 1
  SetAllocationLogits(*plugin, logits);
  plugin->eval();
  const at::Tensor routes = Routes(*plugin, {0, 1});
  for (int64_t layer = 0; layer < kLayers; ++layer) {
    EXPECT_TRUE(at::equal(routes[layer][0], at::tensor({0.5f, 0.0f, 0.5f, 0.0f}))) << routes[layer][0];
    EXPECT_TRUE(at::equal(routes[layer][1], at::tensor({0.0f, 1.0f, 0.0f, 0.0f}))) << routes[layer][1];
  }
}

TEST(PolytroponRoutingTest, GradientsReachTheBatchTasksAllocation) {
  std::shared_ptr<RoutingPlugin> plugin = MustCreate(PolytroponRoutingParams());
  plugin->train();
  (Routes(*plugin, {1, 3, 3}) * at::randn({kLayers, 3, kExperts})).sum().backward();
  const at::Tensor grad = AllocationLogits(*plugin).grad();
  ASSERT_TRUE(grad.defined());
  EXPECT_GT(grad[1].abs().sum().item<double>(), 0.0);
  EXPECT_GT(grad[3].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(grad[0].abs().sum().item<double>(), 0.0);
}

// KL(Bernoulli(sigmoid(logits)) || Bernoulli(q)) summed over all entries, from its definition.
at::Tensor KlSum(const at::Tensor& logits, double q) {
  const at::Tensor p = logits.sigmoid();
  return (p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()).sum();
}

constexpr double kLambda = 0.25;  // exact in the params message's float
constexpr double kExpectedActive = 1.5;

// Gradients of sum(routes * weights) on the plugin's parameters, under a fixed seed so every call
// draws the same relaxed-Bernoulli noise; the plugin runs in double for a tight comparison.
std::vector<at::Tensor> ObjectiveGradients(PolytroponRoutingParams params, double lambda,
                                           const std::function<void(RoutingPlugin&)>& init,
                                           const at::Tensor& ids, const at::Tensor& vectors, bool training) {
  params.set_expected_active_experts(kExpectedActive);
  params.set_prior_weight(lambda);
  std::shared_ptr<RoutingPlugin> plugin = MustCreate(params);
  plugin->to(at::kDouble);
  init(*plugin);
  plugin->train(training);
  at::manual_seed(11);
  const at::Tensor weights = at::randn({kLayers, ids.size(0), kExperts}, at::kDouble);
  (Routes(*plugin, ids, vectors) * weights).sum().backward();
  std::vector<at::Tensor> grads;
  for (const at::Tensor& parameter : plugin->parameters()) grads.push_back(parameter.grad());
  return grads;
}

TEST(PolytroponRoutingTest, PriorAddsTheGradientOfItsKlTermOncePerBatchTask) {
  const at::Tensor ids = at::tensor({0, 2, 2, 5}, at::kLong);  // task 2 counts once
  const at::Tensor vectors = at::randn({4, kContext.task_vector_dim}, at::kDouble);
  for (const PolytroponRoutingParams& params : {PolytroponRoutingParams(), Shared()}) {
    const at::Tensor logits = params.allocation() == PolytroponRoutingParams::SHARED
                                  ? at::randn({6, kExperts}, at::kDouble)
                                  : at::randn({6, kLayers, kExperts}, at::kDouble);
    const auto init = [&](RoutingPlugin& plugin) { SetAllocationLogits(plugin, logits); };
    const at::Tensor without = ObjectiveGradients(params, 0.0, init, ids, vectors, true)[0];
    const at::Tensor with = ObjectiveGradients(params, kLambda, init, ids, vectors, true)[0];
    const at::Tensor leaf = logits.clone().requires_grad_(true);
    const at::Tensor rows = leaf.index_select(0, at::tensor({0, 2, 5}, at::kLong));
    const at::Tensor expected = torch::autograd::grad({kLambda * KlSum(rows, kExpectedActive / kExperts)}, {leaf})[0];
    EXPECT_TRUE(at::allclose(with - without, expected, 0, 1e-9)) << (with - without - expected).abs().max();
    EXPECT_GT(expected.abs().sum().item<double>(), 0.0);
    // In evaluation the prior is off.
    EXPECT_TRUE(at::allclose(ObjectiveGradients(params, kLambda, init, ids, vectors, false)[0],
                             ObjectiveGradients(params, 0.0, init, ids, vectors, false)[0], 0, 1e-12));
  }
}

TEST(PolytroponRoutingTest, RouterPriorCountsEveryExampleAndLayer) {
  const at::Tensor ids = at::tensor({0, 2, 2}, at::kLong);
  const at::Tensor vectors = at::randn({3, kContext.task_vector_dim}, at::kDouble);
  std::map<std::string, at::Tensor> state;
  std::shared_ptr<RouterNetworkImpl> router;
  // Every plugin starts from the same router weights, kept from the first.
  const auto init = [&](RoutingPlugin& plugin) {
    if (state.empty()) {
      for (const auto& [name, tensor] : RoutingState(plugin)) state[name] = tensor.detach().clone();
      router = std::dynamic_pointer_cast<RouterNetworkImpl>(plugin.named_children()["router"]);
    }
    ASSERT_TRUE(LoadRoutingState(state, plugin).ok());
  };
  const std::vector<at::Tensor> without = ObjectiveGradients(WithRouter(), 0.0, init, ids, vectors, true);
  const std::vector<at::Tensor> with = ObjectiveGradients(WithRouter(), kLambda, init, ids, vectors, true);
  ASSERT_NE(router, nullptr);
  // The first plugin's router, unchanged (no optimiser step): its logits are the plugin's, as
  // init_probability 0.5 adds no offset.
  const std::vector<at::Tensor> parameters = router->parameters();
  const std::vector<at::Tensor> expected = torch::autograd::grad(
      {kLambda * KlSum(router->forward(vectors), kExpectedActive / kExperts)}, parameters);
  ASSERT_EQ(with.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_TRUE(at::allclose(with[i] - without[i], expected[i], 0, 1e-9))
        << i << ": " << (with[i] - without[i] - expected[i]).abs().max() << " of " << expected[i].abs().max();
  }
}

TEST(PolytroponRoutingTest, RouterRoutesFromTaskVectors) {
  std::shared_ptr<RoutingPlugin> plugin = MustCreate(WithRouter());
  EXPECT_TRUE(plugin->RoutesDependOnTaskVectors());
  std::vector<std::string> names;
  for (const auto& [name, tensor] : RoutingState(*plugin)) names.push_back(name);
  EXPECT_THAT(names, Not(Contains("allocation_logits")));
  plugin->eval();
  const at::Tensor vector = at::randn({1, kContext.task_vector_dim});
  const at::Tensor ids = at::tensor({0, 1, 1}, at::kLong);
  // The task id plays no part: the same vector routes alike under another id, another vector not.
  const at::Tensor routes = Routes(*plugin, ids, at::cat({vector, vector, at::randn_like(vector)}));
  EXPECT_TRUE(at::allclose(routes.select(1, 0), routes.select(1, 1)));
  EXPECT_FALSE(at::allclose(routes.select(1, 1), routes.select(1, 2)));
  // Training reaches the task vectors and the router.
  plugin->train();
  const at::Tensor vectors = at::randn({3, kContext.task_vector_dim}).requires_grad_(true);
  (Routes(*plugin, ids, vectors) * at::randn({kLayers, 3, kExperts})).sum().backward();
  EXPECT_GT(vectors.grad().abs().sum().item<double>(), 0.0);
  for (const auto& parameter : plugin->named_parameters()) {
    ASSERT_TRUE(parameter.value().grad().defined()) << parameter.key();
  }
}

TEST(PolytroponRoutingTest, InvalidParamsNameTheField) {
  const std::vector<std::pair<std::function<void(PolytroponRoutingParams&)>, std::string>> cases = {
      {[](PolytroponRoutingParams& p) { p.set_init_probability(0); }, "init_probability must be in (0, 1)"},
      {[](PolytroponRoutingParams& p) { p.set_init_probability(1); }, "init_probability must be in (0, 1)"},
      {[](PolytroponRoutingParams& p) { p.set_temperature(0); }, "temperature must be > 0"},
      {[](PolytroponRoutingParams& p) { p.set_expected_active_experts(4.5); },
       "expected_active_experts must be 0 (off) or in (0, 4]"},
      {[](PolytroponRoutingParams& p) { p.set_expected_active_experts(-1); }, "expected_active_experts"},
      {[](PolytroponRoutingParams& p) { p.set_prior_weight(-0.1); }, "prior_weight must be finite and >= 0"},
      {[](PolytroponRoutingParams& p) { p.set_prior_weight(1); }, "prior_weight > 0 needs expected_active_experts"},
      {[](PolytroponRoutingParams& p) {
         p.set_allocation(PolytroponRoutingParams::SHARED);
         p.mutable_router();
       },
       "allocation must be PER_LAYER with router"},
      {[](PolytroponRoutingParams& p) { p.mutable_router()->set_hidden_dim(0); }, "router: hidden_dim"},
  };
  for (const auto& [mutate, message] : cases) {
    PolytroponRoutingParams params;
    mutate(params);
    const absl::Status status = Create(params).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << message;
    EXPECT_THAT(status.message(), HasSubstr(message));
  }
  PolytroponRoutingParams all_experts;
  all_experts.set_expected_active_experts(kExperts);
  all_experts.set_prior_weight(1);
  EXPECT_TRUE(Create(all_experts).ok());
}

}  // namespace
}  // namespace taskmoe
