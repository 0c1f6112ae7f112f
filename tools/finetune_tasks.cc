// Few-shot fine-tuning of a list of tasks over a learning-rate x batch-size grid, every few-shot
// prefix of each task, writing <output_dir>/<task>/result.csv in the original's format
// (moe/workflow/finetune.h). Rerunning skips finished prefixes.
//
//   bazel run //tools:finetune_tasks -- --model=runs/stage_two/best --split_list=test
//       --output_dir=runs/finetune_moe --learning_rates=1e-4,5e-4 --batch_sizes=8
//   bazel run //tools:finetune_tasks -- --model=runs/moe/best --routing=average
//       --tasks=span-max,dedupe-sort --output_dir=runs/finetune_avg
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "moe/workflow/finetune.h"
#include "tools/finetune_flags.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, learning_rates, "1e-5,2e-5,5e-5", "Comma-separated learning rates.");
ABSL_FLAG(std::string, batch_sizes, "2,4,8", "Comma-separated batch sizes.");
ABSL_FLAG(bool, keep_checkpoints, false, "Keep every run's best/last checkpoints.");

namespace taskmoe {
namespace {

template <typename T>
bool ParseList(const std::string& text, bool (*parse)(absl::string_view, T*),
               std::vector<T>* values) {
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    T value;
    if (!parse(item, &value)) return false;
    values->push_back(value);
  }
  return true;
}

bool ParseDouble(absl::string_view text, double* value) { return absl::SimpleAtod(text, value); }
bool ParseInt(absl::string_view text, int* value) { return absl::SimpleAtoi(text, value); }

// The initial model is --model (a TaskMoE checkpoint, dense = 1 expert, or a Hugging Face BART
// directory); without it, the config's model section.
absl::Status Run(const std::vector<std::string>& set_overrides) {
  absl::StatusOr<FinetuneOptions> options = FinetuneOptionsFromFlags(set_overrides);
  if (!options.ok()) return options.status();
  options->keep_checkpoints = absl::GetFlag(FLAGS_keep_checkpoints);
  if (!ParseList(absl::GetFlag(FLAGS_learning_rates), ParseDouble, &options->learning_rates)) {
    return absl::InvalidArgumentError("--learning_rates: expected comma-separated numbers");
  }
  if (!ParseList(absl::GetFlag(FLAGS_batch_sizes), ParseInt, &options->batch_sizes)) {
    return absl::InvalidArgumentError("--batch_sizes: expected comma-separated integers");
  }

  absl::StatusOr<FinetuneReport> report = FinetuneTasks(*options);
  if (!report.ok()) return report.status();
  PrintFinetuneReport(*options, *report);
  return absl::OkStatus();
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "finetune_tasks";
  tool.runs_models = true;
  tool.usage = "Few-shot fine-tuning of a list of tasks over a learning-rate x batch-size grid.";
  tool.config_overrides = true;
  tool.log_files = true;
  return taskmoe::RunTool(argc, argv, tool, taskmoe::Run);
}
