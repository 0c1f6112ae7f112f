#ifndef TASKMOE_MOE_TRAIN_TRAINER_H_
#define TASKMOE_MOE_TRAIN_TRAINER_H_

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moe/train/experiment.pb.h"
#include "moe/train/run_data.h"
#include "moe/train/run_report.h"

namespace taskmoe {

struct TrainerOptions {
  // Continue from <output_dir>/last (weights, optimiser moments, step, RNG, data position).
  bool resume = false;
  // Stop (saving <output_dir>/last) once this many optimiser steps are done, without running
  // the final prediction; 0 runs to training.total_steps. Splits a long run into pieces.
  int64_t stop_after_step = 0;
  // Called with the staging directory of every checkpoint before it is swapped in; an error
  // aborts that checkpoint (tests inject failures here).
  std::function<absl::Status(const std::string& staging_dir)> before_checkpoint_commit;
  // With training.total_steps 0 (an error otherwise): also save the model that predicted, with
  // its routing state and task table, as <output_dir>/last (step 0). From model.hf_dir no other
  // file holds its fresh router, which a route analysis's untrained-router null reads.
  bool save_initial_model = false;
};

// What a caller hands a run in memory instead of through the config's files (a fine-tuning
// grid reads a prefix's data once for all its grid points).
struct RunInputs {
  // The run's data; unset: LoadExperimentData(config).
  std::optional<ExperimentData> data;
  // The routing plugin starts from its initial state even when model.checkpoint holds routing
  // state it could continue (fine-tuning a checkpoint with a freshly initialised plugin).
  bool fresh_routing_state = false;
};

// Runs one experiment: data, model, routing plugin, training with periodic evaluation and
// checkpoints, then prediction on dev and test with the best checkpoint. Data parallel across
// processes when WORLD_SIZE > 1 (see moe/distributed.h); only rank 0 writes.
absl::StatusOr<RunSummary> RunExperiment(const ExperimentConfig& config,
                                         const TrainerOptions& options = {},
                                         RunInputs inputs = {});

}  // namespace taskmoe

#endif  // TASKMOE_MOE_TRAIN_TRAINER_H_
