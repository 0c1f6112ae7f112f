#include "moe/train/run_report.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "moe/base/file_io.h"
#include "moe/drawing/route_map.h"

namespace taskmoe {
namespace {

ExperimentData TwoCategoryData() {
  ExperimentData data;
  data.train_tasks = {"a1", "a2", "b1"};
  Ontology ontology;
  ontology.categories = {{"alpha", {{"sub", {"a1", "a2"}}}}, {"beta", {{"sub", {"b1"}}}}};
  data.ontology = ontology;
  return data;
}

// a1 and a2 routed alike, b1 apart, as their categories (or skills) go: rho 1. Of the 3! task
// label permutations, the 2 keeping {a1, a2} together reach it: p about 1/3.
at::Tensor AgreeingRoutes() {
  return at::tensor({1.f, 0.f, 1.f, 0.f, 0.f, 1.f}).reshape({3, 1, 2});
}

TaskScore Score(const std::string& task, double performance) {
  TaskScore score;
  score.task = task;
  score.performance = performance;
  return score;
}

TEST(RunReportTest, UndefinedMetricsCountAsZeroPerCategoryAndAreCounted) {
  const ExperimentData data = TwoCategoryData();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<TaskScore> scores = {Score("a1", 0.6), Score("a2", nan), Score("b1", 0.5)};
  TrainerState state;
  state.step = 10;
  const RunSummary summary =
      SummarizeRun(data, state, "/out", scores, AgreeingRoutes(), "/out/best/routes.png");

  ASSERT_EQ(summary.category_performance.size(), 2u);
  const CategoryPerformance& alpha = summary.category_performance[0];
  EXPECT_EQ(alpha.category, "alpha");
  EXPECT_DOUBLE_EQ(alpha.performance, 0.3);  // (0.6 + 0) / 2, as MeanPerformance counts it
  EXPECT_EQ(alpha.tasks, 2);
  EXPECT_EQ(alpha.undefined_tasks, 1);
  const CategoryPerformance& beta = summary.category_performance[1];
  EXPECT_EQ(beta.category, "beta");
  EXPECT_DOUBLE_EQ(beta.performance, 0.5);
  EXPECT_EQ(beta.undefined_tasks, 0);
  EXPECT_FALSE(absl::StrContains(summary.text, "nan")) << summary.text;
  EXPECT_TRUE(absl::StrContains(summary.text, "1 of 2 tasks with an undefined metric"))
      << summary.text;

  EXPECT_TRUE(absl::StrContains(summary.text, "route map: /out/best/routes.png")) << summary.text;
}

TEST(RunReportTest, WithoutAnOntologyEveryTaskIsUnlisted) {
  const std::vector<CategoryPerformance> performance =
      PerCategoryPerformance({Score("a1", 0.25), Score("b1", 0.75)}, std::nullopt);
  ASSERT_EQ(performance.size(), 1u);
  EXPECT_EQ(performance[0].category, kUnlistedCategory);
  EXPECT_DOUBLE_EQ(performance[0].performance, 0.5);
  EXPECT_EQ(performance[0].tasks, 2);
}

TEST(RunReportTest, RouteCategoryAgreementFromTheOntology) {
  const ExperimentData data = TwoCategoryData();
  const RunSummary summary =
      SummarizeRun(data, TrainerState(), "/out", {}, AgreeingRoutes(), "/out/routes.png");
  EXPECT_EQ(summary.route_agreement.basis, "categories");
  EXPECT_NEAR(summary.route_agreement.rho, 1.0, 1e-12);
  EXPECT_GT(summary.route_agreement.p_value, 0.25);
  EXPECT_LT(summary.route_agreement.p_value, 0.42);
  EXPECT_EQ(summary.route_agreement.permutations, 999);
  EXPECT_TRUE(absl::StrContains(summary.text, "route-category agreement (Spearman rho of route vs "
                                              "category similarity over task pairs): 1.0000, p = "))
      << summary.text;
}

TEST(RunReportTest, RouteSkillAgreementFromTheGymsSkillsJson) {
  ExperimentData data = TwoCategoryData();
  data.data_dir = ::testing::TempDir() + "/gym_with_skills";
  std::filesystem::create_directories(data.data_dir);
  // a1 shares a skill with a2 (Jaccard 1/2), none with b1.
  ASSERT_TRUE(WriteFileAtomically(data.data_dir + "/skills.json", R"({"tasks": [
      {"name": "a1", "split": "train", "skills": ["x"]},
      {"name": "a2", "split": "train", "skills": ["x", "y"]},
      {"name": "b1", "split": "train", "skills": ["z"]}]})")
                  .ok());
  const RunSummary summary =
      SummarizeRun(data, TrainerState(), "/out", {}, AgreeingRoutes(), "/out/routes.png");
  EXPECT_EQ(summary.route_agreement.basis, "skills");
  EXPECT_EQ(summary.route_agreement.skills_source, data.data_dir + "/skills.json");
  EXPECT_NEAR(summary.route_agreement.rho, 1.0, 1e-12);
  EXPECT_TRUE(absl::StrContains(summary.text, "route-skill agreement")) << summary.text;

  ASSERT_TRUE(WriteFileAtomically(data.data_dir + "/skills.json", R"({"tasks": []})").ok());
  const RunSummary broken =
      SummarizeRun(data, TrainerState(), "/out", {}, AgreeingRoutes(), "/out/routes.png");
  EXPECT_TRUE(std::isnan(broken.route_agreement.rho));
  EXPECT_TRUE(absl::StrContains(broken.text, "route-skill agreement: not measured (" +
                                                 data.data_dir + "/skills.json: lists no task)"))
      << broken.text;
}

TEST(RunReportTest, RouteAgreementNeedsSkillsOrAnOntology) {
  ExperimentData data = TwoCategoryData();
  data.ontology.reset();
  const RunSummary summary =
      SummarizeRun(data, TrainerState(), "/out", {}, AgreeingRoutes(), "/out/routes.png");
  EXPECT_TRUE(std::isnan(summary.route_agreement.rho));
  EXPECT_TRUE(absl::StrContains(summary.text, "not measured (no /skills.json and no ontology)"))
      << summary.text;
}

}  // namespace
}  // namespace taskmoe
