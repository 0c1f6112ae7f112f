// Router networks, selection functions, the temperature schedule, and the plugins built on
// them: learned and annealed.
#include <cmath>
#include <map>
#include <string>

#include <ATen/ATen.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moe/routing/routing.h"
#include "moe/routing/routing.pb.h"
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
  EXPECT_TRUE(at::allclose(SelectRoutes(logits, SelectionFunction::kSoftmax, 0.5, true, EvaluationRoute::kSample),
                           at::softmax(logits * 2, -1)));
}

TEST(SelectRoutesTest, StraightThroughIsOneHotForwardWithSoftGradient) {
  const at::Tensor logits = at::randn({kLayers, 3, 4}).requires_grad_(true);
  const at::Tensor routes = SelectRoutes(logits, SelectionFunction::kGumbelSoftmaxStraightThrough, 0.7, true,
                                         EvaluationRoute::kSample);
  EXPECT_TRUE(at::equal((routes == 1).sum(-1), at::ones({kLayers, 3}, at::kLong)));
  EXPECT_TRUE(at::equal((routes == 0).sum(-1), at::full({kLayers, 3}, 3, at::kLong)));
  (routes * at::randn({kLayers, 3, 4})).sum().backward();
  EXPECT_GT(logits.grad().abs().sum().item<double>(), 0.0);
}

TEST(SelectRoutesTest, GumbelSoftmaxSamplesDistributionsInTraining) {
  const at::Tensor logits = at::randn({kLayers, 64, 4});
  auto sample = [&] {
    return SelectRoutes(logits, SelectionFunction::kGumbelSoftmax, 1.0, true, EvaluationRoute::kArgmax);
  };
  const at::Tensor first = sample();
  EXPECT_TRUE(at::allclose(first.sum(-1), at::ones({kLayers, 64})));
  EXPECT_TRUE((first > 0).all().item<bool>());
  EXPECT_FALSE(at::equal(first, sample()));
}

TEST(SelectRoutesTest, ArgmaxEvaluationIsTheNoiseFreeOneHotArgmax) {
  const at::Tensor logits = at::randn({kLayers, 64, 4});
  for (SelectionFunction f : {SelectionFunction::kGumbelSoftmax, SelectionFunction::kGumbelSoftmaxStraightThrough}) {
    EXPECT_TRUE(at::equal(SelectRoutes(logits, f, 1.0, /*training=*/false, EvaluationRoute::kArgmax),
                          at::one_hot(logits.argmax(-1), 4).to(at::kFloat)));
  }
  // Softmax ignores the evaluation setting.
  EXPECT_TRUE(at::allclose(SelectRoutes(logits, SelectionFunction::kSoftmax, 0.5, false, EvaluationRoute::kArgmax),
                           at::softmax(logits * 2, -1)));
}

// One-hot draws: every row has a single 1 and the rest 0.
void ExpectOneHot(const at::Tensor& routes) {
  EXPECT_TRUE(at::equal((routes == 1).sum(-1), at::ones(routes.sizes().slice(0, routes.dim() - 1), at::kLong)));
  EXPECT_TRUE(at::equal(routes.sum(-1), at::ones(routes.sizes().slice(0, routes.dim() - 1))));
}

TEST(SelectRoutesTest, SampleEvaluationDrawsOneHotRoutesReproducibleWithTheSeed) {
  const at::Tensor logits = at::randn({kLayers, 16, 4});
  for (SelectionFunction f : {SelectionFunction::kGumbelSoftmax, SelectionFunction::kGumbelSoftmaxStraightThrough}) {
    auto draw = [&](uint64_t seed) {
      at::manual_seed(seed);
      return SelectRoutes(logits, f, 0.3, /*training=*/false, EvaluationRoute::kSample);
    };
    const at::Tensor first = draw(1);
    ExpectOneHot(first);
    EXPECT_TRUE(at::equal(first, draw(1)));
    // 80 rows of 4 experts: identical draws under another seed are vanishingly unlikely.
    EXPECT_FALSE(at::equal(first, draw(2)));
  }
}

TEST(SelectRoutesTest, SampleEvaluationFollowsTheSoftmaxOfTheLogits) {
  // One row of logits repeated: the frequency of each expert estimates its probability. The argmax
  // of a Gumbel sample does not depend on tau, so any tau gives softmax(logits) (Gumbel-max).
  const at::Tensor logits = at::tensor({1.5f, 0.0f, -1.0f, 0.7f});
  const int64_t draws = 40000;
  at::manual_seed(7);
  for (double tau : {1.0, 0.1, 5.0}) {
    const at::Tensor routes = SelectRoutes(logits.expand({draws, 4}), SelectionFunction::kGumbelSoftmaxStraightThrough,
                                           tau, /*training=*/false, EvaluationRoute::kSample);
    // Standard error of each frequency <= sqrt(0.25 / 40000) = 0.0025.
    EXPECT_TRUE(at::allclose(routes.mean(0), at::softmax(logits, -1), 0, 0.015)) << routes.mean(0);
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

TEST(LearnedRoutingTest, ArgmaxEvaluationRoutesAreDeterministic) {
  LearnedRoutingParams params =
      Learned(RouterNetworkParams::LINEAR_LAYER_SPECIFIC, RouteSelectionParams::GUMBEL_SOFTMAX_ST);
  params.mutable_selection()->set_eval_route(RouteSelectionParams::ARGMAX);
  std::shared_ptr<RoutingPlugin> plugin = *Create("learned", params);
  plugin->eval();
  Batch batch;
  const at::Tensor first = AllLayers(plugin->Route({batch.task_ids, batch.task_vectors, 3}));
  EXPECT_TRUE(at::equal(first, AllLayers(plugin->Route({batch.task_ids, batch.task_vectors, 3}))));
  EXPECT_TRUE(at::equal((first == 1).sum(-1), at::ones({kLayers, 4}, at::kLong)));
  // The argmax view of TaskRouteViews is the same route.
  const at::Tensor vectors = at::randn({kContext.num_tasks, kContext.task_vector_dim});
  EXPECT_TRUE(at::equal(TaskRoutes(*plugin, vectors, 3), TaskRouteViews(*plugin, vectors, 3).argmax));
}

TEST(LearnedRoutingTest, SampleEvaluationIsTheDefaultAndDrawsPerTaskFromTheSeed) {
  for (auto function : {RouteSelectionParams::GUMBEL_SOFTMAX, RouteSelectionParams::GUMBEL_SOFTMAX_ST}) {
    SCOPED_TRACE(RouteSelectionParams::Function_Name(function));
    LearnedRoutingParams params = Learned(RouterNetworkParams::LINEAR_LAYER_SPECIFIC, function);
    // Flat logits (zero output layer) make every expert equally likely: draws vary a lot.
    std::shared_ptr<RoutingPlugin> plugin = *Create("learned", params);
    for (auto& parameter : plugin->named_parameters()) {
      if (parameter.key().find("output") != std::string::npos) parameter.value().detach().zero_();
    }
    plugin->train();
    const at::Tensor vectors = at::randn({kContext.num_tasks, kContext.task_vector_dim});
    auto draw = [&](uint64_t seed) {
      at::manual_seed(seed);
      return TaskRoutes(*plugin, vectors, /*step=*/5);
    };
    const at::Tensor first = draw(3);
    EXPECT_EQ(first.sizes(), (std::vector<int64_t>{kContext.num_tasks, kLayers, 4}));
    ExpectOneHot(first);
    EXPECT_TRUE(at::equal(first, draw(3)));
    EXPECT_FALSE(at::equal(first, draw(4)));  // 30 uniform draws of 4: equal with chance 4^-30
    EXPECT_TRUE(plugin->is_training());
  }
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

// Logits of a LINEAR_LAYER_SPECIFIC router computed by hand from its parameters, [layers, batch, E].
at::Tensor HandLogits(RoutingPlugin& plugin, const at::Tensor& vectors) {
  std::map<std::string, at::Tensor> p;
  for (const auto& item : plugin.named_parameters()) p[item.key()] = item.value().detach();
  const at::Tensor hidden =
      at::gelu(at::matmul(vectors.unsqueeze(0), p.at("router.hidden_weight")) + p.at("router.hidden_bias"));
  return at::matmul(hidden, p.at("router.output_weight")) + p.at("router.output_bias");
}

TEST(TaskRouteViewsTest, RouterViewsAreSoftmaxAtTauAndAtOneAndTheArgmaxOfTheLogits) {
  LearnedRoutingParams params =
      Learned(RouterNetworkParams::LINEAR_LAYER_SPECIFIC, RouteSelectionParams::GUMBEL_SOFTMAX_ST);
  params.mutable_selection()->set_initial_tau(2.0);
  params.mutable_selection()->set_anneal_rate(1e-3);
  std::shared_ptr<RoutingPlugin> plugin = *Create("learned", params);
  plugin->train();
  const at::Tensor vectors = at::randn({kContext.num_tasks, kContext.task_vector_dim});

  at::manual_seed(11);
  const RouteViews views = TaskRouteViews(*plugin, vectors, /*step=*/700);
  const at::Tensor next_random = at::rand({4});
  at::manual_seed(11);
  EXPECT_TRUE(at::equal(next_random, at::rand({4}))) << "views must not draw random numbers";
  EXPECT_TRUE(plugin->is_training());

  const at::Tensor logits = HandLogits(*plugin, vectors).transpose(0, 1);  // [tasks, layers, E]
  const double tau = 2.0 * std::exp(-0.7);
  for (const at::Tensor& view : {views.soft, views.soft_t1, views.argmax}) {
    EXPECT_EQ(view.sizes(), (std::vector<int64_t>{kContext.num_tasks, kLayers, 4}));
    EXPECT_EQ(view.device(), at::kCPU);
    EXPECT_EQ(view.scalar_type(), at::kFloat);
    EXPECT_FALSE(view.requires_grad());
  }
  EXPECT_TRUE(at::allclose(views.soft, at::softmax(logits / tau, -1), 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(views.soft_t1, at::softmax(logits, -1), 1e-5, 1e-6));
  EXPECT_TRUE(at::equal(views.argmax, at::one_hot(logits.argmax(-1), 4).to(at::kFloat)));
  ASSERT_TRUE(views.tau.has_value());
  EXPECT_NEAR(*views.tau, tau, 1e-6 * tau);  // the schedule's parameters are floats
  // Views are deterministic.
  EXPECT_TRUE(at::equal(TaskRouteViews(*plugin, vectors, 700).soft, views.soft));
}

TEST(TaskRouteViewsTest, AnnealedViewsUseTheAnnealedTemperature) {
  AnnealedRoutingParams params;
  params.mutable_router()->set_hidden_dim(16);
  std::shared_ptr<RoutingPlugin> plugin = *Create("annealed", params);
  const at::Tensor vectors = at::randn({kContext.num_tasks, kContext.task_vector_dim});
  const RouteViews views = TaskRouteViews(*plugin, vectors, /*step=*/20000);
  const at::Tensor logits = HandLogits(*plugin, vectors).transpose(0, 1);
  EXPECT_TRUE(at::allclose(views.soft, at::softmax(logits / (300 * std::exp(-2.0)), -1), 1e-5, 1e-6));
  ASSERT_TRUE(views.tau.has_value());
  EXPECT_NEAR(*views.tau, 300 * std::exp(-2.0), 1e-6 * 300);
  EXPECT_TRUE(at::allclose(views.soft_t1, at::softmax(logits, -1), 1e-5, 1e-6));
  // Softmax evaluation routes are the soft view.
  EXPECT_TRUE(at::allclose(TaskRoutes(*plugin, vectors, 20000), views.soft, 1e-6, 1e-6));
}

absl::StatusOr<std::shared_ptr<RoutingPlugin>> CreateMasked(const LearnedRoutingParams& params,
                                                            const std::string& mask) {
  RoutingConfig config;
  config.set_plugin("learned");
  config.mutable_params()->PackFrom(params);
  config.set_eval_expert_mask(mask);
  return CreateRoutingPlugin(config, kContext);
}

TEST(EvaluationExpertMaskTest, GumbelSamplingNeverPicksAMaskedExpertInEvaluation) {
  // Encoder layer 1 loses experts 0 and 2, every layer loses expert 0.
  std::shared_ptr<RoutingPlugin> plugin =
      *CreateMasked(Learned(RouterNetworkParams::LINEAR_LAYER_SPECIFIC, RouteSelectionParams::GUMBEL_SOFTMAX_ST),
                    "*:0, enc1:2");
  // Flat logits: unmasked, every expert would be drawn often.
  for (auto& parameter : plugin->named_parameters()) {
    if (parameter.key().find("output") != std::string::npos) parameter.value().detach().zero_();
  }
  const int64_t batch = 600;
  const at::Tensor ids = at::arange(batch, at::kLong) % kContext.num_tasks;
  const at::Tensor vectors = at::randn({batch, kContext.task_vector_dim});
  plugin->eval();
  const at::Tensor routes = AllLayers(plugin->Route({ids, vectors, 0}));
  ExpectOneHot(routes);
  const at::Tensor used = routes.sum(1);  // [layers, E]: how often each expert was drawn
  EXPECT_EQ(used.select(-1, 0).sum().item<double>(), 0.0);
  EXPECT_EQ(used[1][2].item<double>(), 0.0);
  EXPECT_EQ(used[1][1].item<double>() + used[1][3].item<double>(), batch);
  EXPECT_GT(used[1][1].item<double>(), 200);
  EXPECT_GT(used[0][2].item<double>(), 100);
  // Training is not masked.
  plugin->train();
  EXPECT_GT(AllLayers(plugin->Route({ids, vectors, 0})).sum(1).select(-1, 0).sum().item<double>(), 0.0);
}

TEST(EvaluationExpertMaskTest, SoftmaxRenormalisesOverTheRestAndViewsAreMasked) {
  LearnedRoutingParams params = Learned(RouterNetworkParams::LINEAR_LAYER_SPECIFIC, RouteSelectionParams::SOFTMAX);
  params.mutable_selection()->set_initial_tau(1.0);
  params.mutable_selection()->set_minimum_tau(1.0);
  std::shared_ptr<RoutingPlugin> plugin = *CreateMasked(params, "dec1:3,enc0:1");
  plugin->eval();
  const at::Tensor vectors = at::randn({kContext.num_tasks, kContext.task_vector_dim});
  const at::Tensor logits = HandLogits(*plugin, vectors).transpose(0, 1);  // [tasks, layers, E]
  at::Tensor expected = at::softmax(logits, -1);
  // Layer 0 (enc0) without expert 1, layer 4 (dec1) without expert 3.
  for (const auto& [layer, expert] : {std::pair<int64_t, int64_t>{0, 1}, {4, 3}}) {
    at::Tensor kept = logits.select(1, layer).clone();
    kept.select(-1, expert).fill_(-INFINITY);
    expected.select(1, layer).copy_(at::softmax(kept, -1));
  }
  EXPECT_TRUE(at::allclose(TaskRoutes(*plugin, vectors, 0), expected, 1e-5, 1e-6));
  const RouteViews views = TaskRouteViews(*plugin, vectors, 0);
  EXPECT_TRUE(at::allclose(views.soft, expected, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(views.soft_t1, expected, 1e-5, 1e-6));
  EXPECT_TRUE(at::equal(views.argmax, at::one_hot(expected.argmax(-1), 4).to(at::kFloat)));
  EXPECT_EQ(views.argmax.select(1, 0).select(-1, 1).sum().item<double>(), 0.0);
}

}  // namespace
}  // namespace taskmoe
