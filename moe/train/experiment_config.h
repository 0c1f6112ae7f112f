#ifndef TASKMOE_MOE_TRAIN_EXPERIMENT_CONFIG_H_
#define TASKMOE_MOE_TRAIN_EXPERIMENT_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moe/train/experiment.pb.h"

namespace taskmoe {

// Parses a text-format ExperimentConfig; errors carry `source_name:line:column`.
absl::StatusOr<ExperimentConfig> ParseExperimentConfig(const std::string& text,
                                                       const std::string& source_name);

// Sets one field from "path.to.field=value" (e.g. "optimizer.lr=1e-4",
// "model.encoder_vanilla_layers=0,1", "model.random_init={d_model: 64}"). A repeated field is
// replaced, not appended to. Errors name the path.
absl::Status ApplyOverride(const std::string& assignment, ExperimentConfig* config);

// Value checks that need no file system: ranges, counts. Errors name the field's path.
absl::Status ValidateExperimentConfig(const ExperimentConfig& config);

// Reads `path` (empty: the defaults), applies `overrides` in order, validates.
absl::StatusOr<ExperimentConfig> LoadExperimentConfig(const std::string& path,
                                                      const std::vector<std::string>& overrides);

// The resolved config as text format (saved with every run and checkpoint).
std::string ExperimentConfigToText(const ExperimentConfig& config);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_TRAIN_EXPERIMENT_CONFIG_H_
