#include "moe/train/route_evolution.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "moe/base/status_macros.h"
#include "moe/formats/bart_config.h"
#include "moe/formats/npy.h"
#include "moe/formats/task_table.h"
#include "moe/train/checkpoint.h"
#include "moe/train/run_data.h"
#include "moe/train/run_outputs.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

constexpr char kEvalsDir[] = "evals";
constexpr char kStepPrefix[] = "step_";

// The step of an evaluation directory's name "step_<N>", or -1 for any other name.
int64_t StepOf(const std::string& name) {
  if (!absl::StartsWith(name, kStepPrefix)) return -1;
  const std::string digits = name.substr(sizeof(kStepPrefix) - 1);
  int64_t step = -1;
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(digits, &step)) {
    return -1;
  }
  return step;
}

// The soft route view of one evaluation directory.
absl::StatusOr<std::string> RouteFileIn(const std::string& dir) {
  const std::string path = dir + "/" + kRoutesFile;
  if (!fs::exists(path)) return absl::NotFoundError(absl::StrCat(dir, " holds no ", kRoutesFile));
  return path;
}

std::string ShapeText(const RouteTable& table) {
  return absl::StrCat("[", table.tasks, ", ", table.layers, ", ", table.experts, "]");
}

}  // namespace

absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> EvaluationDirs(
    const std::string& run_dir) {
  const std::string evals = run_dir + "/" + kEvalsDir;
  std::error_code error;
  fs::directory_iterator it(evals, error);
  if (error) {
    return absl::NotFoundError(
        absl::StrCat("cannot list the evaluations of run ", run_dir, ": ", evals, ": ",
                     error.message()));
  }
  std::vector<std::pair<int64_t, std::string>> dirs;
  for (const fs::directory_entry& entry : it) {
    const int64_t step = StepOf(entry.path().filename().string());
    if (step >= 0 && entry.is_directory()) dirs.emplace_back(step, entry.path().string());
  }
  if (dirs.empty()) {
    return absl::NotFoundError(absl::StrCat(evals, " holds no evaluation (", kStepPrefix,
                                            "<N> directories); has the run evaluated yet?"));
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

absl::StatusOr<RouteEvolution> ReadRouteEvolution(const std::string& run_dir) {
  TASKMOE_ASSIGN_OR_RETURN(const auto dirs, EvaluationDirs(run_dir));
  RouteEvolution evolution;
  std::string first_file;
  for (const auto& [step, dir] : dirs) {
    TASKMOE_ASSIGN_OR_RETURN(const std::string file, RouteFileIn(dir));
    TASKMOE_ASSIGN_OR_RETURN(RouteTable table, ReadRouteTable(file));
    const std::string tasks_file = dir + "/" + kRouteTasksFile;
    TASKMOE_ASSIGN_OR_RETURN(std::vector<std::string> names, TaskTable::ReadNames(tasks_file));
    if (static_cast<int64_t>(names.size()) != table.tasks) {
      return absl::InvalidArgumentError(absl::StrCat(tasks_file, " names ", names.size(),
                                                     " tasks but ", file, " has ", table.tasks,
                                                     " rows"));
    }
    if (evolution.frames.empty()) {
      evolution.task_names = std::move(names);
      first_file = file;
    } else {
      const RouteTable& first = evolution.frames.front().routes;
      if (table.tasks != first.tasks || table.layers != first.layers ||
          table.experts != first.experts) {
        return absl::InvalidArgumentError(absl::StrCat(file, " holds routes ", ShapeText(table),
                                                       " but ", first_file, " holds ",
                                                       ShapeText(first)));
      }
      if (names != evolution.task_names) {
        return absl::InvalidArgumentError(absl::StrCat(
            tasks_file, " names other tasks than the first evaluation's (", first_file, ")"));
      }
    }
    evolution.steps.push_back(step);
    evolution.frames.push_back({std::move(table), absl::StrCat("step ", step)});
  }
  return evolution;
}

absl::Status WriteRouteEvolutionGif(const std::string& run_dir, const std::string& gif_path,
                                    const RouteEvolutionOptions& options) {
  TASKMOE_ASSIGN_OR_RETURN(const RouteEvolution evolution, ReadRouteEvolution(run_dir));
  return WriteRouteMapGif(evolution.frames, evolution.task_names, options.categories,
                          options.layer_labels, gif_path, options.map, options.frame_delay_ms);
}

absl::StatusOr<std::string> RunOntologyPath(const std::string& run_dir) {
  if (!fs::exists(run_dir + "/" + kExperimentFile)) return std::string();
  TASKMOE_ASSIGN_OR_RETURN(const ExperimentConfig config, ReadCheckpointExperiment(run_dir));
  return OntologyPath(config);
}

std::vector<std::string> RunLayerLabels(const std::string& run_dir, int64_t layers) {
  for (const char* checkpoint : {kLastCheckpoint, kBestCheckpoint}) {
    const absl::StatusOr<BartConfig> config =
        LoadBartConfig(absl::StrCat(run_dir, "/", checkpoint, "/", kModelConfigFile));
    if (config.ok() && config->encoder_layers + config->decoder_layers == layers) {
      return EncoderDecoderLayerLabels(config->encoder_layers, config->decoder_layers);
    }
  }
  return {};
}

}  // namespace taskmoe
