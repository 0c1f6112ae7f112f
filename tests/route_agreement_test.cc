// Route-skill agreement (data/route_agreement.h) against hand-computed values, planted
// structure, random data and constructed held-out cases.
#include "data/route_agreement.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moe/base/file_io.h"

namespace taskmoe {
namespace {

using ::testing::HasSubstr;

constexpr int kLayers = 2;
constexpr int kExperts = 3;

// Tasks named t0, t1, ... with the given skill sets; routes to fill in.
struct Example {
  NamedRoutes routes;
  TaskSkillTable skills;
};

Example MakeExample(const std::vector<std::vector<std::string>>& skill_sets) {
  Example example;
  example.routes.source = "routes.npy";
  example.routes.tasks_source = "route_tasks.json";
  example.routes.layers = kLayers;
  example.routes.experts = kExperts;
  example.skills.source = "skills.json";
  for (size_t i = 0; i < skill_sets.size(); ++i) {
    const std::string task = absl::StrCat("t", i);
    example.routes.tasks.push_back(task);
    example.skills.skills[task] = skill_sets[i];
  }
  return example;
}

// Every layer of the task routed wholly to `expert`.
void AppendOneHotRoute(int expert, NamedRoutes* routes) {
  for (int layer = 0; layer < kLayers; ++layer) {
    for (int e = 0; e < kExperts; ++e) routes->values.push_back(e == expert ? 1.f : 0.f);
  }
}

// Each layer a random distribution over the experts (uniform on the simplex).
void AppendRandomRoute(std::mt19937_64* rng, NamedRoutes* routes) {
  std::exponential_distribution<float> exponential(1.f);
  for (int layer = 0; layer < kLayers; ++layer) {
    std::vector<float> weights(kExperts);
    float sum = 0;
    for (float& w : weights) sum += (w = exponential(*rng));
    for (float w : weights) routes->values.push_back(w / sum);
  }
}

// 12 tasks in 3 skill groups of 4, each group routed to its own expert.
Example PlantedExample() {
  std::vector<std::vector<std::string>> skills;
  for (int i = 0; i < 12; ++i) skills.push_back({absl::StrCat("skill", i % 3)});
  Example example = MakeExample(skills);
  for (int i = 0; i < 12; ++i) AppendOneHotRoute(i % 3, &example.routes);
  return example;
}

AgreementOptions Options(int permutations, uint64_t seed = 1) {
  AgreementOptions options;
  options.permutations = permutations;
  options.seed = seed;
  return options;
}

TEST(RouteAgreementTest, AverageRanksShareTiedRanks) {
  EXPECT_EQ(AverageRanks(std::vector<double>{30, 10, 20, 20}),
            (std::vector<double>{4, 1, 2.5, 2.5}));
}

TEST(RouteAgreementTest, SpearmanWithTiesMatchesHandComputation) {
  // Ranks x: 1 2.5 2.5 4 5, y: 2 1 3.5 3.5 5; centred dot 7.25 over sqrt(9.5 * 9.5) = 29/38.
  const std::vector<double> x = {1, 2, 2, 3, 5};
  const std::vector<double> y = {2, 1, 4, 4, 6};
  EXPECT_NEAR(SpearmanRho(x, y), 29.0 / 38.0, 1e-12);
  EXPECT_NEAR(SpearmanRho(x, {5, 4, 3, 2, 1}), -SpearmanRho(x, {1, 2, 3, 4, 5}), 1e-12);
  EXPECT_TRUE(std::isnan(SpearmanRho(x, {7, 7, 7, 7, 7})));
}

TEST(RouteAgreementTest, RouteSimilarityIsOneMinusMeanTotalVariation) {
  // Layer 0: TV 1/2 (1 + 1) = 1; layer 1: TV 1/2 (0.25 + 0.25) = 0.25; 1 - mean = 0.375.
  const std::vector<float> a = {1, 0, 0, 0.5, 0.5, 0};
  const std::vector<float> b = {0, 1, 0, 0.5, 0.25, 0.25};
  EXPECT_NEAR(RouteSimilarity(a, b, 2), 0.375, 1e-12);
  EXPECT_DOUBLE_EQ(RouteSimilarity(a, a, 2), 1.0);
  EXPECT_NEAR(RouteSimilarity(std::vector<float>{1, 0}, std::vector<float>{0, 1}, 1), 0.0, 1e-12);
}

TEST(RouteAgreementTest, JaccardCosineAndPartialCorrelation) {
  EXPECT_DOUBLE_EQ(Jaccard({"a", "b", "c"}, {"b", "c", "d"}), 0.5);
  EXPECT_DOUBLE_EQ(Jaccard({"a"}, {"a"}), 1.0);
  EXPECT_DOUBLE_EQ(Jaccard({"a"}, {"b"}), 0.0);
  EXPECT_DOUBLE_EQ(Jaccard({}, {}), 0.0);
  EXPECT_NEAR(CosineSimilarity(std::vector<float>{1, 0}, std::vector<float>{1, 1}),
              1 / std::sqrt(2.0), 1e-7);
  EXPECT_DOUBLE_EQ(CosineSimilarity(std::vector<float>{0, 0}, std::vector<float>{1, 1}), 0.0);
  // (0.5 - 0.25) / sqrt(0.75 * 0.75).
  EXPECT_NEAR(PartialCorrelation(0.5, 0.5, 0.5), 1.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(PartialCorrelation(0.3, 0, 0), 0.3);
  EXPECT_TRUE(std::isnan(PartialCorrelation(0.3, 1, 0.2)));
}

TEST(RouteAgreementTest, PlantedStructureIsFoundWithTheSmallestPValue) {
  const Example example = PlantedExample();
  const absl::StatusOr<RouteAgreement> agreement =
      MeasureRouteAgreement(example.routes, example.skills, Options(999));
  ASSERT_TRUE(agreement.ok()) << agreement.status();
  EXPECT_EQ(agreement->n_tasks, 12);
  EXPECT_EQ(agreement->n_pairs, 66);
  EXPECT_NEAR(agreement->spearman.statistic, 1.0, 1e-12);
  // Only the (4!)^3 3! of 12! label permutations that keep the groups reach rho = 1.
  EXPECT_LE(agreement->spearman.p_value, 3.0 / 1000);
  EXPECT_FALSE(agreement->partial.has_value());
  EXPECT_FALSE(agreement->held_out.has_value());
}

TEST(RouteAgreementTest, RandomRoutesRejectAtTheNominalRate) {
  std::mt19937_64 rng(7);
  const std::vector<std::string> pool = {"a", "b", "c", "d"};
  int rejections = 0;
  std::vector<double> p_values;
  for (int data_set = 0; data_set < 100; ++data_set) {
    std::vector<std::vector<std::string>> skills;
    for (int i = 0; i < 10; ++i) {
      std::vector<std::string> set = {pool[rng() % 4]};
      if (rng() % 2 == 0 && pool[i % 4] != set[0]) set.push_back(pool[i % 4]);
      std::sort(set.begin(), set.end());
      skills.push_back(set);
    }
    Example example = MakeExample(skills);
    for (int i = 0; i < 10; ++i) AppendRandomRoute(&rng, &example.routes);
    const absl::StatusOr<RouteAgreement> agreement =
        MeasureRouteAgreement(example.routes, example.skills, Options(199, data_set));
    ASSERT_TRUE(agreement.ok()) << agreement.status();
    rejections += agreement->spearman.p_value <= 0.05;
    p_values.push_back(agreement->spearman.p_value);
  }
  EXPECT_LE(rejections, 12);
  EXPECT_GT(p_values.front(), 0.01);
  EXPECT_NEAR(std::accumulate(p_values.begin(), p_values.end(), 0.0) / p_values.size(), 0.5,
              0.1);
}

TEST(RouteAgreementTest, ConstantTaskVectorsLeaveThePartialEqualToThePlainCorrelation) {
  Example example = PlantedExample();
  std::mt19937_64 rng(3);
  for (size_t i = 0; i < example.routes.values.size(); ++i) {
    example.routes.values[i] = 0.5f * example.routes.values[i] + 0.1f * (rng() % 5);
  }
  AgreementOptions options = Options(499);
  options.task_vectors_source = "vectors";
  for (const std::string& task : example.routes.tasks) options.task_vectors[task] = {1, 2, 3};
  const absl::StatusOr<RouteAgreement> agreement =
      MeasureRouteAgreement(example.routes, example.skills, options);
  ASSERT_TRUE(agreement.ok()) << agreement.status();
  ASSERT_TRUE(agreement->partial.has_value());
  EXPECT_DOUBLE_EQ(agreement->partial->statistic, agreement->spearman.statistic);
  EXPECT_DOUBLE_EQ(agreement->partial->p_value, agreement->spearman.p_value);

  // Task vectors that are the routes themselves (a router adding nothing to its input)
  // explain most of the agreement away.
  const size_t row = kLayers * kExperts;
  for (size_t i = 0; i < example.routes.tasks.size(); ++i) {
    options.task_vectors[example.routes.tasks[i]] = std::vector<float>(
        example.routes.values.begin() + i * row, example.routes.values.begin() + (i + 1) * row);
  }
  const absl::StatusOr<RouteAgreement> explained =
      MeasureRouteAgreement(example.routes, example.skills, options);
  ASSERT_TRUE(explained.ok()) << explained.status();
  EXPECT_LT(std::fabs(explained->partial->statistic), agreement->spearman.statistic / 2);
}

TEST(RouteAgreementTest, HeldOutTasksNearestTrainTaskAgainstItsPermutationNull) {
  // Train t0 {a}, t1 {b}, t2 {c}; held out t3 {a}, t4 {b}, t5 {c} routed as t0, t1, t2, and
  // t6 {a} routed as t1: 3 of 4 share a skill with their nearest train task. Only the identity
  // of the 3! train-label permutations reaches 3/4 (p ~ 1/6); each held-out task matches with
  // probability 1/3 (null mean 1/3).
  Example example = MakeExample({{"a"}, {"b"}, {"c"}, {"a"}, {"b"}, {"c"}, {"a"}});
  for (int expert : {0, 1, 2, 0, 1, 2, 1}) AppendOneHotRoute(expert, &example.routes);
  HoldOutAllBut({"t0", "t1", "t2"}, &example.skills);
  const absl::StatusOr<RouteAgreement> agreement =
      MeasureRouteAgreement(example.routes, example.skills, Options(9999));
  ASSERT_TRUE(agreement.ok()) << agreement.status();
  ASSERT_TRUE(agreement->held_out.has_value());
  const HeldOutNeighbours& held_out = *agreement->held_out;
  EXPECT_EQ(held_out.held_out_tasks, 4);
  EXPECT_EQ(held_out.train_tasks, 3);
  EXPECT_DOUBLE_EQ(held_out.fraction, 0.75);
  EXPECT_NEAR(held_out.null_mean, 1.0 / 3.0, 0.02);
  EXPECT_NEAR(held_out.p_value, 1.0 / 6.0, 0.02);
}

TEST(RouteAgreementTest, OntologyCategoriesAreOneSkillEach) {
  Ontology ontology;
  ontology.categories = {{"qa", {{"x", {"q1", "q2"}}}}, {"cls", {{"y", {"c1"}}, {"z", {"c2"}}}}};
  const TaskSkillTable table = SkillsFromOntology(ontology, "ontology.json");
  EXPECT_EQ(table.skills.at("c2"), std::vector<std::string>{"cls"});
  EXPECT_DOUBLE_EQ(Jaccard(table.skills.at("c1"), table.skills.at("c2")), 1.0);
  EXPECT_DOUBLE_EQ(Jaccard(table.skills.at("q1"), table.skills.at("c2")), 0.0);
  EXPECT_TRUE(table.held_out.empty());
}

TEST(RouteAgreementTest, MalformedInputsNameTheirFiles) {
  Example example = PlantedExample();
  example.routes.tasks.pop_back();
  absl::StatusOr<RouteAgreement> agreement =
      MeasureRouteAgreement(example.routes, example.skills, Options(9));
  ASSERT_FALSE(agreement.ok());
  EXPECT_THAT(agreement.status().message(),
              HasSubstr("routes.npy has 12 rows but route_tasks.json names 11 tasks"));

  example = PlantedExample();
  example.routes.tasks[4] = "unknown";
  agreement = MeasureRouteAgreement(example.routes, example.skills, Options(9));
  ASSERT_FALSE(agreement.ok());
  EXPECT_THAT(agreement.status().message(),
              HasSubstr("skills.json has no task \"unknown\" (row 4 of route_tasks.json)"));

  example = PlantedExample();
  AgreementOptions options = Options(9);
  options.task_vectors = {{"t0", {1.f}}};
  options.task_vectors_source = "vectors/id2task.json";
  agreement = MeasureRouteAgreement(example.routes, example.skills, options);
  ASSERT_FALSE(agreement.ok());
  EXPECT_THAT(agreement.status().message(),
              HasSubstr("vectors/id2task.json has no vector of task \"t1\""));
  EXPECT_FALSE(MeasureRouteAgreement(example.routes, example.skills, Options(0)).ok());
}

TEST(RouteAgreementTest, SkillsJsonReadsNamesSplitsAndSkillsAndNamesItself) {
  const std::string dir = ::testing::TempDir();
  const std::string path = dir + "/skills.json";
  ASSERT_TRUE(WriteFileAtomically(path, R"({"skills": [{"name": "filter"},
      {"name": "rotate", "control": true}], "tasks": [
      {"name": "x", "split": "train", "skills": ["rotate", "filter", "rotate"], "category": "c"},
      {"name": "y", "split": "test", "skills": []}]})")
                  .ok());
  const absl::StatusOr<TaskSkillTable> table = ReadSkillsJson(path);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->skills.at("x"), (std::vector<std::string>{"filter", "rotate"}));
  EXPECT_EQ(table->held_out, (std::set<std::string, std::less<>>{"y"}));
  EXPECT_EQ(table->control_skills, (std::set<std::string, std::less<>>{"rotate"}));
  EXPECT_TRUE(table->IsControlTask("x"));
  EXPECT_FALSE(table->IsControlTask("y"));

  const std::pair<const char*, const char*> bad[] = {
      {R"({"tasks": [{"name": "x", "split": "train"}]})", "tasks[0]: expected a \"skills\" list"},
      {R"({"tasks": [{"name": "x", "split": "train", "skills": [1]}]})", "skills[0]"},
      {R"({"tasks": [{"name": "x", "split": 3, "skills": []}]})", "expected a string \"split\""},
      {R"({"skills": [{"name": "sort"}], "tasks": [{"name": "x", "skills": ["rot"]}]})",
       "names skill \"rot\""},
      {R"({"tasks": [{"name": "x", "split": "dev", "skills": []},
                     {"name": "x", "split": "dev", "skills": []}]})", "listed twice"},
      {"[1, 2]", "expected a JSON object with a \"tasks\" list"}};
  for (const auto& [text, message] : bad) {
    ASSERT_TRUE(WriteFileAtomically(path, text).ok());
    const absl::StatusOr<TaskSkillTable> read = ReadSkillsJson(path);
    ASSERT_FALSE(read.ok()) << text;
    EXPECT_THAT(read.status().message(), HasSubstr(path)) << text;
    EXPECT_THAT(read.status().message(), HasSubstr(message)) << text;
  }
}

TEST(RouteAgreementTest, BootstrapMeanOverFiles) {
  const std::optional<MeanInterval> one = BootstrapMean({0.4, NAN}, 1000, 1);
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->n, 1);
  EXPECT_DOUBLE_EQ(one->low, 0.4);
  EXPECT_DOUBLE_EQ(one->high, 0.4);
  const std::optional<MeanInterval> three = BootstrapMean({0.1, 0.2, 0.6}, 1000, 1);
  ASSERT_TRUE(three.has_value());
  EXPECT_NEAR(three->mean, 0.3, 1e-12);
  EXPECT_GE(three->low, 0.1);
  EXPECT_LT(three->low, three->mean);
  EXPECT_GT(three->high, three->mean);
  EXPECT_LE(three->high, 0.6);
  EXPECT_FALSE(BootstrapMean({NAN}, 1000, 1).has_value());
}

}  // namespace
}  // namespace taskmoe
