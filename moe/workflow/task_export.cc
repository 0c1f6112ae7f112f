#include "moe/workflow/task_export.h"

#include <algorithm>
#include <filesystem>

#include <torch/csrc/autograd/grad_mode.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "moe/base/atomic_directory.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "moe/model/bart_weights.h"
#include "moe/model/moe_model.h"
#include "moe/routing/routing.h"
#include "moe/train/checkpoint.h"
#include "moe/train/model_builder.h"
#include "moe/train/run_data.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

bool Contains(const std::vector<int64_t>& values, int64_t value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

}  // namespace

RouteWeights HardRoutes(const at::Tensor& task_routes, const ModelShape& shape,
                        const std::vector<int64_t>& encoder_vanilla_layers,
                        const std::vector<int64_t>& decoder_vanilla_layers, bool* soft) {
  CHECK_EQ(task_routes.dim(), 2);
  CHECK_EQ(task_routes.size(0), shape.encoder_layers + shape.decoder_layers);
  CHECK_EQ(task_routes.size(1), shape.experts);
  const at::Tensor routes = task_routes.to(at::kCPU, at::kFloat).contiguous();
  at::Tensor chosen = routes.argmax(/*dim=*/1);
  // One-hot within float tolerance: the largest weight is 1 and the others sum to 0.
  const at::Tensor max_weight = std::get<0>(routes.max(/*dim=*/1));
  const at::Tensor rest = routes.sum(/*dim=*/1) - max_weight;
  const at::Tensor row_is_hard = (max_weight - 1).abs().le(1e-5).logical_and(rest.abs().le(1e-5));
  if (soft != nullptr) *soft = false;
  for (int64_t layer = 0; layer < routes.size(0); ++layer) {
    const bool decoder = layer >= shape.encoder_layers;
    const int64_t index = decoder ? layer - shape.encoder_layers : layer;
    if (Contains(decoder ? decoder_vanilla_layers : encoder_vanilla_layers, index)) {
      chosen[layer] = 0;
    } else if (soft != nullptr && !row_is_hard[layer].item<bool>()) {
      *soft = true;
    }
  }
  const at::Tensor one_hot = at::one_hot(chosen, shape.experts).to(at::kFloat);
  RouteWeights hard;
  hard.encoder = one_hot.slice(0, 0, shape.encoder_layers).unsqueeze(1);
  hard.decoder = one_hot.slice(0, shape.encoder_layers).unsqueeze(1);
  return hard;
}

namespace {

// The tokenizer files exported with the model: the options', else the checkpoint experiment's.
absl::StatusOr<std::pair<std::string, std::string>> ExportTokenizerFiles(
    const TaskExportOptions& options, const ExperimentConfig& experiment) {
  auto [vocab, merges] = TokenizerPaths(experiment);
  if (!options.vocab.empty()) vocab = options.vocab;
  if (!options.merges.empty()) merges = options.merges;
  for (const std::string& path : {vocab, merges}) {
    if (!fs::is_regular_file(path)) {
      return absl::NotFoundError(absl::StrCat(
          "tokenizer file ", path, " (from the checkpoint's experiment) does not exist; pass "
          "--vocab and --merges"));
    }
  }
  return std::make_pair(vocab, merges);
}

// The task's routes [layers, E]: its row of route.npy when route_tasks.json lists it, else (a
// task the run did not train on) its routing plugin's routes at the checkpoint's step. Sets
// result->routes_source.
absl::StatusOr<at::Tensor> ExportedTaskRoutes(const TaskExportOptions& options,
                                              const Checkpoint& checkpoint, int64_t task_id,
                                              TaskExport* result) {
  const std::vector<std::string>& rows = checkpoint.route_tasks;
  if (const auto row = std::find(rows.begin(), rows.end(), options.task); row != rows.end()) {
    result->routes_source = absl::StrCat(options.checkpoint_dir, "/", kRoutesFile);
    return checkpoint.routes[row - rows.begin()];
  }
  TASKMOE_ASSIGN_OR_RETURN(const int64_t step,
                           CheckpointStep(options.checkpoint_dir, checkpoint.experiment));
  torch::NoGradGuard no_grad;
  result->routes_source = absl::StrCat(
      "routing plugin '", checkpoint.experiment.routing().plugin(), "' at step ", step,
      "; the task has no row in ", options.checkpoint_dir, "/", kRoutesFile);
  // The soft view, as route.npy holds it: deterministic even for a sampling router.
  return TaskRouteViews(*checkpoint.plugin, checkpoint.tasks->vectors(), step).soft[task_id];
}

// The expert each layer uses (-1 for a vanilla layer), encoder then decoder.
std::vector<int64_t> ChosenExperts(const RouteWeights& hard, const MoeBart& model) {
  const ModelShape& shape = model.shape();
  const at::Tensor chosen = at::cat({hard.encoder, hard.decoder}).squeeze(1).argmax(1);
  std::vector<int64_t> experts;
  for (int64_t layer = 0; layer < chosen.size(0); ++layer) {
    const bool decoder = layer >= shape.encoder_layers;
    const int64_t index = decoder ? layer - shape.encoder_layers : layer;
    const bool vanilla = Contains(decoder ? model.options().decoder_vanilla_layers
                                          : model.options().encoder_vanilla_layers,
                                  index);
    experts.push_back(vanilla ? -1 : chosen[layer].item<int64_t>());
  }
  return experts;
}

// The routes ExtractDense takes for the task: its own routes when the model merges expert
// parameters (exact for soft routes too), else their hard routes, which must already be one-hot
// unless options.allow_argmax.
absl::StatusOr<RouteWeights> ExtractionRoutes(const TaskExportOptions& options,
                                              const at::Tensor& task_routes, const MoeBart& model,
                                              TaskExport* result) {
  if (model.options().expert_execution == ExpertExecution::kMergeParameters) {
    result->merged = true;
    return SplitLayers(task_routes.unsqueeze(1), model.shape());
  }
  const RouteWeights hard =
      HardRoutes(task_routes, model.shape(), model.options().encoder_vanilla_layers,
                 model.options().decoder_vanilla_layers, &result->soft_routes);
  if (result->soft_routes && !options.allow_argmax) {
    const at::Tensor largest =
        std::get<0>(task_routes.to(at::kCPU, at::kDouble).max(1)).contiguous();
    const double* begin = largest.data_ptr<double>();
    return absl::FailedPreconditionError(absl::StrCat(
        "the routes of task '", options.task, "' (", result->routes_source,
        ") are soft (not one-hot in every MoE layer), so no dense model equals the MoE for this "
        "task; pass --allow_argmax to take each layer's highest-weighted expert (or train with "
        "model.expert_execution: MERGE_PARAMETERS). Largest weight per layer (encoder, then "
        "decoder): ",
        absl::StrJoin(begin, begin + largest.numel(), ", ")));
  }
  result->experts = ChosenExperts(hard, model);
  return hard;
}

absl::Status WriteHuggingFaceDirectory(const BartForConditionalGeneration& dense,
                                       const std::string& vocab, const std::string& merges,
                                       const std::string& output_dir) {
  TASKMOE_ASSIGN_OR_RETURN(AtomicDirectory out, AtomicDirectory::Begin(output_dir));
  TASKMOE_RETURN_IF_ERROR(
      WriteFileAtomically(out.staging() + "/config.json", BartConfigJson(dense->config())));
  TASKMOE_RETURN_IF_ERROR(SaveBartWeights(dense, out.staging() + "/model.safetensors"));
  TASKMOE_RETURN_IF_ERROR(CopyFileAtomically(vocab, out.staging() + "/vocab.json"));
  TASKMOE_RETURN_IF_ERROR(CopyFileAtomically(merges, out.staging() + "/merges.txt"));
  return out.Commit();
}

}  // namespace

absl::StatusOr<TaskExport> ExportTaskModel(const TaskExportOptions& options) {
  if (fs::exists(options.output_dir) && !options.overwrite) {
    return absl::AlreadyExistsError(absl::StrCat(
        "output directory ", options.output_dir, " exists; pass --overwrite to replace it"));
  }
  TASKMOE_ASSIGN_OR_RETURN(const Checkpoint checkpoint, LoadCheckpoint(options.checkpoint_dir));
  const TaskTable& tasks = *checkpoint.tasks;
  absl::StatusOr<int64_t> task_id = tasks.Id(options.task);
  if (!task_id.ok()) {
    return absl::NotFoundError(absl::StrCat(
        "task '", options.task, "' is not in ", options.checkpoint_dir, "/", TaskTable::kNamesFile,
        "; known tasks: ", absl::StrJoin(tasks.names(), ", ")));
  }
  TASKMOE_ASSIGN_OR_RETURN(const auto tokenizer_files,
                           ExportTokenizerFiles(options, checkpoint.experiment));
  TASKMOE_RETURN_IF_ERROR(CheckOutputsSpareInputs(
      {options.output_dir},
      {options.checkpoint_dir, tokenizer_files.first, tokenizer_files.second}));
  TaskExport result;
  TASKMOE_ASSIGN_OR_RETURN(const at::Tensor task_routes,
                           ExportedTaskRoutes(options, checkpoint, *task_id, &result));
  const MoeBart& model = *checkpoint.model;
  TASKMOE_ASSIGN_OR_RETURN(const RouteWeights routes,
                           ExtractionRoutes(options, task_routes, model, &result));
  TASKMOE_ASSIGN_OR_RETURN(const BartForConditionalGeneration dense, model.ExtractDense(routes));
  TASKMOE_RETURN_IF_ERROR(WriteHuggingFaceDirectory(dense, tokenizer_files.first,
                                                    tokenizer_files.second, options.output_dir));
  return result;
}

}  // namespace taskmoe
