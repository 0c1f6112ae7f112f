// Task-embedding method "random": seeded Gaussian vectors.
#include <memory>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "moe/embedding/task_embedding.h"
#include "task_embeddings/random/random.pb.h"

namespace taskmoe {
namespace {

class RandomEmbedding : public TaskEmbeddingMethod {
 public:
  RandomEmbedding(const TaskEmbeddingContext& context, double stddev)
      : TaskEmbeddingMethod(context), stddev_(stddev) {}

  bool needs_model() const override { return false; }

  absl::StatusOr<at::Tensor> Compute(const TaskEmbeddingInput& input) override {
    const int64_t tasks = static_cast<int64_t>(input.data->tasks.size());
    at::Generator generator = at::detail::createCPUGenerator(context().seed);
    const at::Tensor vectors =
        at::normal(0.0, stddev_, {tasks, context().dim}, generator, at::TensorOptions(at::kFloat));
    if (input.on_task_done) input.on_task_done(tasks);
    return vectors;
  }

 private:
  double stddev_;
};

absl::StatusOr<std::shared_ptr<TaskEmbeddingMethod>> MakeRandomEmbedding(
    const TaskEmbeddingContext& context, const RandomEmbeddingParams& params) {
  if (context.dim < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("task-embedding method 'random' needs dim >= 1, got ", context.dim));
  }
  if (!(params.stddev() > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("RandomEmbeddingParams.stddev must be > 0, got ", params.stddev()));
  }
  return std::make_shared<RandomEmbedding>(context, params.stddev());
}

TASKMOE_REGISTER_TASK_EMBEDDING("random", RandomEmbeddingParams, MakeRandomEmbedding);

}  // namespace
}  // namespace taskmoe
