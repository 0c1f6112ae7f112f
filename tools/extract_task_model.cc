// Writes the dense BART one task uses inside a TaskMoE checkpoint (each MoE layer replaced by the
// expert the task's hard route picks) as a Hugging Face directory: config.json,
// model.safetensors, vocab.json, merges.txt. tools/score, tools/generate and transformers load it.
//
//   extract_task_model --model=runs/moe/best --task=gym_copy --output_dir=exports/gym_copy
//                      [--allow_argmax] [--overwrite] [--vocab=... --merges=...]

#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_join.h"
#include "moe/base/status_macros.h"
#include "moe/workflow/task_export.h"
#include "tools/model_flags.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, checkpoint, "", "Deprecated name of --model (a TaskMoE checkpoint).");
ABSL_FLAG(std::string, task, "", "Task name as listed in the checkpoint's id2task.json.");
ABSL_FLAG(std::string, output_dir, "", "Directory to write the dense model to.");
ABSL_FLAG(bool, allow_argmax, false,
          "Export soft routes by taking each layer's highest-weighted expert (the result then "
          "differs from the MoE).");
ABSL_FLAG(bool, overwrite, false, "Replace an existing output directory.");
ABSL_FLAG(std::string, vocab, "", "vocab.json to copy; empty: the checkpoint experiment's.");
ABSL_FLAG(std::string, merges, "", "merges.txt to copy; empty: the checkpoint experiment's.");

namespace taskmoe {
namespace {

absl::Status Run() {
  TaskExportOptions options;
  TASKMOE_ASSIGN_OR_RETURN(options.checkpoint_dir,
                           ModelFlag("checkpoint", absl::GetFlag(FLAGS_checkpoint)));
  options.task = absl::GetFlag(FLAGS_task);
  options.output_dir = absl::GetFlag(FLAGS_output_dir);
  options.allow_argmax = absl::GetFlag(FLAGS_allow_argmax);
  options.overwrite = absl::GetFlag(FLAGS_overwrite);
  options.vocab = absl::GetFlag(FLAGS_vocab);
  options.merges = absl::GetFlag(FLAGS_merges);
  if (options.task.empty() || options.output_dir.empty()) {
    return absl::InvalidArgumentError("--model, --task and --output_dir are required");
  }
  TASKMOE_ASSIGN_OR_RETURN(const TaskExport exported, ExportTaskModel(options));
  std::cout << "wrote " << options.output_dir << " (task " << options.task << ", routes from "
            << exported.routes_source << "; ";
  if (exported.merged) {
    std::cout << "each MoE layer merges its experts' parameters with the task's routes)\n";
  } else {
    std::cout << "expert per layer, encoder then decoder, -1 = vanilla: "
              << absl::StrJoin(exported.experts, " ") << ")\n";
  }
  if (exported.soft_routes) {
    std::cout << "note: the task's routes were soft; each layer took its highest-weighted expert, "
                 "so this model differs from the MoE\n";
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "extract_task_model";
  tool.output_flags = {"output_dir"};
  tool.runs_models = true;
  tool.usage =
      "Writes the dense BART one task uses inside a TaskMoE checkpoint, as a Hugging Face directory.";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
