// Task-embedding method "text_emb": mean-pooled encoder states of each task's training inputs.
#include <memory>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "moe/embedding/task_embedding.h"
#include "task_embeddings/text_emb/text_emb.pb.h"

namespace taskmoe {
namespace {

class TextEmbedding : public TaskEmbeddingMethod {
 public:
  TextEmbedding(const TaskEmbeddingContext& context, const TextEmbeddingParams& params)
      : TaskEmbeddingMethod(context), params_(params) {}

  absl::StatusOr<at::Tensor> Compute(const TaskEmbeddingInput& input) override {
    const int64_t d_model = input.model->model->config().d_model;
    if (context().dim != 0 && context().dim != d_model) {
      return absl::InvalidArgumentError(absl::StrCat(
          "task-embedding method 'text_emb' gives d_model = ", d_model, " values per task, but dim ",
          context().dim, " was requested; reduce with PCA (pca_dim) instead"));
    }
    std::vector<at::Tensor> rows;
    for (int32_t task = 0; task < static_cast<int32_t>(input.data->tasks.size()); ++task) {
      rows.push_back(MeanPooledEncoderStates(input, TaskSubset(*input.data, task), params_.batch_size()));
      if (input.on_task_done) input.on_task_done(task + 1);
    }
    return at::stack(rows);
  }

 private:
  TextEmbeddingParams params_;
};

absl::StatusOr<std::shared_ptr<TaskEmbeddingMethod>> MakeTextEmbedding(
    const TaskEmbeddingContext& context, const TextEmbeddingParams& params) {
  if (params.batch_size() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("TextEmbeddingParams.batch_size must be >= 1, got ", params.batch_size()));
  }
  return std::make_shared<TextEmbedding>(context, params);
}

TASKMOE_REGISTER_TASK_EMBEDDING("text_emb", TextEmbeddingParams, MakeTextEmbedding);

}  // namespace
}  // namespace taskmoe
