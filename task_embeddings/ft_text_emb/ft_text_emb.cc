// Task-embedding method "ft_text_emb": pooled encoder states of a model fine-tuned on each task.
#include <ATen/ATen.h>

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "moe/embedding/task_embedding.h"
#include "moe/embedding/task_training.h"
#include "task_embeddings/ft_text_emb/ft_text_emb.pb.h"

namespace taskmoe {
namespace {

// One row [1, d_model] per batch from its first example's encoder states (AVG or BOS). The first
// example runs alone at the batch's width: padding is masked as a key, so its states are those
// it has in the batch.
at::Tensor FirstExampleStates(BartForConditionalGeneration& model, const BatchTensors& batch,
                              const RouteWeights* routes,
                              FineTunedTextEmbeddingParams::Pooling pooling) {
  RouteWeights first_routes;
  if (routes != nullptr) {
    first_routes = {routes->encoder.narrow(1, 0, 1), routes->decoder.narrow(1, 0, 1)};
  }
  const at::Tensor states =
      model->Encode(batch.input_ids.narrow(0, 0, 1), batch.attention_mask.narrow(0, 0, 1),
                    routes != nullptr ? &first_routes : nullptr);  // [1, T, D]
  if (pooling == FineTunedTextEmbeddingParams::BOS) return states.select(1, 0);
  return states.slice(1, 1, states.size(1) - 1).mean(1);
}

class FineTunedTextEmbedding : public TaskEmbeddingMethod {
 public:
  FineTunedTextEmbedding(const TaskEmbeddingContext& context,
                         const FineTunedTextEmbeddingParams& params)
      : TaskEmbeddingMethod(context), params_(params) {}

  absl::StatusOr<at::Tensor> Compute(const TaskEmbeddingInput& input) override {
    BartForConditionalGeneration& model = input.model->model;
    const int64_t d_model = model->config().d_model;
    if (context().dim != 0 && context().dim != d_model) {
      return absl::InvalidArgumentError(
          absl::StrCat("task-embedding method 'ft_text_emb' gives d_model = ", d_model,
                       " values per task, but dim ", context().dim,
                       " was requested; reduce with PCA (pca_dim) instead"));
    }
    ModuleSnapshot pretrained(*model);
    TrainableParameters trainable;
    for (const auto& parameter : model->named_parameters()) {
      trainable.model.emplace_back(parameter.key(), parameter.value());
    }
    std::vector<at::Tensor> rows;
    for (int32_t task = 0; task < static_cast<int32_t>(input.data->tasks.size()); ++task) {
      const TokenizedDataset task_data = TaskSubset(*input.data, task);
      TaskTrainingOptions options = TaskTrainingOptionsFrom(params_);
      options.seed = context().seed + task;
      const absl::Status trained =
          TrainOnTask(input, task_data, trainable, model->parameters(), options);
      absl::StatusOr<at::Tensor> row = trained.ok() ? Pool(input, task_data) : trained;
      pretrained.Restore();
      if (!row.ok()) return row.status();
      rows.push_back(*row);
      if (input.on_task_done) input.on_task_done(task + 1);
    }
    return at::stack(rows);
  }

 private:
  absl::StatusOr<at::Tensor> Pool(const TaskEmbeddingInput& input,
                                  const TokenizedDataset& task_data) const {
    const FineTunedTextEmbeddingParams::Pooling pooling = params_.pooling();
    if (pooling == FineTunedTextEmbeddingParams::ENCODER_MEAN) {
      return MeanPooledEncoderStates(input, task_data, params_.predict_batch_size());
    }
    BartForConditionalGeneration& model = input.model->model;
    bool too_short = false;
    const at::Tensor row =
        MeanOfPooledRows(input, task_data, params_.predict_batch_size(),
                         [&](const BatchTensors& batch, const RouteWeights* routes) {
                           too_short |= batch.input_ids.size(1) < 3;
                           return FirstExampleStates(model, batch, routes, pooling);
                         });
    if (pooling == FineTunedTextEmbeddingParams::AVG && too_short) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ft_text_emb pooling AVG: a batch of task ", task_data.tasks.at(0),
          " has inputs of fewer than 3 tokens, so no position lies between <s> and the last"));
    }
    return row;
  }

  FineTunedTextEmbeddingParams params_;
};

absl::StatusOr<std::shared_ptr<TaskEmbeddingMethod>> MakeFineTunedTextEmbedding(
    const TaskEmbeddingContext& context, const FineTunedTextEmbeddingParams& params) {
  if (params.predict_batch_size() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("FineTunedTextEmbeddingParams.predict_batch_size must be >= 1, got ",
                     params.predict_batch_size()));
  }
  const absl::Status valid =
      ValidateTaskTrainingOptions(TaskTrainingOptionsFrom(params), "FineTunedTextEmbeddingParams");
  if (!valid.ok()) return valid;
  return std::make_shared<FineTunedTextEmbedding>(context, params);
}

TASKMOE_REGISTER_TASK_EMBEDDING("ft_text_emb", FineTunedTextEmbeddingParams,
                                MakeFineTunedTextEmbedding);

}  // namespace
}  // namespace taskmoe
