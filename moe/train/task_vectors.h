#ifndef TASKMOE_MOE_TRAIN_TASK_VECTORS_H_
#define TASKMOE_MOE_TRAIN_TASK_VECTORS_H_

#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "moe/model/moe_model.h"
#include "moe/train/experiment.pb.h"
#include "moe/train/run_data.h"

namespace taskmoe {

// The task-vector table of a run: the vector each task routes from.
struct RunTaskVectors {
  std::vector<std::string> names;
  at::Tensor vectors;  // [tasks, dim]
  std::string source;  // where the table came from, for messages

  // Table ids of `tasks` on `device`; an error names the first task without a vector.
  absl::StatusOr<at::Tensor> Ids(const std::vector<std::string>& tasks, at::Device device) const;
};

// The table the config asks for, first match wins: task_vectors.dir; task_vectors.method
// computed with `model` over the run's training data; model.checkpoint's own table (unless
// task_vectors.random is set); else random vectors of the train tasks, drawn from the global
// generator.
absl::StatusOr<RunTaskVectors> SourceTaskVectors(const ExperimentConfig& config,
                                                 const ExperimentData& data, MoeBart& model,
                                                 at::Device device);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_TRAIN_TASK_VECTORS_H_
