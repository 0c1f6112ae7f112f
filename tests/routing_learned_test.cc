// Router networks, selection functions, the temperature schedule, and the plugins built on
// them: learned and annealed.
#include <cmath>
#include <map>
#include <string>

#include <ATen/ATen.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moe/routing/routing.h"
#include "routing_plugins/annealed/annealed.pb.h"
#include "routing_plugins/learned/learned.pb.h"
#include "routing_plugins/router/router.h"

namespace taskmoe {
namespace {

using ::testing::HasSubstr;

const RoutingContext kContext = {ModelShape{/*encoder_layers=*/3, /*decoder_layers=*/2, /*experts=*/4},
                                 /*task_vector_dim=*/8, /*num_tasks=*/6};
constexpr int64_t kLayers = 5;

absl::StatusOr<std::shared_ptr<RoutingPlugin>> Create(const std::string& plugin,
                                                      const google::protobuf::Message& params) {
  RoutingConfig config;
  config.set_plugin(plugin);
  config.mutable_params()->PackFrom(params);
  return CreateRoutingPlugin(config, kContext);
}

LearnedRoutingParams Learned(RouterNetworkParams::Architecture architecture,
                             RouteSelectionParams::Function function) {
  LearnedRoutingParams params;
  params.mutable_router()->set_architecture(architecture);
  params.mutable_router()->set_hidden_dim(16);
  params.mutable_selection()->set_function(function);
  return params;
}

at::Tensor AllLayers(const RouteWeights& routes) { return at::cat({routes.encoder, routes.decoder}, 0); }

struct Batch {
  at::Tensor task_ids = at::tensor({0, 1, 2, 5}, at::kLong);
  at::Tensor task_vectors = at::randn({4, kContext.task_vector_dim}).requires_grad_(true);
};

// Backpropagates a generic function of the routes and reports which inputs got gradient.
void ExpectGradientsReachRouterAndTaskVectors(RoutingPlugin& plugin, const Batch& batch, int64_t step) {
  const RouteWeights routes = plugin.Route({batch.task_ids, batch.task_vectors, step});
  ASSERT_TRUE(ValidateRoutes(routes, kContext.shape, 4).ok());
  (AllLayers(routes) * at::randn({kLayers, 4, 4})).sum().backward();
  ASSERT_TRUE(batch.task_vectors.grad().defined());
  EXPECT_GT(batch.task_vectors.grad().abs().sum().item<double>(), 0.0);
  for (const auto& parameter : plugin.named_parameters()) {
    ASSERT_TRUE(parameter.value().grad().defined()) << parameter.key();
    EXPECT_GT(parameter.value().grad().abs().sum().item<double>(), 0.0) << parameter.key();
  }
}

TEST(TemperatureScheduleTest, FollowsTheFormula) {
  const TemperatureSchedule schedule{2.0, 0.1, 3e-4};
  EXPECT_DOUBLE_EQ(schedule.At(0), 2.0);
  EXPECT_DOUBLE_EQ(schedule.At(1000), 2.0 * std::exp(-0.3));
  EXPECT_DOUBLE_EQ(schedule.At(5000), 2.0 * std::exp(-1.5));
  // 2 * exp(-3e-4 * s) reaches 0.1 at s = ln(20) / 3e-4 = 9985.8.
  EXPECT_GT(schedule.At(9985), 0.1);
  EXPECT_DOUBLE_EQ(schedule.At(9986), 0.1);
  EXPECT_DOUBLE_EQ(schedule.At(1000000), 0.1);
  const TemperatureSchedule constant{1.0, 1.0, 0.0};
  EXPECT_DOUBLE_EQ(constant.At(12345), 1.0);
}

TEST(SelectRoutesTest, SoftmaxDividesLogitsByTau) {
  const at::Tensor logits = at::randn({kLayers, 3, 4});
  EXPECT_TRUE(at::allclose(SelectRoutes(logits, SelectionFunction::kSoftmax, 0.5, true),
                           at::softmax(logits * 2, -1)));
}

TEST(SelectRoutesTest, StraightThroughIsOneHotForwardWithSoftGradient) {
  const at::Tensor logits = at::randn({kLayers, 3, 4}).requires_grad_(true);
  const at::Tensor routes = SelectRoutes(logits, SelectionFunction::kGumbelSoftmaxStraightThrough, 0.7, true);
  EXPECT_TRUE(at::equal((routes == 1).sum(-1), at::ones({kLayers, 3}, at::kLong)));
  EXPECT_TRUE(at::equal((routes == 0).sum(-1), at::full({kLayers, 3}, 3, at::kLong)));
  (routes * at::randn({kLayers, 3, 4})).sum().backward();
  EXPECT_GT(logits.grad().abs().sum().item<double>(), 0.0);
}

TEST(SelectRoutesTest, GumbelSoftmaxSamplesDistributionsAndEvaluationTakesArgmax) {
  const at::Tensor logits = at::randn({kLayers, 64, 4});
  const at::Tensor sample = SelectRoutes(logits, SelectionFunction::kGumbelSoftmax, 1.0, true);
  EXPECT_TRUE(at::allclose(sample.sum(-1), at::ones({kLayers, 64})));
  EXPECT_TRUE((sample > 0).all().item<bool>());
  EXPECT_FALSE(at::equal(sample, SelectRoutes(logits, SelectionFunction::kGumbelSoftmax, 1.0, true)));
  for (SelectionFunction f : {SelectionFunction::kGumbelSoftmax, SelectionFunction::kGumbelSoftmaxStraightThrough}) {
    EXPECT_TRUE(at::equal(SelectRoutes(logits, f, 1.0, /*training=*/false),
                          at::one_hot(logits.argmax(-1), 4).to(at::kFloat)));
  }
}

class RouterArchitectureTest : public ::testing::TestWithParam<RouterNetworkParams::Architecture> {};

TEST_P(RouterArchitectureTest, MapsTaskVectorsToLogitsPerLayer) {
  RouterNetworkParams params;
  params.set_architecture(GetParam());
  params.set_hidden_dim(16);
  absl::StatusOr<RouterNetworkOptions> options = RouterNetworkOptionsFromProto(params, kContext);
  ASSERT_TRUE(options.ok()) << options.status();
  std::shared_ptr<RouterNetworkImpl> router = MakeRouterNetwork(*options);
  router->eval();
  const at::Tensor task_vectors = at::randn({3, kContext.task_vector_dim});
  const at::Tensor logits = router->forward(task_vectors);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{kLayers, 3, 4}));
  // Each example's logits depend only on its own task vector.
  EXPECT_TRUE(at::allclose(router->forward(task_vectors.narrow(0, 1, 1)), logits.narrow(1, 1, 1), 1e-5, 1e-5));
  // Layers get different logits (layer-specific weights or layer embeddings).
  EXPECT_FALSE(at::allclose(logits[0], logits[1]));
}

TEST_P(RouterArchitectureTest, LearnedSoftmaxRoutesPassGradientsToRouterAndTaskVectors) {
  absl::StatusOr<std::shared_ptr<RoutingPlugin>> plugin =
      Create("learned", Learned(GetParam(), RouteSelectionParams::SOFTMAX));
  ASSERT_TRUE(plugin.ok()) << plugin.status();
  (*plugin)->eval();  // no dropout in the transformer routers: every parameter must matter
  ExpectGradientsReachRouterAndTaskVectors(**plugin, Batch(), /*step=*/0);
}

INSTANTIATE_TEST_SUITE_P(
    AllArchitectures, RouterArchitectureTest,
    ::testing::Values(RouterNetworkParams::LINEAR, RouterNetworkParams::LINEAR_LAYER_SPECIFIC,
                      RouterNetworkParams::RNN, RouterNetworkParams::GRU, RouterNetworkParams::LSTM,
                      RouterNetworkParams::RNN_LAYER_SPECIFIC, RouterNetworkParams::GRU_LAYER_SPECIFIC,
                      RouterNetworkParams::LSTM_LAYER_SPECIFIC, RouterNetworkParams::TRANSFORMER,
                      RouterNetworkParams::TRANSFORMER_LAYER_SPECIFIC),
    [](const auto& info) { return RouterNetworkParams::Architecture_Name(info.param); });

TEST(LearnedRoutingTest, GumbelRoutesPassGradientsToRouterAndTaskVectors) {
  for (auto function : {RouteSelectionParams::GUMBEL_SOFTMAX, RouteSelectionParams::GUMBEL_SOFTMAX_ST}) {
    SCOPED_TRACE(RouteSelectionParams::Function_Name(function));
    std::shared_ptr<RoutingPlugin> plugin =
        *Create("learned", Learned(RouterNetworkParams::LINEAR_LAYER_SPECIFIC, function));
    plugin->train();
    ExpectGradientsReachRouterAndTaskVectors(*plugin, Batch(), /*step=*/10);
  }
}

TEST(LearnedRoutingTest, StraightThroughRoutesAreOneHotInTraining) {
  std::shared_ptr<RoutingPlugin> plugin =
      *Create("learned", Learned(RouterNetworkParams::LINEAR_LAYER_SPECIFIC, RouteSelectionParams::GUMBEL_SOFTMAX_ST));
  plugin->train();
  Batch batch;
  const at::Tensor routes = AllLayers(plugin->Route({batch.task_ids, batch.task_vectors, 0}));
  EXPECT_TRUE(at::equal((routes == 1).sum(-1), at::ones({kLayers, 4}, at::kLong)));
  EXPECT_TRUE(at::equal(routes.sum(-1), at::ones({kLayers, 4})));
}

TEST(LearnedRoutingTest, SoftmaxTemperatureFollowsTheScheduleOverSteps) {
  LearnedRoutingParams params = Learned(RouterNetworkParams::LINEAR, RouteSelectionParams::SOFTMAX);
  params.mutable_selection()->set_initial_tau(4.0);
  params.mutable_selection()->set_minimum_tau(0.5);
  params.mutable_selection()->set_anneal_rate(1e-3);
  std::shared_ptr<RoutingPlugin> plugin = *Create("learned", params);
  plugin->train();
  Batch batch;
  // log r_i - log r_j = (z_i - z_j) / tau, so (log r_0 - log r_1) * tau is the same at every step.
  auto scaled_gap = [&](int64_t step, double tau) {
    const at::Tensor log_routes = AllLayers(plugin->Route({batch.task_ids, batch.task_vectors, step})).log();
    return ((log_routes.select(-1, 0) - log_routes.select(-1, 1)) * tau).detach();
  };
  const at::Tensor at_start = scaled_gap(0, 4.0);
  EXPECT_TRUE(at::allclose(scaled_gap(700, 4.0 * std::exp(-0.7)), at_start, 1e-4, 1e-4));
  EXPECT_TRUE(at::allclose(scaled_gap(100000, 0.5), at_start, 1e-4, 1e-4));
}

TEST(LearnedRoutingTest, EvaluationRoutesAreDeterministic) {
  std::shared_ptr<RoutingPlugin> plugin =
      *Create("learned", Learned(RouterNetworkParams::LINEAR_LAYER_SPECIFIC, RouteSelectionParams::GUMBEL_SOFTMAX_ST));
  plugin->eval();
  Batch batch;
  const at::Tensor first = AllLayers(plugin->Route({batch.task_ids, batch.task_vectors, 3}));
  EXPECT_TRUE(at::equal(first, AllLayers(plugin->Route({batch.task_ids, batch.task_vectors, 3}))));
  EXPECT_TRUE(at::equal((first == 1).sum(-1), at::ones({kLayers, 4}, at::kLong)));
}

TEST(LearnedRoutingTest, ExplorationReplacesRoutesOnlyInTraining) {
  LearnedRoutingParams params = Learned(RouterNetworkParams::LINEAR_LAYER_SPECIFIC, RouteSelectionParams::SOFTMAX);
  params.set_exploration_epsilon(1.0);  // replace every route
  std::shared_ptr<RoutingPlugin> plugin = *Create("learned", params);
  Batch batch;
  plugin->train();
  const RouteWeights explored = plugin->Route({batch.task_ids, batch.task_vectors, 0});
  // Defaults as in the original: random one-hot in the encoder, uniform in the decoder.
  EXPECT_TRUE(at::equal((explored.encoder == 1).sum(-1), at::ones({3, 4}, at::kLong)));
  EXPECT_TRUE(at::equal(explored.decoder, at::full({2, 4, 4}, 0.25)));
  plugin->eval();
  const RouteWeights evaluated = plugin->Route({batch.task_ids, batch.task_vectors, 0});
  EXPECT_FALSE(at::equal(evaluated.decoder, at::full({2, 4, 4}, 0.25)));
}

TEST(LearnedRoutingTest, RejectsInvalidParams) {
  LearnedRoutingParams params = Learned(RouterNetworkParams::TRANSFORMER, RouteSelectionParams::SOFTMAX);
  params.mutable_router()->set_transformer_heads(3);  // task_vector_dim 8 is not divisible by 3
  EXPECT_THAT(Create("learned", params).status().message(), HasSubstr("transformer_heads = 3 does not divide"));

  params = Learned(RouterNetworkParams::LINEAR, RouteSelectionParams::SOFTMAX);
  params.set_exploration_epsilon(1.5);
  EXPECT_THAT(Create("learned", params).status().message(), HasSubstr("exploration_epsilon must be in [0, 1]"));

  params = Learned(RouterNetworkParams::LINEAR, RouteSelectionParams::SOFTMAX);
  params.mutable_selection()->set_minimum_tau(0);
  EXPECT_THAT(Create("learned", params).status().message(), HasSubstr("minimum_tau must be > 0"));
}

TEST(AnnealedRoutingTest, FrozenStageOneRouterAnnealsFromUniformToLearnedRoutes) {
  // Stage one: a learned router with softmax at tau 1.
  LearnedRoutingParams learned_params = Learned(RouterNetworkParams::LINEAR_LAYER_SPECIFIC, RouteSelectionParams::SOFTMAX);
  learned_params.mutable_selection()->set_initial_tau(1.0);
  learned_params.mutable_selection()->set_minimum_tau(1.0);
  std::shared_ptr<RoutingPlugin> learned = *Create("learned", learned_params);
  learned->eval();

  // Stage two takes the same router through the checkpoint state.
  AnnealedRoutingParams annealed_params;
  *annealed_params.mutable_router() = learned_params.router();
  std::shared_ptr<RoutingPlugin> annealed = *Create("annealed", annealed_params);
  std::map<std::string, at::Tensor> state;
  for (const auto& [name, tensor] : RoutingState(*learned)) state[name] = tensor;
  ASSERT_TRUE(LoadRoutingState(state, *annealed).ok());
  annealed->train();

  Batch batch;
  const at::Tensor learned_routes = AllLayers(learned->Route({batch.task_ids, batch.task_vectors, 0})).detach();
  // Step 0: tau = 300, routes are close to uniform.
  const RouteWeights start = annealed->Route({batch.task_ids, batch.task_vectors, 0});
  EXPECT_LT((AllLayers(start) - 0.25).abs().max().item<double>(), 0.01);
  EXPECT_GT((learned_routes - 0.25).abs().max().item<double>(), 0.02);
  // tau(step) = 300 exp(-1e-4 step) reaches the floor of 1 after ln(300) / 1e-4 = 57038 steps.
  const RouteWeights end = annealed->Route({batch.task_ids, batch.task_vectors, 60000});
  EXPECT_TRUE(at::allclose(AllLayers(end), learned_routes, 1e-6, 1e-6));

  // Nothing is trained: no router parameter requires grad and the routes carry no gradient.
  for (const auto& parameter : annealed->named_parameters()) EXPECT_FALSE(parameter.value().requires_grad()) << parameter.key();
  EXPECT_FALSE(end.encoder.requires_grad());
}

}  // namespace
}  // namespace taskmoe
