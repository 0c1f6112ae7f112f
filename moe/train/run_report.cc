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
std::string CategoryOf(const std::optional<Ontology>& ontology, const std::string& task) {
  const std::string c = ontology.has_value() ? ontology->CategoryOf(task) : "";
  return c.empty() ? std::string(kUnlistedCategory) : c;
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

// The skills of the routed tasks: the gym's skills.json in `data_dir` when there is one, else
// the ontology's categories (tasks outside it share kUnlistedCategory).
absl::StatusOr<TaskSkillTable> RunSkills(const std::string& data_dir,
                                         const std::optional<Ontology>& ontology,
                                         const std::vector<std::string>& tasks,
                                         RunRouteAgreement* agreement) {
  const std::string skills_path = data_dir + "/" + gym::kSkillsFile;
  if (std::filesystem::exists(skills_path)) {
    agreement->basis = "skills";
    agreement->skills_source = skills_path;
    return ReadSkillsJson(skills_path);
  }
  if (!ontology.has_value()) {
    return absl::NotFoundError(absl::StrCat("no ", skills_path, " and no ontology"));
  }
  agreement->basis = "categories";
  agreement->skills_source = "the run's ontology";
  TaskSkillTable table;
  table.source = agreement->skills_source;
  for (const std::string& task : tasks) table.skills[task] = {CategoryOf(ontology, task)};
  return table;
}

absl::Status MeasureAgreement(const NamedRoutes& routes, const std::string& data_dir,
                              const std::optional<Ontology>& ontology,
                              RunRouteAgreement* agreement) {
  TASKMOE_ASSIGN_OR_RETURN(TaskSkillTable skills,
                           RunSkills(data_dir, ontology, routes.tasks, agreement));
  // Every routed task was trained on, whatever split skills.json gives it.
  HoldOutAllBut(routes.tasks, &skills);
  AgreementOptions options;
  options.permutations = kSummaryPermutations;
  agreement->permutations = options.permutations;
  TASKMOE_ASSIGN_OR_RETURN(const RouteAgreement measured,
                           MeasureRouteAgreement(routes, skills, options));
  agreement->rho = measured.spearman.statistic;
  agreement->p_value = measured.spearman.p_value;
  if (std::isnan(measured.spearman.statistic)) {
    agreement->note = "undefined: every task pair equally alike in routes or skills";
  }
  return absl::OkStatus();
}

std::string AgreementText(const RunRouteAgreement& agreement) {
  const char* skill = agreement.basis == "categories" ? "category" : "skill";
  const std::string name = absl::StrCat("route-", skill, " agreement");
  if (!agreement.note.empty()) return absl::StrCat(name, ": ", agreement.note, "\n");
  return absl::StrFormat(
      "%s (Spearman rho of route vs %s similarity over task pairs): %.4f, p = %.4f (%d "
      "permutations)\n",
      name, skill, agreement.rho, agreement.p_value, agreement.permutations);
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
  absl::StrAppend(&text, AgreementText(summary.route_agreement));
  absl::StrAppend(&text, "route map: ", summary.route_map_path, "\n");
  return text;
}

}  // namespace

std::vector<CategoryPerformance> PerCategoryPerformance(const std::vector<TaskScore>& scores,
                                                        const std::optional<Ontology>& ontology) {
  std::map<std::string, CategoryPerformance> per_category;
  for (const TaskScore& score : scores) {
    CategoryPerformance& c = per_category[CategoryOf(ontology, score.task)];
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

RunRouteAgreement MeasureRunRouteAgreement(const NamedRoutes& routes, const std::string& data_dir,
                                           const std::optional<Ontology>& ontology) {
  RunRouteAgreement agreement;
  if (absl::Status status = MeasureAgreement(routes, data_dir, ontology, &agreement);
      !status.ok()) {
    agreement.rho = agreement.p_value = std::numeric_limits<double>::quiet_NaN();
    agreement.note = absl::StrCat("not measured (", status.message(), ")");
  }
  return agreement;
}

RunSummary SummarizeRun(const ExperimentData& data, const TrainerState& state,
                        const std::string& output_dir, const std::vector<TaskScore>& dev_scores,
                        const at::Tensor& routes, const std::string& route_map_path) {
  RunSummary summary;
  summary.output_dir = output_dir;
  summary.steps = state.step;
  summary.best_dev_performance = state.best_dev_performance;
  summary.best_step = state.best_step;
  summary.route_map_path = route_map_path;
  summary.category_performance = PerCategoryPerformance(dev_scores, data.ontology);
  summary.majority_baseline = MajorityBaseline(data);
  absl::StatusOr<RouteTable> table = RouteTableFromTensor(routes);
  if (table.ok()) {
    NamedRoutes named;
    named.source = "the run's routes";
    named.tasks_source = "the run's train tasks";
    named.tasks = data.train_tasks;
    named.values = std::move(table->values);
    named.layers = table->layers;
    named.experts = table->experts;
    summary.route_agreement = MeasureRunRouteAgreement(named, data.data_dir, data.ontology);
  } else {
    summary.route_agreement.note = absl::StrCat("not measured (", table.status().message(), ")");
  }
  summary.text = ReportText(summary);
  return summary;
}

}  // namespace taskmoe
