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

RunSummary SummarizeRun(const ExperimentData& data, const TrainerState& state,
                        const std::string& output_dir, const std::vector<TaskScore>& dev_scores,
                        const at::Tensor& routes) {
  RunSummary summary;
  summary.output_dir = output_dir;
  summary.steps = state.step;
  summary.best_dev_performance = state.best_dev_performance;
  summary.best_step = state.best_step;
  summary.route_map_path = output_dir + "/" + kBestCheckpoint + "/" + kRoutesImageFile;
  const auto category_of = [&data](const std::string& task) {
    const std::string c = data.ontology.has_value() ? data.ontology->CategoryOf(task) : "";
    return c.empty() ? std::string(kUnlistedCategory) : c;
  };
  std::map<std::string, std::pair<double, int>> per_category;
  for (const TaskScore& score : dev_scores) {
    auto& [sum, count] = per_category[category_of(score.task)];
    sum += score.performance;
    ++count;
  }
  for (const auto& [category, total] : per_category) {
    summary.category_performance.emplace_back(category, total.first / total.second);
  }
  // Trivial baseline: each task's most frequent training output as every prediction.
  std::vector<std::map<std::string, int>> output_counts(data.train.tokens.tasks.size());
  for (size_t i = 0; i < data.train.tokens.examples.size(); ++i) {
    ++output_counts[data.train.tokens.examples[i].task_id][data.train.references[i][0]];
  }
  double baseline_sum = 0;
  for (size_t task = 0; task < data.dev.tokens.tasks.size(); ++task) {
    const auto train_task = std::find(data.train.tokens.tasks.begin(),
                                      data.train.tokens.tasks.end(), data.dev.tokens.tasks[task]);
    const auto& counts = output_counts[train_task - data.train.tokens.tasks.begin()];
    const std::string majority =
        std::max_element(counts.begin(), counts.end(), [](const auto& a, const auto& b) {
          return a.second < b.second;
        })->first;
    std::vector<std::vector<std::string>> references;
    for (size_t i = 0; i < data.dev.tokens.examples.size(); ++i) {
      if (data.dev.tokens.examples[i].task_id == static_cast<int32_t>(task)) {
        references.push_back(data.dev.references[i]);
      }
    }
    absl::StatusOr<Metric> metric = data.metrics.MetricOf(data.dev.tokens.tasks[task]);
    absl::StatusOr<double> value =
        ::taskmoe::Evaluate(std::vector<std::string>(references.size(), majority), references,
                            *metric);
    baseline_sum += value.ok() && std::isfinite(*value) ? *value : 0.0;
  }
  summary.majority_baseline = baseline_sum / std::max<size_t>(1, data.dev.tokens.tasks.size());
  // Route distances: are tasks of one category routed more alike than tasks of two?
  double within = 0, between = 0;
  int64_t within_pairs = 0, between_pairs = 0;
  const at::Tensor flat = routes.reshape({routes.size(0), -1});
  for (int64_t a = 0; a < flat.size(0); ++a) {
    for (int64_t b = a + 1; b < flat.size(0); ++b) {
      const double d = (flat[a] - flat[b]).abs().mean().item<double>();
      if (category_of(data.train_tasks[a]) == category_of(data.train_tasks[b])) {
        within += d;
        ++within_pairs;
      } else {
        between += d;
        ++between_pairs;
      }
    }
  }
  summary.within_category_route_distance = within_pairs ? within / within_pairs : 0.0;
  summary.between_category_route_distance = between_pairs ? between / between_pairs : 0.0;

  std::string& text = summary.text;
  absl::StrAppend(&text, "\nTaskMoE run finished: ", summary.steps, " steps, outputs in ",
                  output_dir, "\n");
  absl::StrAppend(&text, absl::StrFormat("best dev performance %.4f at step %d\n",
                                         summary.best_dev_performance, summary.best_step));
  absl::StrAppend(&text, "dev performance of the best checkpoint per category:\n");
  for (const auto& [category, value] : summary.category_performance) {
    absl::StrAppend(&text, absl::StrFormat("  %-24s %.4f\n", category, value));
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
  return summary;
}

}  // namespace taskmoe
