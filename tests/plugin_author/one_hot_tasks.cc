// A task-embedding method written as a user would, outside task_embeddings/: task i gets
// scale * e_(i mod dim). It knows the core only through moe/embedding/task_embedding.h.
#include <memory>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "moe/embedding/task_embedding.h"
#include "tests/plugin_author/one_hot_tasks.pb.h"

namespace taskmoe::example {
namespace {

class OneHotTasks : public TaskEmbeddingMethod {
 public:
  OneHotTasks(const TaskEmbeddingContext& context, double scale)
      : TaskEmbeddingMethod(context), scale_(scale) {}

  bool needs_model() const override { return false; }

  absl::StatusOr<at::Tensor> Compute(const TaskEmbeddingInput& input) override {
    const int64_t tasks = static_cast<int64_t>(input.data->tasks.size());
    const at::Tensor rows = at::arange(tasks, at::kLong).remainder(context().dim);
    return at::one_hot(rows, context().dim).to(at::kFloat) * scale_;
  }

 private:
  double scale_;
};

absl::StatusOr<std::shared_ptr<TaskEmbeddingMethod>> MakeOneHotTasks(
    const TaskEmbeddingContext& context, const OneHotTasksParams& params) {
  if (context.dim < 1) return absl::InvalidArgumentError("one_hot_tasks needs dim >= 1");
  return std::make_shared<OneHotTasks>(context, params.scale());
}

TASKMOE_REGISTER_TASK_EMBEDDING("one_hot_tasks", OneHotTasksParams, MakeOneHotTasks);

}  // namespace
}  // namespace taskmoe::example
