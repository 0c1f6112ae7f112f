#ifndef TASKMOE_DATA_ROUTE_AGREEMENT_H_
#define TASKMOE_DATA_ROUTE_AGREEMENT_H_

// Route-skill agreement: are tasks that share skills routed alike? The statistic is Spearman's
// rank correlation, over all unordered pairs of tasks, between route similarity (1 - mean over
// layers of the total-variation distance of the two route distributions) and skill similarity
// (Jaccard overlap of the skill sets; with an ontology the one "skill" is the category, so 1 for
// the same category, else 0). Pairs are not independent, so its p-value permutes task labels
// (a Mantel test) instead of trusting the t distribution. Plain C++ (no LibTorch), so the
// trainer's end-of-run summary and tools/analyze_routes share it.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "data/crossfit.h"
#include "data/skills_file.h"

namespace taskmoe {

// Route weights of named tasks, float [tasks, layers, experts] row-major (routes.npy's layout).
struct NamedRoutes {
  std::string source;              // names the routes in errors, e.g. "a/route.npy"
  std::string tasks_source;        // names the task list in errors, e.g. "a/route_tasks.json"
  std::vector<std::string> tasks;  // one per row
  std::vector<float> values;
  int64_t layers = 0;
  int64_t experts = 0;
};

// Every task of `ontology` with its category as its one skill; none held out.
TaskSkillTable SkillsFromOntology(const Ontology& ontology, const std::string& source);

// Marks every task of `table` that `train_tasks` does not list as held out (a split file's
// train list decides instead of skills.json's "split").
void HoldOutAllBut(const std::vector<std::string>& train_tasks, TaskSkillTable* table);

// 1 - mean over layers of the total-variation distance (1/2 sum |a - b|) of two routes
// [layers, experts].
double RouteSimilarity(absl::Span<const float> a, absl::Span<const float> b, int64_t layers);

// |a n b| / |a u b| of two sorted, unique sets; 0 when both are empty (nothing is shared).
double Jaccard(const std::vector<std::string>& a, const std::vector<std::string>& b);

double CosineSimilarity(absl::Span<const float> a, absl::Span<const float> b);

// Ranks 1..n, tied values sharing the average of their ranks.
std::vector<double> AverageRanks(absl::Span<const double> values);

// Pearson correlation of the average ranks; NaN when either side is constant.
double SpearmanRho(absl::Span<const double> x, absl::Span<const double> y);

// The correlation of x and y with z partialled out, from the three pairwise correlations.
double PartialCorrelation(double r_xy, double r_xz, double r_yz);

struct AgreementOptions {
  int permutations = 9999;
  uint64_t seed = 1;
  // Task name -> task vector, for the partial correlation; empty: no partial correlation.
  std::map<std::string, std::vector<float>, std::less<>> task_vectors;
  std::string task_vectors_source;  // names the vectors in errors
};

// A statistic with its one-sided permutation p-value (1 + #{null >= observed}) / (1 + N). NaN
// both when the statistic is undefined (a constant similarity, e.g. every task in one category).
struct PermutationTest {
  double statistic = 0;
  double p_value = 0;
};

// Held-out tasks' nearest train task in route space: how often does it share a skill, against
// the same fraction after permuting the skill sets of the train tasks?
struct HeldOutNeighbours {
  int held_out_tasks = 0;
  int train_tasks = 0;
  double fraction = 0;   // of held-out tasks whose nearest train task shares >= 1 skill
  double null_mean = 0;  // of that fraction over the permutations
  double p_value = 0;
};

struct RouteAgreement {
  int n_tasks = 0;
  int n_pairs = 0;
  PermutationTest spearman;
  // Controlling for task-vector similarity (cosine): does the router add anything beyond its
  // input? Set when options.task_vectors is not empty.
  std::optional<PermutationTest> partial;
  // Set when the routes hold both held-out and train tasks.
  std::optional<HeldOutNeighbours> held_out;
};

// The agreement of `routes` with `skills` over every row of `routes`. Errors (naming the
// sources): a shape that does not match the task names, a task `skills` or the task vectors
// do not know, a repeated task, fewer than 3 tasks.
absl::StatusOr<RouteAgreement> MeasureRouteAgreement(const NamedRoutes& routes,
                                                     const TaskSkillTable& skills,
                                                     const AgreementOptions& options);

// ---- Over several routes files (seeds of one arm) ------------------------------------------

struct MeanInterval {
  int n = 0;  // values it averages (undefined ones left out)
  double mean = 0;
  double low = 0;  // 95% percentile-bootstrap interval of the mean
  double high = 0;
};

// Mean of the finite `values` with a seeded percentile-bootstrap 95% interval (resampling the
// values); nullopt when none is finite.
std::optional<MeanInterval> BootstrapMean(const std::vector<double>& values, int resamples,
                                          uint64_t seed);

struct RouteAgreementFile {
  std::string routes;       // path
  std::string route_tasks;  // path
  RouteAgreement agreement;
};

struct RouteAgreementReport {
  std::string basis;          // "skills" or "categories"
  std::string skills_source;  // skills.json or ontology.json
  int permutations = 0;
  uint64_t seed = 0;
  std::vector<RouteAgreementFile> files;
  std::optional<MeanInterval> spearman_rho;
  std::optional<MeanInterval> partial_spearman_rho;
  std::optional<MeanInterval> held_out_fraction;
};

// Fills the report's means from its files (bootstrap seeded with report->seed).
void SummarizeFiles(RouteAgreementReport* report);

// A markdown table: one row per file, then the mean with its interval.
std::string RouteAgreementMarkdown(const RouteAgreementReport& report);

// {"basis", "skills", "permutations", "seed", "files": [{"routes", "route_tasks", "n_tasks",
//  "n_pairs", "spearman_rho", "p_value", "partial_spearman_rho", "partial_p_value",
//  "held_out": {"n_held_out", "n_train", "fraction_sharing_skill", "null_mean", "p_value"}}],
//  "mean": {"n_files", "spearman_rho": {"mean", "ci95": [low, high], "n"},
//  "partial_spearman_rho", "held_out_fraction"}}; an undefined value is null.
std::string RouteAgreementJson(const RouteAgreementReport& report);

}  // namespace taskmoe

#endif  // TASKMOE_DATA_ROUTE_AGREEMENT_H_
