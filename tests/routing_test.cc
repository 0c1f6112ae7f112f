// The routing core (registry, config, validation, state) and the built-in plugins without a
// router network: average, task_random, instance_random.
#include "moe/routing/routing.h"

#include <map>
#include <string>

#include <ATen/ATen.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "moe/formats/npy.h"
#include "moe/routing/expert_mask.h"
#include "routing_plugins/learned/learned.pb.h"
#include "routing_plugins/task_random/task_random.pb.h"

namespace taskmoe {
namespace {

using ::testing::IsSupersetOf;
using ::testing::HasSubstr;

const RoutingContext kContext = {ModelShape{/*encoder_layers=*/3, /*decoder_layers=*/2, /*experts=*/4},
                                 /*task_vector_dim=*/8, /*num_tasks=*/5};

std::shared_ptr<RoutingPlugin> Create(const std::string& text_config, const RoutingContext& context = kContext) {
  RoutingConfig config;
  CHECK(google::protobuf::TextFormat::ParseFromString(text_config, &config)) << text_config;
  absl::StatusOr<std::shared_ptr<RoutingPlugin>> plugin = CreateRoutingPlugin(config, context);
  CHECK(plugin.ok()) << plugin.status();
  return *plugin;
}

RoutingInput Batch(const std::vector<int64_t>& task_ids, int64_t step = 0) {
  return {at::tensor(task_ids, at::kLong), at::randn({static_cast<int64_t>(task_ids.size()), kContext.task_vector_dim}),
          step};
}

// [layers, batch, E] of both parts.
at::Tensor AllLayers(const RouteWeights& routes) { return at::cat({routes.encoder, routes.decoder}, 0); }

TEST(RoutingRegistryTest, ListsEveryBuiltInPlugin) {
  // Fails when a plugin's target loses alwayslink or leaves //routing_plugins:all; plugins added
  // by users may be registered too.
  EXPECT_THAT(RegisteredRoutingPlugins(),
              IsSupersetOf({"annealed", "average", "fixed", "instance_random", "learned", "polytropon",
                            "task_random"}));
}

TEST(RoutingRegistryTest, UnknownPluginNameListsRegisteredNames) {
  RoutingConfig config;
  config.set_plugin("top_secret");
  const absl::Status status = CreateRoutingPlugin(config, kContext).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("routing.plugin"));
  EXPECT_THAT(status.message(), HasSubstr("'top_secret'"));
  // Every registered name, the built-in ones and any a user added, in the order the registry
  // lists them.
  EXPECT_THAT(status.message(), HasSubstr(absl::StrJoin(RegisteredRoutingPlugins(), ", ")));
  for (const char* name : {"annealed", "average", "fixed", "instance_random", "learned",
                           "polytropon", "task_random"}) {
    EXPECT_THAT(status.message(), HasSubstr(name));
  }
}

TEST(RoutingRegistryTest, WrongParamsTypeNamesBothTypes) {
  RoutingConfig config;
  config.set_plugin("task_random");
  config.mutable_params()->PackFrom(LearnedRoutingParams());
  const absl::Status status = CreateRoutingPlugin(config, kContext).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("'task_random' takes params of type taskmoe.TaskRandomRoutingParams"));
  EXPECT_THAT(status.message(), HasSubstr("type.googleapis.com/taskmoe.LearnedRoutingParams"));
}

TEST(RoutingRegistryTest, AConfigWithoutAPluginIsAnErrorListingTheRegisteredOnes) {
  const absl::Status status = CreateRoutingPlugin(RoutingConfig(), kContext).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("routing.plugin: no plugin named '' is registered"));
  EXPECT_THAT(status.message(), HasSubstr("average"));
}

TEST(ValidateRoutesTest, AcceptsWellFormedRoutes) {
  const ModelShape& shape = kContext.shape;
  EXPECT_TRUE(ValidateRoutes({at::rand({3, 6, 4}), at::rand({2, 6, 4})}, shape, 6).ok());
}

TEST(ValidateRoutesTest, NamesThePartAndTheExpectedShape) {
  const ModelShape& shape = kContext.shape;
  absl::Status status = ValidateRoutes({at::rand({2, 6, 4}), at::rand({2, 6, 4})}, shape, 6);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("encoder routes have shape [2, 6, 4], expected [layers, batch, experts] = [3, 6, 4]"));

  status = ValidateRoutes({at::rand({3, 6, 4}), at::rand({2, 5, 4})}, shape, 6);
  EXPECT_THAT(status.message(), HasSubstr("decoder routes have shape [2, 5, 4]"));

  status = ValidateRoutes({at::rand({3, 6, 4}), at::rand({2, 6, 3})}, shape, 6);
  EXPECT_THAT(status.message(), HasSubstr("expected [layers, batch, experts] = [2, 6, 4]"));

  status = ValidateRoutes({at::ones({3, 6, 4}, at::kLong), at::rand({2, 6, 4})}, shape, 6);
  EXPECT_THAT(status.message(), HasSubstr("floating-point"));

  at::Tensor with_nan = at::rand({2, 6, 4});
  with_nan[1][2][3] = NAN;
  EXPECT_THAT(ValidateRoutes({at::rand({3, 6, 4}), with_nan}, shape, 6).message(), HasSubstr("NaN"));

  EXPECT_THAT(ValidateRoutes({at::Tensor(), at::rand({2, 6, 4})}, shape, 6).message(), HasSubstr("undefined"));
}

TEST(RoutingPluginTest, RejectsTaskIdsOutsideTheTable) {
  std::shared_ptr<RoutingPlugin> plugin = Create(R"(plugin: "average")");
  EXPECT_DEATH(plugin->Route(Batch({0, 5})), "the plugin knows 5 tasks");
}

TEST(AverageRoutingTest, EveryExpertGetsOneOverE) {
  std::shared_ptr<RoutingPlugin> plugin = Create(R"(plugin: "average")");
  const RouteWeights routes = plugin->Route(Batch({0, 3, 3}));
  ASSERT_TRUE(ValidateRoutes(routes, kContext.shape, 3).ok());
  EXPECT_TRUE(at::equal(AllLayers(routes), at::full({5, 3, 4}, 0.25)));
  EXPECT_TRUE(RoutingState(*plugin).empty());
}

TEST(TaskRandomRoutingTest, EachTaskHasFixedTopNExpertsWithEqualWeight) {
  std::shared_ptr<RoutingPlugin> plugin = Create(R"(
      plugin: "task_random"
      params { [type.googleapis.com/taskmoe.TaskRandomRoutingParams] { top_n: 2 } })");
  const at::Tensor routes = AllLayers(plugin->Route(Batch({0, 1, 2, 3, 4, 2})));
  ASSERT_TRUE(ValidateRoutes(plugin->Route(Batch({1})), kContext.shape, 1).ok());
  // Exactly two experts at 1/2 in every layer of every example.
  EXPECT_TRUE(at::equal((routes == 0.5).sum(-1), at::full({5, 6}, 2, at::kLong)));
  EXPECT_TRUE(at::equal((routes == 0).sum(-1), at::full({5, 6}, 2, at::kLong)));
  // Same task, same routes: within a batch and across training steps.
  EXPECT_TRUE(at::equal(routes.select(1, 2), routes.select(1, 5)));
  EXPECT_TRUE(at::equal(AllLayers(plugin->Route(Batch({2}, /*step=*/100))).select(1, 0), routes.select(1, 2)));
  // Tasks differ somewhere (5 tasks x 5 layers of 6 possible pairs: equal by chance ~ 6^-20).
  EXPECT_FALSE(at::equal(routes.select(1, 0), routes.select(1, 1)) &&
               at::equal(routes.select(1, 1), routes.select(1, 2)));
}

TEST(TaskRandomRoutingTest, RoutesSurviveSaveAndLoadThroughNpyFiles) {
  at::manual_seed(1);
  std::shared_ptr<RoutingPlugin> trained = Create(R"(plugin: "task_random")");
  const RoutingInput batch = Batch({0, 1, 2, 3, 4});
  const at::Tensor routes = AllLayers(trained->Route(batch));

  std::map<std::string, std::string> files;
  for (const auto& [name, tensor] : RoutingState(*trained)) {
    files[name] = ::testing::TempDir() + "/task_random_" + name + ".npy";
    ASSERT_TRUE(WriteNpy(files[name], tensor).ok());
  }
  EXPECT_EQ(files.size(), 1u);

  at::manual_seed(2);
  std::shared_ptr<RoutingPlugin> restored = Create(R"(plugin: "task_random")");
  ASSERT_FALSE(at::equal(AllLayers(restored->Route(batch)), routes)) << "seeds should draw other routes";
  std::map<std::string, at::Tensor> state;
  for (const auto& [name, path] : files) state[name] = *ReadNpy(path);
  ASSERT_TRUE(LoadRoutingState(state, *restored).ok());
  EXPECT_TRUE(at::equal(AllLayers(restored->Route(batch)), routes));
}

TEST(TaskRoutesTest, GivesEvaluationRoutesOfEveryTaskInRoutesNpyLayout) {
  std::shared_ptr<RoutingPlugin> plugin = Create(R"(plugin: "task_random")");
  plugin->train();
  const at::Tensor vectors = at::randn({5, kContext.task_vector_dim});
  const at::Tensor per_task = TaskRoutes(*plugin, vectors, /*step=*/3);
  EXPECT_EQ(per_task.sizes(), (std::vector<int64_t>{5, 5, 4}));
  EXPECT_TRUE(at::equal(per_task, RoutingState(*plugin)[0].second));
  EXPECT_TRUE(plugin->is_training());
  // RoutesForTasks reads the table back.
  const RouteWeights routes = RoutesForTasks(per_task, at::tensor({4, 0}, at::kLong), kContext.shape);
  EXPECT_TRUE(at::equal(AllLayers(routes).select(1, 0), per_task[4]));
  EXPECT_TRUE(at::equal(AllLayers(routes).select(1, 1), per_task[0]));
}

TEST(TaskRandomRoutingTest, TopNMustFitTheExperts) {
  RoutingConfig config;
  config.set_plugin("task_random");
  TaskRandomRoutingParams params;
  params.set_top_n(5);
  config.mutable_params()->PackFrom(params);
  EXPECT_THAT(CreateRoutingPlugin(config, kContext).status().message(), HasSubstr("top_n must be in [1, 4]"));
}

TEST(LoadRoutingStateTest, RejectsMissingExtraAndMisshapenTensors) {
  std::shared_ptr<RoutingPlugin> plugin = Create(R"(plugin: "task_random")");
  EXPECT_THAT(LoadRoutingState({}, *plugin).message(), HasSubstr("lacks tensor 'task_routes' of shape [5, 5, 4]"));
  EXPECT_THAT(LoadRoutingState({{"task_routes", at::zeros({5, 5, 3})}}, *plugin).message(),
              HasSubstr("'task_routes' has shape [5, 5, 3], expected [5, 5, 4]"));
  EXPECT_THAT(LoadRoutingState({{"task_routes", at::zeros({5, 5, 4})}, {"router.bias", at::zeros({1})}}, *plugin).message(),
              HasSubstr("'router.bias' that this plugin does not have"));
}

TEST(InstanceRandomRoutingTest, TrainingDrawsFreshOneHotRoutesEveryStep) {
  std::shared_ptr<RoutingPlugin> plugin = Create(R"(plugin: "instance_random")");
  plugin->train();
  const RoutingInput batch = Batch({0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1});
  const RouteWeights first = plugin->Route(batch);
  const RouteWeights second = plugin->Route({batch.task_ids, batch.task_vectors, /*step=*/1});
  ASSERT_TRUE(ValidateRoutes(first, kContext.shape, 16).ok());
  ASSERT_TRUE(ValidateRoutes(second, kContext.shape, 16).ok());
  for (const at::Tensor& routes : {AllLayers(first), AllLayers(second)}) {
    EXPECT_TRUE(at::equal(routes.sum(-1), at::ones({5, 16})));
    EXPECT_TRUE(at::equal((routes == 1).sum(-1), at::ones({5, 16}, at::kLong)));
  }
  // 80 independent draws of 4 experts: equal by chance with probability 4^-80.
  EXPECT_FALSE(at::equal(AllLayers(first), AllLayers(second)));
  // Examples of one task are routed independently.
  EXPECT_FALSE(at::equal(AllLayers(first).select(1, 0).unsqueeze(1).expand({5, 8, 4}),
                         AllLayers(first).narrow(1, 0, 8)));
}

TEST(InstanceRandomRoutingTest, FixedEvaluationUsesOneRouteThatIsCheckpointed) {
  const std::string fixed = R"(
      plugin: "instance_random"
      params { [type.googleapis.com/taskmoe.InstanceRandomRoutingParams] { evaluation_route: FIXED } })";
  std::shared_ptr<RoutingPlugin> plugin = Create(fixed);
  plugin->eval();
  const at::Tensor routes = AllLayers(plugin->Route(Batch({0, 1, 4})));
  EXPECT_TRUE(at::equal(routes, AllLayers(plugin->Route(Batch({3, 3, 2}, /*step=*/7)))));
  EXPECT_TRUE(at::equal(routes.select(1, 0), routes.select(1, 2)));
  EXPECT_TRUE(at::equal((routes == 1).sum(-1), at::ones({5, 3}, at::kLong)));

  std::shared_ptr<RoutingPlugin> other = Create(fixed);
  other->eval();
  std::map<std::string, at::Tensor> state;
  for (const auto& [name, tensor] : RoutingState(*plugin)) state[name] = tensor;
  ASSERT_TRUE(LoadRoutingState(state, *other).ok());
  EXPECT_TRUE(at::equal(AllLayers(other->Route(Batch({0, 1, 4}))), routes));
}

TEST(InstanceRandomRoutingTest, PerCallEvaluationIsTheDefaultAndDrawsAnewEveryCall) {
  std::shared_ptr<RoutingPlugin> plugin = Create(R"(plugin: "instance_random")");
  plugin->train();
  const at::Tensor vectors = at::randn({5, kContext.task_vector_dim});
  std::vector<at::Tensor> calls;
  for (int call = 0; call < 3; ++call) calls.push_back(TaskRoutes(*plugin, vectors, /*step=*/call));
  for (const at::Tensor& routes : calls) {
    // One-hot, and one route shared by every task of the call.
    EXPECT_TRUE(at::equal((routes == 1).sum(-1), at::ones({5, 5}, at::kLong)));
    EXPECT_TRUE(at::equal(routes.sum(-1), at::ones({5, 5})));
    EXPECT_TRUE(at::equal(routes, routes[0].unsqueeze(0).expand({5, -1, -1})));
  }
  // 5 layers of 4 experts: two calls drawing the same route have chance 4^-5; three, 4^-10.
  EXPECT_FALSE(at::equal(calls[0], calls[1]) && at::equal(calls[1], calls[2]));
  // The latest draw is the state and the views, which draw nothing.
  EXPECT_TRUE(at::equal(RoutingState(*plugin)[0].second, calls[2][0]));
  at::manual_seed(5);
  const RouteViews views = TaskRouteViews(*plugin, vectors, 3);
  const at::Tensor next_random = at::rand({3});
  at::manual_seed(5);
  EXPECT_TRUE(at::equal(next_random, at::rand({3})));
  EXPECT_TRUE(at::equal(views.soft, calls[2]));
  EXPECT_TRUE(at::equal(views.argmax, calls[2]));
  // Same seed, same draw.
  at::manual_seed(9);
  const at::Tensor seeded = TaskRoutes(*plugin, vectors, 0);
  at::manual_seed(9);
  EXPECT_TRUE(at::equal(TaskRoutes(*plugin, vectors, 0), seeded));
}

TEST(TaskRandomRoutingTest, RoutesTrainUnlessFrozen) {
  const RoutingInput batch = Batch({0, 3, 3});
  std::shared_ptr<RoutingPlugin> trainable = Create(R"(plugin: "task_random")");
  trainable->train();
  ASSERT_EQ(trainable->parameters().size(), 1u);
  (AllLayers(trainable->Route(batch)) * at::randn({5, 3, 4})).sum().backward();
  const at::Tensor grad = trainable->named_parameters()["task_routes"].grad();
  ASSERT_TRUE(grad.defined());
  EXPECT_GT(grad[3].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(grad[1].abs().sum().item<double>(), 0.0);  // a task outside the batch

  std::shared_ptr<RoutingPlugin> frozen = Create(R"(
      plugin: "task_random"
      params { [type.googleapis.com/taskmoe.TaskRandomRoutingParams] { freeze: true } })");
  frozen->train();
  EXPECT_TRUE(frozen->parameters().empty());
  EXPECT_FALSE(AllLayers(frozen->Route(batch)).requires_grad());
  EXPECT_EQ(RoutingState(*frozen)[0].first, "task_routes");
}

TEST(TaskRandomRoutingTest, EvaluationOfOneExpertRoutesTakesTheArgmaxOfTheTrainedRow) {
  std::shared_ptr<RoutingPlugin> plugin = Create(R"(plugin: "task_random")");
  {
    at::NoGradGuard no_grad;
    plugin->named_parameters()["task_routes"].copy_(at::softmax(at::randn({5, 5, 4}), -1));
  }
  const at::Tensor table = plugin->named_parameters()["task_routes"].detach();
  const at::Tensor vectors = at::randn({5, kContext.task_vector_dim});
  EXPECT_TRUE(at::equal(TaskRoutes(*plugin, vectors, 0), at::one_hot(table.argmax(-1), 4).to(at::kFloat)));
  // Training mixes with the weights themselves; so do the soft views.
  plugin->train();
  EXPECT_TRUE(at::equal(AllLayers(plugin->Route(Batch({2}))).select(1, 0), table[2]));
  const RouteViews views = TaskRouteViews(*plugin, vectors, 0);
  EXPECT_TRUE(at::allclose(views.soft, at::one_hot(table.argmax(-1), 4).to(at::kFloat)));
}

TEST(TaskRouteViewsTest, PluginsWithoutLogitsShowTheirEvaluationRoutes) {
  std::shared_ptr<RoutingPlugin> plugin = Create(R"(
      plugin: "task_random"
      params { [type.googleapis.com/taskmoe.TaskRandomRoutingParams] { top_n: 2 } })");
  const at::Tensor vectors = at::randn({5, kContext.task_vector_dim});
  const RouteViews views = TaskRouteViews(*plugin, vectors, 0);
  const at::Tensor table = RoutingState(*plugin)[0].second.detach();
  EXPECT_TRUE(at::equal(views.soft, table));
  EXPECT_TRUE(at::equal(views.soft_t1, table));
  EXPECT_TRUE(at::equal(views.argmax, at::one_hot(table.argmax(-1), 4).to(at::kFloat)));
  EXPECT_FALSE(views.tau.has_value());  // no router logits, no temperature
  EXPECT_TRUE(plugin->is_training());

  const RouteViews average = TaskRouteViews(*Create(R"(plugin: "average")"), vectors, 0);
  EXPECT_TRUE(at::equal(average.soft, at::full({5, 5, 4}, 0.25)));
  // Ties: the first maximum.
  EXPECT_TRUE(at::equal(average.argmax.select(-1, 0), at::ones({5, 5})));
}

TEST(EvaluationExpertMaskTest, PluginsWithoutLogitsZeroMaskedExpertsAndRenormalise) {
  std::shared_ptr<RoutingPlugin> plugin =
      Create(R"(plugin: "average" eval_expert_mask: "enc0:1,dec1:0,dec1:2")");
  plugin->train();
  EXPECT_TRUE(at::equal(AllLayers(plugin->Route(Batch({0, 1}))), at::full({5, 2, 4}, 0.25)));
  plugin->eval();
  const at::Tensor routes = AllLayers(plugin->Route(Batch({0, 1})));
  at::Tensor expected = at::full({5, 2, 4}, 0.25);
  expected[0] = at::tensor({1.f / 3, 0.f, 1.f / 3, 1.f / 3}).expand({2, 4});
  expected[4] = at::tensor({0.f, 0.5f, 0.f, 0.5f}).expand({2, 4});
  EXPECT_TRUE(at::allclose(routes, expected));
  EXPECT_TRUE(at::allclose(TaskRouteViews(*plugin, at::randn({5, 8}), 0).soft[1], expected.select(1, 0)));
}

TEST(EvaluationExpertMaskTest, ARouteOnlyOnMaskedExpertsBecomesUniformOverTheRest) {
  at::Tensor table = at::zeros({5, 5, 4});
  table.select(-1, 2).fill_(1.0);  // every task on expert 2 everywhere
  std::shared_ptr<RoutingPlugin> plugin = *MakeTaskRouteTable(kContext, table, "test");
  plugin->SetEvaluationExpertMask(*ParseEvaluationExpertMask("*:2,enc1:0", kContext.shape));
  plugin->eval();
  const at::Tensor routes = AllLayers(plugin->Route(Batch({4})));
  EXPECT_TRUE(at::allclose(routes[0][0], at::tensor({1.f / 3, 1.f / 3, 0.f, 1.f / 3})));
  EXPECT_TRUE(at::allclose(routes[1][0], at::tensor({0.f, 0.5f, 0.f, 0.5f})));
}

TEST(EvaluationExpertMaskTest, FixedRoutesFilesAreMaskedToo) {
  const std::string path = ::testing::TempDir() + "/masked_routes.npy";
  ASSERT_TRUE(WriteNpy(path, at::full({5, 5, 4}, 0.25)).ok());
  std::shared_ptr<RoutingPlugin> plugin =
      Create(absl::StrCat(R"(fixed_routes_npy: ")", path, R"(" eval_expert_mask: "*:3")"));
  plugin->eval();
  EXPECT_TRUE(at::allclose(AllLayers(plugin->Route(Batch({1}))).select(-1, 3), at::zeros({5, 1})));
}

TEST(EvaluationExpertMaskTest, ParsesLayerLabelsAndExperts) {
  absl::StatusOr<at::Tensor> mask = ParseEvaluationExpertMask(" enc2:3 , dec0:0,*:1", kContext.shape);
  ASSERT_TRUE(mask.ok()) << mask.status();
  at::Tensor expected = at::zeros({5, 4});
  expected.select(-1, 1).fill_(1);
  expected[2][3] = 1;
  expected[3][0] = 1;
  EXPECT_TRUE(at::equal(*mask, expected));
  EXPECT_FALSE(ParseEvaluationExpertMask("", kContext.shape)->defined());
}

TEST(EvaluationExpertMaskTest, BadItemsAndFullyMaskedLayersAreErrors) {
  auto error = [](const std::string& spec) {
    RoutingConfig config;
    config.set_plugin("average");
    config.set_eval_expert_mask(spec);
    const absl::Status status = CreateRoutingPlugin(config, kContext).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << spec;
    return std::string(status.message());
  };
  EXPECT_THAT(error("enc0:1,enc3:0"), HasSubstr("routing.eval_expert_mask item 'enc3:0': layer 'enc3' is not one"));
  EXPECT_THAT(error("enc0:1,enc3:0"), HasSubstr("enc0..enc2, dec0..dec1"));
  EXPECT_THAT(error("dec1:4"), HasSubstr("item 'dec1:4': expert '4' is not an index in [0, 4)"));
  EXPECT_THAT(error("dec1"), HasSubstr("item 'dec1': expected <layer>:<expert>"));
  EXPECT_THAT(error("layer0:1"), HasSubstr("item 'layer0:1'"));
  EXPECT_THAT(error("enc0:x"), HasSubstr("expert 'x'"));
  EXPECT_THAT(error("enc0:1,,dec0:1"), HasSubstr("item ''"));
  EXPECT_THAT(error("*:0,*:1,*:2,enc1:3"), HasSubstr("masks every expert of layer enc1"));
  EXPECT_THAT(error("dec0:0,dec0:1,dec0:2,dec0:3"), HasSubstr("masks every expert of layer dec0"));
}

}  // namespace
}  // namespace taskmoe
