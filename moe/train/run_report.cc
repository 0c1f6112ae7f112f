#include "moe/train/run_report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "data/metrics.h"
#include "moe/drawing/route_map.h"

namespace taskmoe {

namespace {

// A task's ontology category; tasks outside the ontology share kUnlistedCategory.
std::string CategoryOf(const ExperimentData& data, const std::string& task) {
  const std::string c = data.ontology.has_value() ? data.ontology->CategoryOf(task) : "";
  return c.empty() ? std::string(kUnlistedCategory) : c;
}

std::vector<CategoryPerformance> PerCategory(const ExperimentData& data,
                                             const std::vector<TaskScore>& dev_scores) {
  std::map<std::string, CategoryPerformance> per_category;
  for (const TaskScore& score : dev_scores) {
    CategoryPerformance& c = per_category[CategoryOf(data, score.task)];
    ++c.tasks;
    if (std::isnan(score.performance)) {
      ++c.undefined_tasks;
    } else {
      c.performance += score.performance;
    }
  }
  std::vector<CategoryPerformance> performance;
  for (auto& [category, c] : per_category) {
    c.category = category;
    c.performance /= c.tasks;
    performance.push_back(c);
  }
  return performance;
}

// Mean dev performance of predicting each task's most frequent training output.
double MajorityBaseline(const ExperimentData& data) {
  const TokenizedDataset& train = data.train.tokens;
  const TokenizedDataset& dev = data.dev.tokens;
  std::vector<std::map<std::string, int>> output_counts(train.tasks.size());
  for (size_t i = 0; i < train.examples.size(); ++i) {
    ++output_counts[train.examples[i].task_id][data.train.references[i][0]];
  }
  double baseline_sum = 0;
  for (size_t task = 0; task < dev.tasks.size(); ++task) {
    const auto train_task = std::find(train.tasks.begin(), train.tasks.end(), dev.tasks[task]);
    const auto& counts = output_counts[train_task - train.tasks.begin()];
    const std::string majority =
        std::max_element(counts.begin(), counts.end(), [](const auto& a, const auto& b) {
          return a.second < b.second;
        })->first;
    std::vector<std::vector<std::string>> references;
    for (size_t i = 0; i < dev.examples.size(); ++i) {
      if (dev.examples[i].task_id == static_cast<int32_t>(task)) {
        references.push_back(data.dev.references[i]);
      }
    }
    absl::StatusOr<Metric> metric = data.metrics.MetricOf(dev.tasks[task]);
    absl::StatusOr<double> value = ::taskmoe::Evaluate(
        std::vector<std::string>(references.size(), majority), references, *metric);
    baseline_sum += value.ok() && std::isfinite(*value) ? *value : 0.0;
  }
  return baseline_sum / std::max<size_t>(1, dev.tasks.size());
}

// Are tasks of one category routed more alike than tasks of two? Mean L1 distances of the
// routes [train tasks, layers, E] of task pairs within and between categories.
void RouteDistances(const ExperimentData& data, const at::Tensor& routes, RunSummary* summary) {
  double within = 0, between = 0;
  int64_t within_pairs = 0, between_pairs = 0;
  const at::Tensor flat = routes.reshape({routes.size(0), -1});
  for (int64_t a = 0; a < flat.size(0); ++a) {
    for (int64_t b = a + 1; b < flat.size(0); ++b) {
      const double d = (flat[a] - flat[b]).abs().mean().item<double>();
      if (CategoryOf(data, data.train_tasks[a]) == CategoryOf(data, data.train_tasks[b])) {
        within += d;
        ++within_pairs;
      } else {
        between += d;
        ++between_pairs;
      }
    }
  }
  summary->within_category_route_distance = within_pairs ? within / within_pairs : 0.0;
  summary->between_category_route_distance = between_pairs ? between / between_pairs : 0.0;
}

std::string ReportText(const RunSummary& summary) {
  std::string text;
  absl::StrAppend(&text, "\nTaskMoE run finished: ", summary.steps, " steps, outputs in ",
                  summary.output_dir, "\n");
  absl::StrAppend(&text, absl::StrFormat("best dev performance %.4f at step %d\n",
                                         summary.best_dev_performance, summary.best_step));
  absl::StrAppend(&text, "dev performance of the best checkpoint per category:\n");
  for (const CategoryPerformance& c : summary.category_performance) {
    absl::StrAppend(&text, absl::StrFormat("  %-24s %.4f", c.category, c.performance));
    if (c.undefined_tasks > 0) {
      absl::StrAppend(&text, absl::StrFormat("  (%d of %d tasks with an undefined metric, as 0)",
                                             c.undefined_tasks, c.tasks));
    }
    absl::StrAppend(&text, "\n");
  }
  absl::StrAppend(&text, absl::StrFormat(
                             "trivial baseline (most frequent training output): %.4f\n",
                             summary.majority_baseline));
  absl::StrAppend(&text, absl::StrFormat(
                             "mean L1 route distance: within a category %.4f, between "
                             "categories %.4f\n",
                             summary.within_category_route_distance,
                             summary.between_category_route_distance));
  absl::StrAppend(&text, "route map: ", summary.route_map_path, "\n");
  return text;
}

}  // namespace

RunSummary SummarizeRun(const ExperimentData& data, const TrainerState& state,
                        const std::string& output_dir, const std::vector<TaskScore>& dev_scores,
                        const at::Tensor& routes, const std::string& route_map_path) {
  RunSummary summary;
  summary.output_dir = output_dir;
  summary.steps = state.step;
  summary.best_dev_performance = state.best_dev_performance;
  summary.best_step = state.best_step;
  summary.route_map_path = route_map_path;
  summary.category_performance = PerCategory(data, dev_scores);
  summary.majority_baseline = MajorityBaseline(data);
  RouteDistances(data, routes, &summary);
  summary.text = ReportText(summary);
  return summary;
}

}  // namespace taskmoe
