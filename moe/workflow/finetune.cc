#include "moe/workflow/finetune.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <optional>
#include <set>
#include <system_error>
#include <utility>

#include <ATen/ATen.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "data/crossfit.h"
#include "data/results.h"
#include "glog/logging.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "moe/formats/npy.h"
#include "moe/formats/task_table.h"
#include "moe/routing/expert_mask.h"
#include "moe/routing/routing.h"
#include "moe/train/checkpoint.h"
#include "moe/train/experiment_config.h"
#include "moe/train/model_builder.h"
#include "moe/train/trainer.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

constexpr char kResultsFile[] = "result.csv";
constexpr char kResultsHeader[] = ",prefix,lr,bsz,dev_performance,test_performance";
constexpr char kTaskRoutesFile[] = "task_routes.npy";
constexpr char kFileSplits[3][6] = {"train", "dev", "test"};

// What every run of one task shares: the config template with the model and routing resolved.
struct TaskSetup {
  std::string task;
  std::vector<std::string> prefixes;
  ExperimentConfig base;
  // A checkpoint's routing state is not continued: base names a plugin for the new tasks.
  bool fresh_routing_state = false;
};

// Prefixes of a task, each checked to have its three files.
absl::StatusOr<std::vector<std::string>> CheckedPrefixes(const std::string& data_dir,
                                                         const std::string& task) {
  const std::string task_dir = data_dir + "/" + task;
  if (const absl::Status directory = CheckDirectory(task_dir, "its directory"); !directory.ok()) {
    return absl::Status(directory.code(),
                        absl::StrCat("unknown task '", task, "': ", directory.message()));
  }
  absl::StatusOr<std::vector<std::string>> prefixes = ListPrefixes(task_dir);
  if (!prefixes.ok()) return prefixes.status();
  if (prefixes->empty()) {
    return absl::NotFoundError(absl::StrCat("task '", task, "': no *.tsv files in ", task_dir));
  }
  for (const std::string& prefix : *prefixes) {
    for (const char* split : kFileSplits) {
      const std::string path = absl::StrCat(task_dir, "/", prefix, "_", split, ".tsv");
      if (!fs::is_regular_file(path)) {
        return absl::NotFoundError(absl::StrCat("task '", task, "', prefix ", prefix,
                                                ": missing file ", path));
      }
    }
  }
  return prefixes;
}

// The task's vector in `table`, read from options.task_vectors_dir when given, else from the
// checkpoint; nullopt when the checkpoint's own table lacks it (an error for a given table).
absl::StatusOr<std::optional<at::Tensor>> TaskVector(const std::string& task,
                                                     const TaskTable& table,
                                                     const std::string& vectors_dir) {
  absl::StatusOr<int64_t> id = table.Id(task);
  if (!id.ok()) {
    if (!vectors_dir.empty()) {
      return absl::NotFoundError(absl::StrCat("task '", task, "' has no vector in ", vectors_dir,
                                              "/", TaskTable::kNamesFile));
    }
    return std::optional<at::Tensor>();
  }
  return std::optional<at::Tensor>(table.vectors()[*id].unsqueeze(0));
}

// The routing inputs of one task fine-tuned from a checkpoint, written to init_dir: a task table
// holding only this task (its vector, or zeros when no table has it) and, when the checkpoint's
// own routing is inherited, the task's routes, which stay fixed while fine-tuning.
absl::Status PrepareCheckpointInit(const FinetuneOptions& options, const Checkpoint* inherited,
                                   const TaskTable& vectors, int64_t vector_dim,
                                   const std::string& init_dir,
                                   TaskSetup* setup) {
  const std::string source = options.base.model().checkpoint();
  TASKMOE_RETURN_IF_ERROR(CreateDirectories(init_dir));
  TASKMOE_ASSIGN_OR_RETURN(const std::optional<at::Tensor> vector,
                           TaskVector(setup->task, vectors, options.task_vectors_dir));
  if (vector.has_value() && vector->size(1) != vector_dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the vector of task '", setup->task, "' has dimension ", vector->size(1), ", but ",
        source, "/", TaskTable::kVectorsFile, " has dimension ", vector_dim));
  }
  const at::Tensor task_vector = vector.value_or(at::zeros({1, vector_dim}, at::kFloat));
  TASKMOE_ASSIGN_OR_RETURN(const TaskTable table, TaskTable::Create({setup->task}, task_vector));
  TASKMOE_RETURN_IF_ERROR(table.Save(init_dir));
  setup->base.mutable_task_vectors()->set_dir(init_dir);
  setup->fresh_routing_state = inherited == nullptr;
  if (inherited == nullptr) return absl::OkStatus();

  // Without a vector the route must not depend on one.
  if (!vector.has_value() && inherited->plugin->RoutesDependOnTaskVectors() &&
      inherited->model->shape().experts > 1) {
    return absl::NotFoundError(absl::StrCat(
        "task '", setup->task, "' has no vector in ", source, "/", TaskTable::kNamesFile,
        " and the checkpoint's routing plugin '", inherited->experiment.routing().plugin(),
        "' routes from task vectors: give a task-vector table that holds it (e.g. from "
        "tools/compute_task_embeddings), or name a routing plugin such as average"));
  }
  const int64_t step = inherited->experiment.training().total_steps();
  at::Tensor routes;
  {
    // A sampling router draws the task's route from the run's seed: reruns route alike.
    PreserveCpuRng preserve;
    at::manual_seed(options.base.training().seed());
    routes = TaskRoutes(*inherited->plugin, task_vector, step);
  }
  const std::string routes_path = init_dir + "/" + kTaskRoutesFile;
  TASKMOE_RETURN_IF_ERROR(WriteNpy(routes_path, routes.to(at::kFloat).contiguous()));
  RoutingConfig* routing = setup->base.mutable_routing();
  routing->Clear();
  routing->set_fixed_routes_npy(routes_path);
  return absl::OkStatus();
}

bool EvaluationOnly(const FinetuneOptions& options) {
  return options.base.training().total_steps() == 0;
}

// The (learning rate, batch size) points of each prefix; evaluation only has one, (0, 0).
std::vector<std::pair<double, int>> GridPoints(const FinetuneOptions& options) {
  if (EvaluationOnly(options)) return {{0.0, 0}};
  std::vector<std::pair<double, int>> points;
  for (double lr : options.learning_rates) {
    for (int bsz : options.batch_sizes) points.emplace_back(lr, bsz);
  }
  return points;
}

absl::Status ValidateOptions(const FinetuneOptions& options) {
  if (options.tasks.empty()) return absl::InvalidArgumentError("finetune: no tasks given");
  if (std::set<std::string>(options.tasks.begin(), options.tasks.end()).size() !=
      options.tasks.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("finetune: a task is listed twice in ", absl::StrJoin(options.tasks, ",")));
  }
  if (EvaluationOnly(options)) {
    if (!options.learning_rates.empty() || !options.batch_sizes.empty()) {
      return absl::InvalidArgumentError(
          "finetune: training.total_steps is 0 (evaluation only): give no learning rates or "
          "batch sizes");
    }
  } else if (options.learning_rates.empty() || options.batch_sizes.empty()) {
    return absl::InvalidArgumentError(
        "finetune: the grid needs at least one learning rate and one batch size");
  }
  for (double lr : options.learning_rates) {
    if (!(lr > 0)) return absl::InvalidArgumentError(absl::StrCat("finetune: learning rate ", lr));
  }
  for (int bsz : options.batch_sizes) {
    if (bsz <= 0) return absl::InvalidArgumentError(absl::StrCat("finetune: batch size ", bsz));
  }
  if (options.max_prefixes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("finetune: max_prefixes ", options.max_prefixes));
  }
  if (options.output_dir.empty()) return absl::InvalidArgumentError("finetune: no output_dir");
  if (const absl::Status data_dir = CheckDirectory(options.base.data().data_dir(), "directory");
      !data_dir.ok()) {
    return absl::Status(data_dir.code(),
                        absl::StrCat("config field data.data_dir: ", data_dir.message()));
  }
  return absl::OkStatus();
}

// The template shared by every task. A checkpoint brings its own MoE structure (BuildModel
// reads its experiment.pbtxt); any other model needs a routing plugin for the new tasks.
absl::StatusOr<ExperimentConfig> ResolveBase(const FinetuneOptions& options) {
  ExperimentConfig base = options.base;
  if (base.model().has_checkpoint()) return base;
  if (!base.has_routing()) {
    return absl::InvalidArgumentError(
        "config field routing: fine-tuning a model that is not a TaskMoE checkpoint needs a "
        "routing plugin for the new tasks");
  }
  if (!options.task_vectors_dir.empty()) {
    base.mutable_task_vectors()->set_dir(options.task_vectors_dir);
  }
  return base;
}

// The rows of an existing result.csv (none when there is no file yet).
absl::StatusOr<std::vector<FinetuneResult>> ReadResults(const std::string& path) {
  std::vector<FinetuneResult> results;
  if (!fs::exists(path)) return results;
  absl::StatusOr<std::string> text = ReadFileBytes(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::vector<ResultRow>> rows = ParseResultCsv(*text, path);
  if (!rows.ok()) return rows.status();
  for (const ResultRow& row : *rows) {
    FinetuneResult r{row.prefix, 0, 0, row.dev_performance, row.test_performance};
    if (!absl::SimpleAtod(row.lr, &r.lr) || !absl::SimpleAtoi(row.bsz, &r.bsz)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": row of ", row.prefix,
                                                     ": lr '", row.lr, "' or bsz '", row.bsz,
                                                     "' is not a number"));
    }
    results.push_back(std::move(r));
  }
  return results;
}

// The score of `task` among a run's per-task scores.
absl::StatusOr<double> ScoreOf(const std::vector<TaskScore>& scores, const std::string& task,
                               const std::string& split, const std::string& run_dir) {
  for (const TaskScore& score : scores) {
    if (score.task == task) return score.performance;
  }
  return absl::InternalError(absl::StrCat(run_dir, ": the run has no ", split, " score of ", task));
}

absl::StatusOr<FinetuneResult> RunGridPoint(const TaskSetup& setup, const ExperimentData& data,
                                            const std::string& prefix, double lr, int bsz,
                                            const std::string& run_dir, bool keep_checkpoints) {
  std::error_code error;
  // A directory left by an interrupted run could hold a stale best checkpoint.
  fs::remove_all(run_dir, error);
  ExperimentConfig config = setup.base;
  config.set_output_dir(run_dir);
  if (config.training().total_steps() > 0) {
    config.mutable_optimizer()->set_lr(static_cast<float>(lr));
    config.mutable_training()->set_train_batch_size(bsz);
  }
  config.mutable_evaluation()->set_do_predict(true);
  TASKMOE_RETURN_IF_ERROR(ValidateExperimentConfig(config));
  RunInputs inputs;
  inputs.data = data;
  inputs.fresh_routing_state = setup.fresh_routing_state;
  absl::StatusOr<RunSummary> summary = RunExperiment(config, {}, std::move(inputs));
  if (!summary.ok()) {
    return absl::Status(summary.status().code(),
                        absl::StrCat(prefix, " lr ", PythonFloatRepr(lr), " bsz ", bsz, ": ",
                                     summary.status().message()));
  }
  FinetuneResult result{prefix, lr, bsz, 0, 0};
  TASKMOE_ASSIGN_OR_RETURN(result.dev_performance,
                           ScoreOf(summary->dev_scores, setup.task, "dev", run_dir));
  TASKMOE_ASSIGN_OR_RETURN(result.test_performance,
                           ScoreOf(summary->test_scores, setup.task, "test", run_dir));
  if (!keep_checkpoints) {
    fs::remove_all(run_dir + "/" + kBestCheckpoint, error);
    fs::remove_all(run_dir + "/" + kLastCheckpoint, error);
  }
  return result;
}

absl::Status FinetuneTask(const FinetuneOptions& options, const TaskSetup& setup,
                          std::vector<FinetuneResult>* rows, FinetuneReport* report) {
  const std::string task_dir = options.output_dir + "/" + setup.task;
  const std::string results_path = task_dir + "/" + kResultsFile;
  absl::StatusOr<std::vector<FinetuneResult>> existing = ReadResults(results_path);
  if (!existing.ok()) return existing.status();
  *rows = *std::move(existing);
  auto find_row = [rows](const std::string& prefix, double lr, int bsz) {
    for (const FinetuneResult& row : *rows) {
      if (row.prefix == prefix && row.lr == lr && row.bsz == bsz) return &row;
    }
    return static_cast<const FinetuneResult*>(nullptr);
  };
  const std::vector<std::pair<double, int>> grid = GridPoints(options);
  for (size_t p = 0; p < setup.prefixes.size(); ++p) {
    const std::string& prefix = setup.prefixes[p];
    const std::string best_name = prefix + kBestRowSuffix;
    if (std::any_of(rows->begin(), rows->end(),
                    [&](const FinetuneResult& row) { return row.prefix == best_name; })) {
      LOG(INFO) << setup.task << ": " << prefix << " already finished (" << results_path << ")";
      ++report->prefixes_skipped;
      continue;
    }
    // Read once for all the prefix's grid points, and only when one is trained.
    std::optional<ExperimentData> data;
    // The original's selection: the first grid point with the highest dev performance.
    double best_dev = -1.0;
    std::optional<FinetuneResult> best;
    for (size_t point = 0; point < grid.size(); ++point) {
      const auto [lr, bsz] = grid[point];
      FinetuneResult result;
      if (const FinetuneResult* done = find_row(prefix, lr, bsz)) {
        result = *done;
        ++report->runs_reused;
      } else {
        LOG(INFO) << absl::StrFormat("%s: prefix %d/%d %s, grid point %d/%d: lr %s, bsz %d",
                                     setup.task, p + 1, setup.prefixes.size(), prefix,
                                     point + 1, grid.size(), PythonFloatRepr(lr), bsz);
        if (!data.has_value()) {
          TASKMOE_ASSIGN_OR_RETURN(data, LoadFewShotData(setup.base, setup.task, prefix));
        }
        const std::string run_dir = absl::StrCat(task_dir, "/runs/", prefix, "/lr_",
                                                 PythonFloatRepr(lr), "_bsz_", bsz);
        TASKMOE_ASSIGN_OR_RETURN(result, RunGridPoint(setup, *data, prefix, lr, bsz, run_dir,
                                                      options.keep_checkpoints));
        ++report->runs_trained;
        rows->push_back(result);
        TASKMOE_RETURN_IF_ERROR(WriteFileAtomically(results_path, FinetuneResultsCsv(*rows)));
        LOG(INFO) << absl::StrFormat("%s lr %s bsz %d: dev %.4f, test %.4f", prefix,
                                     PythonFloatRepr(lr), bsz, result.dev_performance,
                                     result.test_performance);
      }
      if (result.dev_performance > best_dev) {
        best_dev = result.dev_performance;
        best = result;
      }
    }
    if (!best.has_value()) {
      return absl::InternalError(absl::StrCat(prefix, ": no grid point scored above -1 on dev"));
    }
    best->prefix = best_name;
    rows->push_back(*best);
    TASKMOE_RETURN_IF_ERROR(WriteFileAtomically(results_path, FinetuneResultsCsv(*rows)));
  }
  return absl::OkStatus();
}

}  // namespace

std::string PythonFloatRepr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buffer[64];
  const std::to_chars_result written =
      std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::scientific);
  const std::string scientific(buffer, written.ptr);  // e.g. "-1.25e-05", "1e+16"
  const size_t e = scientific.find('e');
  std::string mantissa = scientific.substr(0, e);
  const int exponent = std::stoi(scientific.substr(e + 1));
  std::string sign;
  if (mantissa[0] == '-') {
    sign = "-";
    mantissa.erase(0, 1);
  }
  std::string digits = mantissa;
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  // repr switches to exponent notation below 1e-4 and from 1e16 on.
  if (exponent < -4 || exponent >= 16) {
    std::string out = sign + digits.substr(0, 1);
    if (digits.size() > 1) absl::StrAppend(&out, ".", digits.substr(1));
    return absl::StrCat(out, "e", exponent < 0 ? "-" : "+",
                        absl::StrFormat("%02d", std::abs(exponent)));
  }
  if (exponent < 0) return absl::StrCat(sign, "0.", std::string(-exponent - 1, '0'), digits);
  const size_t integer_digits = static_cast<size_t>(exponent) + 1;
  if (digits.size() <= integer_digits) {
    return absl::StrCat(sign, digits, std::string(integer_digits - digits.size(), '0'), ".0");
  }
  return absl::StrCat(sign, digits.substr(0, integer_digits), ".", digits.substr(integer_digits));
}

std::string FinetuneResultsCsv(const std::vector<FinetuneResult>& results) {
  std::string csv = absl::StrCat(kResultsHeader, "\n");
  for (size_t i = 0; i < results.size(); ++i) {
    const FinetuneResult& r = results[i];
    absl::StrAppend(&csv, i, ",", r.prefix, ",", PythonFloatRepr(r.lr), ",", r.bsz, ",",
                    PythonFloatRepr(r.dev_performance), ",",
                    PythonFloatRepr(r.test_performance), "\n");
  }
  return csv;
}

absl::StatusOr<FinetuneReport> FinetuneTasks(const FinetuneOptions& options) {
  TASKMOE_RETURN_IF_ERROR(ValidateOptions(options));
  absl::StatusOr<ExperimentConfig> base = ResolveBase(options);
  if (!base.ok()) return base.status();
  // Everything is checked before the first run starts.
  std::vector<TaskSetup> setups;
  for (const std::string& task : options.tasks) {
    absl::StatusOr<std::vector<std::string>> prefixes =
        CheckedPrefixes(options.base.data().data_dir(), task);
    if (!prefixes.ok()) return prefixes.status();
    if (options.max_prefixes > 0 && static_cast<int>(prefixes->size()) > options.max_prefixes) {
      prefixes->resize(options.max_prefixes);
    }
    setups.push_back({task, *std::move(prefixes), *base});
  }
  if (options.base.model().has_checkpoint()) {
    std::optional<Checkpoint> inherited;
    int64_t vector_dim = 0;
    if (!options.base.has_routing()) {
      absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(options.base.model().checkpoint());
      if (!checkpoint.ok()) return checkpoint.status();
      vector_dim = checkpoint->tasks->dim();
      TASKMOE_ASSIGN_OR_RETURN(
          const at::Tensor mask,
          ParseEvaluationExpertMask(options.inherited_expert_mask, checkpoint->model->shape()));
      checkpoint->plugin->SetEvaluationExpertMask(mask);
      inherited = *std::move(checkpoint);
    } else {
      absl::StatusOr<TaskTable> table = TaskTable::Load(options.base.model().checkpoint());
      if (!table.ok()) return table.status();
      vector_dim = table->dim();
    }
    // Read once for every task.
    TASKMOE_ASSIGN_OR_RETURN(const TaskTable vectors,
                             TaskTable::Load(options.task_vectors_dir.empty()
                                                 ? options.base.model().checkpoint()
                                                 : options.task_vectors_dir));
    for (TaskSetup& setup : setups) {
      TASKMOE_RETURN_IF_ERROR(PrepareCheckpointInit(
          options, inherited.has_value() ? &*inherited : nullptr, vectors, vector_dim,
          options.output_dir + "/" + setup.task + "/init", &setup));
    }
  }
  FinetuneReport report;
  for (const TaskSetup& setup : setups) {
    report.results.emplace_back();
    TASKMOE_RETURN_IF_ERROR(FinetuneTask(options, setup, &report.results.back(), &report));
  }
  return report;
}

}  // namespace taskmoe
