#ifndef TASKMOE_MOE_REPORT_RUN_RECORD_H_
#define TASKMOE_MOE_REPORT_RUN_RECORD_H_

// What the report of a trainer run shows, read from the run directory (docs/formats.md): the
// config, the evaluation history, per-task dev and test scores, the route images and the
// route-skill agreement of the best routes. Whatever is missing is noted, not fatal.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "data/crossfit.h"
#include "moe/report/report_inputs.h"
#include "moe/train/checkpoint.h"
#include "moe/train/evaluation.h"
#include "moe/train/experiment.pb.h"
#include "moe/train/run_report.h"

namespace taskmoe {

struct RunRecord {
  std::string dir;
  std::string experiment_text;             // experiment.pbtxt as the run wrote it
  std::optional<ExperimentConfig> config;  // parsed; unset when it does not parse
  std::optional<TrainerState> state;       // last/trainer_state.json: history, best step
  // evals/step_<N>/dev_results.csv of every evaluation, in step order.
  std::vector<std::pair<int64_t, std::vector<TaskScore>>> evaluations;
  // The final predictions of the best checkpoint: predict/eval-{dev,test}-performance.csv.
  std::vector<TaskScore> dev_scores;
  std::vector<TaskScore> test_scores;
  std::optional<Ontology> ontology;            // the one the run grouped its tasks by
  std::string routes_dir;                      // best/, or predict/ of a run that only predicted
  std::string route_map_png;                   // <routes_dir>/route.png, the soft routes' heatmap
  std::string routes_gif;                      // routes.gif, one frame per evaluation
  std::optional<RunRouteAgreement> agreement;  // of <routes_dir>/route.npy
  ReportInputs inputs;
};

// Reads `dir`. Errors: `dir` holds no experiment.pbtxt (not a run directory).
absl::StatusOr<RunRecord> ReadRunRecord(const std::string& dir);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_REPORT_RUN_RECORD_H_
