#ifndef TASKMOE_MOE_TRAIN_RUN_OPTIONS_H_
#define TASKMOE_MOE_TRAIN_RUN_OPTIONS_H_

// The edge between the experiment config (protobuf) and the options structs of the modules a
// run uses: modules never see protos.

#include <cstdint>

#include "data/batching.h"
#include "moe/model/generation.h"
#include "moe/model/optimization.h"
#include "moe/train/experiment.pb.h"
#include "moe/train/train_step.h"

namespace taskmoe {

OptimizerOptions ToOptimizerOptions(const OptimizerConfig& config);

TrainStepOptions ToTrainStepOptions(const ExperimentConfig& config, int64_t pad_id);

// Training batches of one epoch (size, grouping, shuffling seed).
BatchOptions ToBatchOptions(const ExperimentConfig& config, int64_t pad_id);

// Decoding for dev and test scoring; `bos_token_id` starts the output when
// evaluation.generation_start is BOS.
GenerationOptions ToGenerationOptions(const ExperimentConfig& config, int64_t bos_token_id);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_TRAIN_RUN_OPTIONS_H_
