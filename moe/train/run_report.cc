#include "moe/train/run_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "data/gym/gym_writer.h"
#include "data/metrics.h"
#include "data/route_agreement.h"
#include "moe/base/status_macros.h"
#include "moe/drawing/route_map.h"
#include "moe/train/run_outputs.h"

namespace taskmoe {

namespace {

constexpr int kSummaryPermutations = 999;

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

// The skills of the run's tasks: the gym's skills.json beside the data when there is one, else
// the ontology's categories (tasks outside it share kUnlistedCategory).
absl::StatusOr<TaskSkillTable> RunSkills(const ExperimentData& data, std::string* basis) {
  const std::string skills_path = data.data_dir + "/" + gym::kSkillsFile;
  if (std::filesystem::exists(skills_path)) {
    *basis = "skills";
    return ReadSkillsJson(skills_path);
  }
  if (!data.ontology.has_value()) {
    return absl::NotFoundError(absl::StrCat("no ", skills_path, " and no ontology"));
  }
  *basis = "categories";
  TaskSkillTable table;
  table.source = "the run's ontology";
  for (const std::string& task : data.train_tasks) table.skills[task] = {CategoryOf(data, task)};
  return table;
}

// Are tasks sharing skills routed more alike? Spearman rho of route vs skill similarity over
// pairs of train tasks; few permutations, so that the end of a run stays quick.
absl::Status MeasureAgreement(const ExperimentData& data, const at::Tensor& routes,
                              RunSummary* summary) {
  TASKMOE_ASSIGN_OR_RETURN(TaskSkillTable skills,
                           RunSkills(data, &summary->route_agreement_basis));
  // Every routed task was trained on, whatever split skills.json gives it.
  HoldOutAllBut(data.train_tasks, &skills);
  TASKMOE_ASSIGN_OR_RETURN(RouteTable table, RouteTableFromTensor(routes));
  NamedRoutes named;
  named.source = "the run's routes";
  named.tasks_source = "the run's train tasks";
  named.tasks = data.train_tasks;
  named.values = std::move(table.values);
  named.layers = table.layers;
  named.experts = table.experts;
  AgreementOptions options;
  options.permutations = kSummaryPermutations;
  TASKMOE_ASSIGN_OR_RETURN(const RouteAgreement agreement,
                           MeasureRouteAgreement(named, skills, options));
  summary->route_agreement_rho = agreement.spearman.statistic;
  summary->route_agreement_p_value = agreement.spearman.p_value;
  if (std::isnan(agreement.spearman.statistic)) {
    summary->route_agreement_note = "undefined: every task pair equally alike in routes or skills";
  }
  return absl::OkStatus();
}

std::string AgreementText(const RunSummary& summary) {
  const std::string name = absl::StrCat(
      "route-", summary.route_agreement_basis == "categories" ? "category" : "skill",
      " agreement");
  if (!summary.route_agreement_note.empty()) {
    return absl::StrCat(name, ": ", summary.route_agreement_note, "\n");
  }
  return absl::StrFormat(
      "%s (Spearman rho of route vs %s similarity over task pairs): %.4f, p = %.4f (%d "
      "permutations)\n",
      name, summary.route_agreement_basis == "categories" ? "category" : "skill",
      summary.route_agreement_rho, summary.route_agreement_p_value, kSummaryPermutations);
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
  absl::StrAppend(&text, AgreementText(summary));
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
  if (absl::Status status = MeasureAgreement(data, routes, &summary); !status.ok()) {
    summary.route_agreement_note = absl::StrCat("not measured (", status.message(), ")");
  }
  summary.text = ReportText(summary);
  return summary;
}

}  // namespace taskmoe
