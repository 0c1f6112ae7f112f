#ifndef TASKMOE_MOE_REPORT_PIPELINE_RECORD_H_
#define TASKMOE_MOE_REPORT_PIPELINE_RECORD_H_

// What the report of an experiment pipeline's output directory (scripts/gym_pipeline.sh) shows:
// the statistics files of tools/aggregate_results --json (<name>_stats.json: arms, comparisons
// with intervals and p-values), the route-skill agreement files of tools/analyze_routes --json
// (routes_<arm>.json for the train tasks' routes, neighbours_<arm>.json for the routes of every
// task, held-out ones included), the phase timings and the markdown report.

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "moe/report/report_inputs.h"

namespace taskmoe {

// A point estimate with its 95% interval; NaN where undefined (null in the JSON).
struct IntervalEstimate {
  double mean = std::numeric_limits<double>::quiet_NaN();
  double low = std::numeric_limits<double>::quiet_NaN();
  double high = std::numeric_limits<double>::quiet_NaN();
};

struct ArmScoreRow {
  std::string name;
  IntervalEstimate test_points;  // mean test score in points
  int64_t n_seeds = 0;
  int64_t n_tasks = 0;
  int64_t n_samples = 0;
};

struct ComparisonRow {
  std::string name;        // "results vs baseline"
  std::string group;       // "all", "seen_skill", "control"
  IntervalEstimate delta;  // points
  IntervalEstimate arg;    // a fraction
  IntervalEstimate ratio_of_means;
  double p_value = std::numeric_limits<double>::quiet_NaN();
  double p_value_holm = std::numeric_limits<double>::quiet_NaN();
  int64_t n_seeds = 0;
  int64_t n_tasks = 0;
  int64_t n_samples = 0;
  std::vector<std::string> zero_baseline_tasks;  // "seed/task", left out of the ARG
};

// One <name>_stats.json.
struct StatisticsFile {
  std::string name;  // the file name without _stats.json, e.g. "finetune"
  std::string path;
  int64_t bootstrap_draws = 0;
  uint64_t seed = 0;
  std::vector<ArmScoreRow> arms;
  std::vector<ComparisonRow> comparisons;
};

struct RoutesFileAgreement {
  std::string routes;
  double rho = std::numeric_limits<double>::quiet_NaN();
  double p_value = std::numeric_limits<double>::quiet_NaN();
  double partial_rho = std::numeric_limits<double>::quiet_NaN();
  double partial_p_value = std::numeric_limits<double>::quiet_NaN();
  // Held-out tasks whose nearest train task in route space shares a skill (routes of every task,
  // held-out ones included): the fraction, its permutation null's mean and p.
  double held_out_fraction = std::numeric_limits<double>::quiet_NaN();
  double held_out_null_mean = std::numeric_limits<double>::quiet_NaN();
  double held_out_p_value = std::numeric_limits<double>::quiet_NaN();
};

// One routes_<arm>.json or neighbours_<arm>.json.
struct ArmAgreement {
  std::string arm;
  std::string path;
  std::string basis;   // "skills" or "categories"
  std::string skills;  // the skills.json or ontology.json
  int64_t permutations = 0;
  std::vector<RoutesFileAgreement> files;  // one per seed
  IntervalEstimate mean_rho;               // bootstrap over the files
  IntervalEstimate mean_partial_rho;
  IntervalEstimate mean_held_out_fraction;
};

struct PipelineRecord {
  std::string dir;
  std::vector<StatisticsFile> results;   // upstream, finetune, zero_shot first, then by name
  std::vector<ArmAgreement> agreements;  // routes_<arm>.json (train tasks' routes), by arm name
  std::vector<ArmAgreement> neighbours;  // neighbours_<arm>.json (every task's routes), by arm name
  std::vector<std::pair<std::string, int64_t>> phase_seconds;  // timings.tsv "phase:" lines
  std::string markdown_report;                                 // report.md
  ReportInputs inputs;
};

// Reads `dir`; a file that does not parse is left out with a note naming it. Errors: `dir` holds
// no statistics or agreement file (not a pipeline output).
absl::StatusOr<PipelineRecord> ReadPipelineRecord(const std::string& dir);

// Whether `dir` holds a <name>_stats.json, a routes_<arm>.json or a neighbours_<arm>.json.
bool IsPipelineOutput(const std::string& dir);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_REPORT_PIPELINE_RECORD_H_
