#ifndef TASKMOE_MOE_TRAIN_RUN_REPORT_H_
#define TASKMOE_MOE_TRAIN_RUN_REPORT_H_

#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

#include "data/crossfit.h"
#include "data/route_agreement.h"
#include "moe/train/checkpoint.h"
#include "moe/train/evaluation.h"
#include "moe/train/run_data.h"

namespace taskmoe {

// Mean dev performance of one ontology category's tasks. A task whose metric is undefined (NaN,
// e.g. Pearson correlation of constant predictions) counts as 0, as in the overall mean
// (MeanPerformance), and is counted in `undefined_tasks`.
struct CategoryPerformance {
  std::string category;
  double performance = 0;
  int tasks = 0;
  int undefined_tasks = 0;
};

// Mean performance of `scores` per ontology category, categories in name order; tasks outside
// `ontology` (every task without one) share kUnlistedCategory.
std::vector<CategoryPerformance> PerCategoryPerformance(const std::vector<TaskScore>& scores,
                                                        const std::optional<Ontology>& ontology);

// Route-skill agreement of a run's routes (data/route_agreement.h): Spearman rho of route vs
// skill similarity over pairs of the routed (train) tasks and its permutation p-value. Skills are
// those of <data_dir>/skills.json (the gym's) when it exists, else ontology categories.
struct RunRouteAgreement {
  std::string basis;          // "skills" or "categories"; empty when not measured
  std::string skills_source;  // the skills.json, or what the categories came from
  int permutations = 0;
  double rho = std::numeric_limits<double>::quiet_NaN();  // NaN when undefined or not measured
  double p_value = std::numeric_limits<double>::quiet_NaN();
  std::string note;  // why rho is NaN
};

// The agreement of `routes` (one row per train task) as the end-of-run summary measures it: few
// permutations (999, seed 1), so that the end of a run stays quick. Never fails: what stopped
// the measurement is in `note`.
RunRouteAgreement MeasureRunRouteAgreement(const NamedRoutes& routes, const std::string& data_dir,
                                           const std::optional<Ontology>& ontology);

struct RunSummary {
  std::string output_dir;
  int64_t steps = 0;
  double best_dev_performance = 0;
  int64_t best_step = 0;
  // Dev performance of the best checkpoint averaged per ontology category.
  std::vector<CategoryPerformance> category_performance;
  // Mean dev performance of predicting each task's most frequent training output.
  double majority_baseline = 0;
  // Route-skill agreement of the routes of the train tasks.
  RunRouteAgreement route_agreement;
  std::string route_map_path;
  // Per-task scores of the predicting checkpoint (the best one) when evaluation.do_predict.
  std::vector<TaskScore> dev_scores;
  std::vector<TaskScore> test_scores;
  std::string text;  // the report printed at the end
  // Wall seconds of the trainer's run (after set-up), and of them in dev evaluation during
  // training and in the final prediction; 0 when the run stopped early or only predicted.
  double seconds = 0;
  double evaluation_seconds = 0;
};

// The report printed at the end of a run: the best dev score, dev performance per ontology
// category, a trivial baseline (each task's most frequent training output), whether tasks
// sharing skills (else categories) get alike routes `routes` [train tasks, layers, E], and
// where the route map of those routes is.
RunSummary SummarizeRun(const ExperimentData& data, const TrainerState& state,
                        const std::string& output_dir, const std::vector<TaskScore>& dev_scores,
                        const at::Tensor& routes, const std::string& route_map_path);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_TRAIN_RUN_REPORT_H_
