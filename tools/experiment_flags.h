#ifndef TASKMOE_TOOLS_EXPERIMENT_FLAGS_H_
#define TASKMOE_TOOLS_EXPERIMENT_FLAGS_H_

// Flags of the tools that run an experiment config (trainer, finetune_tasks): the shared model
// flags (tools/model_flags.h) and
//   --seed  training.seed (data order, initialisation, dropout, Gumbel noise)
// each a shortcut for the --set override it names.

#include <optional>
#include <string>
#include <vector>

#include "absl/flags/declare.h"

ABSL_DECLARE_FLAG(std::optional<int>, seed);

namespace taskmoe {

// The overrides the flags given on the command line stand for (model.checkpoint or
// model.hf_dir, training.device, training.threads, training.seed), ahead of `overrides`, so an
// explicit --set still wins.
std::vector<std::string> WithExperimentFlagOverrides(const std::vector<std::string>& overrides);

}  // namespace taskmoe

#endif  // TASKMOE_TOOLS_EXPERIMENT_FLAGS_H_
