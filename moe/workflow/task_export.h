#ifndef TASKMOE_MOE_WORKFLOW_TASK_EXPORT_H_
#define TASKMOE_MOE_WORKFLOW_TASK_EXPORT_H_

// Per-task export: the dense BART that one task's hard routes select from a TaskMoE checkpoint,
// written as a plain Hugging Face directory (config.json, model.safetensors, vocab.json,
// merges.txt) that tools/score, tools/generate and transformers' from_pretrained load.

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "moe/model/route_weights.h"
#include "moe/train/experiment.pb.h"

namespace taskmoe {

struct TaskExportOptions {
  std::string checkpoint_dir;
  std::string task;
  std::string output_dir;
  // Soft routes (weights spread over experts) have no exact dense equivalent: refused unless
  // this is set, in which case each layer takes its highest-weighted expert.
  bool allow_argmax = false;
  // An existing output_dir is an error unless this is set (then it is replaced atomically).
  bool overwrite = false;
  // Tokenizer files to copy; empty: those the checkpoint's experiment used (moe/train/run_data.h TokenizerPaths).
  std::string vocab;
  std::string merges;
};

struct TaskExport {
  // Chosen expert per layer, encoder layers then decoder layers; -1 for a vanilla layer. Empty
  // when `merged`.
  std::vector<int64_t> experts;
  // The checkpoint merges expert parameters (model.expert_execution: MERGE_PARAMETERS): each MoE
  // layer is the route-weighted sum of its experts, exact for soft routes too.
  bool merged = false;
  // The task's routes had a layer whose weights were not one-hot (exported by argmax).
  bool soft_routes = false;
  // Where the routes came from: the checkpoint's route.npy, or its routing plugin.
  std::string routes_source;
};

// Hard routes from one task's routes [encoder_layers + decoder_layers, experts]: each MoE layer
// one-hot on its highest weight (the first on ties), vanilla layers one-hot on expert 0 (they
// are ignored). `soft` (optional) tells whether any MoE layer's row was not already one-hot.
RouteWeights HardRoutes(const at::Tensor& task_routes, const ModelShape& shape,
                        const std::vector<int64_t>& encoder_vanilla_layers,
                        const std::vector<int64_t>& decoder_vanilla_layers, bool* soft);

// Loads the checkpoint, takes the task's routes (the row of route.npy when it covers every task
// of the table, else the routing plugin's evaluation routes at the checkpoint's step), extracts
// the dense model (merged with the routes when the checkpoint merges expert parameters, else the
// experts of the hard routes) and writes the directory atomically. Errors, with nothing written:
// unknown task (lists the known ones), soft routes of a mixing checkpoint without allow_argmax,
// an existing output without overwrite, missing tokenizer files.
absl::StatusOr<TaskExport> ExportTaskModel(const TaskExportOptions& options);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_WORKFLOW_TASK_EXPORT_H_
