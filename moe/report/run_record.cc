#include "moe/report/run_record.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "moe/train/route_evolution.h"
#include "moe/train/run_data.h"
#include "moe/train/run_outputs.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

// The scores of `path` when it exists and parses, else nullopt with a note.
std::optional<std::vector<TaskScore>> ReadScores(const std::string& path, absl::string_view what,
                                                 ReportInputs& inputs) {
  if (!fs::exists(path)) {
    inputs.notes.push_back(absl::StrCat(what, ": left out, no ", path));
    return std::nullopt;
  }
  absl::StatusOr<std::vector<TaskScore>> scores = ReadScoresCsv(path);
  if (!inputs.NoteUnless(scores.status(), what)) return std::nullopt;
  inputs.files.push_back(path);
  return *std::move(scores);
}

void ReadHistory(RunRecord& record) {
  const std::string path = absl::StrCat(record.dir, "/", kLastCheckpoint, "/", kTrainerStateFile);
  const std::optional<std::string> json = record.inputs.ReadIfPresent(path, "training curves");
  if (!json.has_value()) return;
  absl::StatusOr<TrainerState> state = TrainerStateFromJson(*json, path);
  if (record.inputs.NoteUnless(state.status(), "training curves")) record.state = *state;
}

void ReadScoreFiles(RunRecord& record) {
  const std::string predict = absl::StrCat(record.dir, "/", kPredictDir, "/");
  record.dev_scores = ReadScores(predict + "eval-dev-performance.csv",
                                 "dev scores of the best "
                                 "checkpoint",
                                 record.inputs)
                          .value_or(std::vector<TaskScore>());
  record.test_scores = ReadScores(predict + "eval-test-performance.csv",
                                  "test scores of the "
                                  "best checkpoint",
                                  record.inputs)
                           .value_or(std::vector<TaskScore>());
  absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> dirs = EvaluationDirs(record.dir);
  if (!record.inputs.NoteUnless(dirs.status(), "dev performance per category over training")) {
    return;
  }
  for (const auto& [step, dir] : *dirs) {
    std::optional<std::vector<TaskScore>> scores = ReadScores(
        dir + "/dev_results.csv", absl::StrCat("dev scores at step ", step), record.inputs);
    if (scores.has_value()) record.evaluations.emplace_back(step, *std::move(scores));
  }
}

void ReadOntologyOf(RunRecord& record) {
  const std::string path = OntologyPath(*record.config);
  if (path.empty()) return;
  absl::StatusOr<Ontology> ontology = ReadOntology(path);
  if (!record.inputs.NoteUnless(ontology.status(), "ontology categories")) return;
  record.inputs.files.push_back(path);
  record.ontology = *std::move(ontology);
}

// The routes of best/, or of predict/ in a run that only predicted (total_steps 0).
std::string RoutesDir(const std::string& run_dir) {
  for (const char* dir : {kBestCheckpoint, kPredictDir}) {
    const std::string candidate = absl::StrCat(run_dir, "/", dir);
    if (fs::exists(absl::StrCat(candidate, "/", kRoutesFile))) return candidate;
  }
  return "";
}

void ReadRoutes(RunRecord& record) {
  record.routes_gif =
      record.inputs.ReadIfPresent(absl::StrCat(record.dir, "/", kRouteGifFile), "route evolution")
          .value_or("");
  record.routes_dir = RoutesDir(record.dir);
  if (record.routes_dir.empty()) {
    record.inputs.notes.push_back(absl::StrCat("routes: left out, no ", kBestCheckpoint, "/",
                                               kRoutesFile, " or ", kPredictDir, "/", kRoutesFile,
                                               " in ", record.dir));
    return;
  }
  record.route_map_png =
      record.inputs
          .ReadIfPresent(absl::StrCat(record.routes_dir, "/", kRoutesImageFile), "route map")
          .value_or("");
  if (!record.config.has_value()) return;
  const std::string routes_path = absl::StrCat(record.routes_dir, "/", kRoutesFile);
  const std::string tasks_path = absl::StrCat(record.routes_dir, "/", kRouteTasksFile);
  absl::StatusOr<NamedRoutes> routes = ReadNamedRoutes(routes_path, tasks_path);
  if (!record.inputs.NoteUnless(routes.status(), "route-skill agreement")) return;
  record.inputs.files.push_back(routes_path);
  record.inputs.files.push_back(tasks_path);
  record.agreement =
      MeasureRunRouteAgreement(*routes, record.config->data().data_dir(), record.ontology);
}

}  // namespace

absl::StatusOr<RunRecord> ReadRunRecord(const std::string& dir) {
  RunRecord record;
  record.dir = dir;
  const std::string experiment = absl::StrCat(dir, "/", kExperimentFile);
  if (!fs::exists(experiment)) {
    return absl::NotFoundError(
        absl::StrCat(dir, " holds no ", kExperimentFile, ", so it is no trainer run directory"));
  }
  TASKMOE_ASSIGN_OR_RETURN(record.experiment_text, ReadFileBytes(experiment));
  record.inputs.files.push_back(experiment);
  absl::StatusOr<ExperimentConfig> config = ReadCheckpointExperiment(dir);
  if (record.inputs.NoteUnless(config.status(), "config summary, ontology, route agreement")) {
    record.config = *std::move(config);
    ReadOntologyOf(record);
  }
  ReadHistory(record);
  ReadScoreFiles(record);
  ReadRoutes(record);
  return record;
}

}  // namespace taskmoe
