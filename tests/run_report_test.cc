#include "moe/train/run_report.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

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
  // Task a1 and a2 routed alike, b1 apart: within-category distance 0, between 1.
  const at::Tensor routes = at::tensor({1.f, 0.f, 1.f, 0.f, 0.f, 1.f}).reshape({3, 1, 2});
  const RunSummary summary = SummarizeRun(data, state, "/out", scores, routes, "/out/best/routes.png");

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

  EXPECT_DOUBLE_EQ(summary.within_category_route_distance, 0.0);
  EXPECT_DOUBLE_EQ(summary.between_category_route_distance, 1.0);
  EXPECT_TRUE(absl::StrContains(summary.text, "route map: /out/best/routes.png")) << summary.text;
}

}  // namespace
}  // namespace taskmoe
