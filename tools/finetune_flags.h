#ifndef TASKMOE_TOOLS_FINETUNE_FLAGS_H_
#define TASKMOE_TOOLS_FINETUNE_FLAGS_H_

// Flags of the tools that run moe/workflow/finetune.h over a list of tasks (finetune_tasks,
// evaluate_tasks), besides the experiment flags (tools/experiment_flags.h):
//   --config --set --routing --task_vectors --tasks --split_list --max_prefixes --output_dir

#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moe/workflow/finetune.h"

ABSL_DECLARE_FLAG(std::string, output_dir);

namespace taskmoe {

// Options from the flags and the --set overrides: the config template with the model flags
// applied, the tasks, the task-vector table, max_prefixes and output_dir. The grid is left
// empty for the caller.
absl::StatusOr<FinetuneOptions> FinetuneOptionsFromFlags(
    const std::vector<std::string>& set_overrides);

// Prints where each task's result.csv is and its `_best` rows.
void PrintFinetuneReport(const FinetuneOptions& options, const FinetuneReport& report);

}  // namespace taskmoe

#endif  // TASKMOE_TOOLS_FINETUNE_FLAGS_H_
