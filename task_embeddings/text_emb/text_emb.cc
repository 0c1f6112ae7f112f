// Task-embedding method "text_emb": pooled hidden states of the model run on each task's
// training inputs (see text_emb.proto for the two poolings).
#include <ATen/ATen.h>

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "moe/embedding/task_embedding.h"
#include "task_embeddings/text_emb/text_emb.pb.h"

namespace taskmoe {
namespace {

// Per example [B, d_model]: the decoder's last hidden states, run on the input shifted right
// behind the decoder start token (Hugging Face's shift_tokens_right), averaged over all positions.
at::Tensor DecoderStatesOfShiftedInput(BartForConditionalGeneration& model, int64_t decoder_start,
                                       const BatchTensors& batch, const RouteWeights* routes) {
  const at::Tensor& ids = batch.input_ids;
  const at::Tensor shifted = at::cat(
      {at::full({ids.size(0), 1}, decoder_start, ids.options()), ids.slice(1, 0, ids.size(1) - 1)},
      1);
  const at::Tensor encoded = model->Encode(ids, batch.attention_mask, routes);
  return model->model->decoder->Forward(shifted, encoded, batch.attention_mask, routes, nullptr)
      .mean(1);
}

class TextEmbedding : public TaskEmbeddingMethod {
 public:
  TextEmbedding(const TaskEmbeddingContext& context, const TextEmbeddingParams& params)
      : TaskEmbeddingMethod(context), params_(params) {}

  absl::StatusOr<at::Tensor> Compute(const TaskEmbeddingInput& input) override {
    BartForConditionalGeneration& model = input.model->model;
    const int64_t d_model = model->config().d_model;
    if (context().dim != 0 && context().dim != d_model) {
      return absl::InvalidArgumentError(
          absl::StrCat("task-embedding method 'text_emb' gives d_model = ", d_model,
                       " values per task, but dim ", context().dim,
                       " was requested; reduce with PCA (pca_dim) instead"));
    }
    const int64_t decoder_start = input.decoder_start_token_id;
    const PooledRows decoder_pooling = [&model, decoder_start](const BatchTensors& batch,
                                                               const RouteWeights* routes) {
      return DecoderStatesOfShiftedInput(model, decoder_start, batch, routes);
    };
    std::vector<at::Tensor> rows;
    for (int32_t task = 0; task < static_cast<int32_t>(input.data->tasks.size()); ++task) {
      const TokenizedDataset task_data = TaskSubset(*input.data, task);
      rows.push_back(
          params_.pooling() == TextEmbeddingParams::ENCODER_MEAN
              ? MeanPooledEncoderStates(input, task_data, params_.batch_size())
              : MeanOfPooledRows(input, task_data, params_.batch_size(), decoder_pooling));
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
