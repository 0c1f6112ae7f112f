#ifndef TASKMOE_MOE_WORKFLOW_TWO_STAGE_H_
#define TASKMOE_MOE_WORKFLOW_TWO_STAGE_H_

// Two-stage training, the step between the stages (the original's build_a_checkpoint): the
// router and task vectors learned in stage one are combined with fresh pretrained weights, every
// expert re-initialised as a copy of its dense layer plus init_eps noise, into one checkpoint
// that stage two (`model.checkpoint: <dir>`, routing plugin `annealed`) starts from.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "moe/model/bart.h"

namespace taskmoe {

struct BuildCheckpointOptions {
  // Stage-one TaskMoE checkpoint whose routing plugin routes from task vectors (a learned
  // router in routing_state.safetensors) and its task vectors.
  std::string stage_one_dir;
  // The pretrained dense model: a Hugging Face BART directory, or a dense TaskMoE checkpoint
  // (one expert per layer, or every layer vanilla), e.g. the dense multi-task baseline.
  std::string dense_dir;
  std::string output_dir;
  // Noise of the expert copies; unset: the stage-one experiment's model.init_eps.
  std::optional<double> init_eps;
  // Seeds the expert noise.
  int64_t seed = 42;
  // An existing output_dir is an error unless this is set (then it is replaced atomically).
  bool overwrite = false;
  // Set: the shuffled-routes control. The task vectors of stage one's routed tasks
  // (route_tasks.json) are permuted among them with a random derangement of this seed, so the
  // frozen router gives every task another task's learned route; the donors are recorded in
  // route_donors.json, and stage one's route files are left out (they no longer hold).
  std::optional<uint64_t> shuffle_routes_seed;
};

// task -> the task whose stage-one vector (hence route) it received.
inline constexpr char kRouteDonorsFile[] = "route_donors.json";

struct BuiltCheckpoint {
  int64_t tasks = 0;
  int64_t routing_state_tensors = 0;
  // "Hugging Face directory" or "TaskMoE checkpoint".
  std::string dense_kind;
  // With shuffle_routes_seed: task -> donor task, in route_tasks.json order.
  std::vector<std::pair<std::string, std::string>> route_donors;
};

// The dense BART of `dir`: a Hugging Face directory (config.json + model.safetensors, no
// experiment.pbtxt), or a TaskMoE checkpoint whose model is dense (one expert per MoE layer or
// every layer vanilla); `kind` (optional) receives which one it was. Eval mode.
absl::StatusOr<BartForConditionalGeneration> LoadDenseModel(const std::string& dir,
                                                            std::string* kind);

// Writes the stage-two checkpoint (model.safetensors, config.json of the dense model,
// experiment.pbtxt, and stage one's routing_state.safetensors, id2task.json, task_vecs.npy
// and route files) atomically. Errors, with nothing written: a stage-one checkpoint
// without a router, a dense model whose layer counts or vocabulary differ from stage one's, an
// existing output without overwrite, unreadable inputs.
absl::StatusOr<BuiltCheckpoint> BuildStageTwoCheckpoint(const BuildCheckpointOptions& options);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_WORKFLOW_TWO_STAGE_H_
