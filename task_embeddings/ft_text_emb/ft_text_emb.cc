// Task-embedding method "ft_text_emb": text embedding of a model fine-tuned on each task.
#include <cmath>
#include <memory>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "data/batching.h"
#include "moe/embedding/task_embedding.h"
#include "moe/model/loss.h"
#include "moe/model/optimization.h"
#include "task_embeddings/ft_text_emb/ft_text_emb.pb.h"

namespace taskmoe {
namespace {

class FineTunedTextEmbedding : public TaskEmbeddingMethod {
 public:
  FineTunedTextEmbedding(const TaskEmbeddingContext& context,
                         const FineTunedTextEmbeddingParams& params)
      : TaskEmbeddingMethod(context), params_(params) {}

  absl::StatusOr<at::Tensor> Compute(const TaskEmbeddingInput& input) override {
    BartForConditionalGeneration& model = input.model->model;
    const int64_t d_model = model->config().d_model;
    if (context().dim != 0 && context().dim != d_model) {
      return absl::InvalidArgumentError(absl::StrCat(
          "task-embedding method 'ft_text_emb' gives d_model = ", d_model, " values per task, but dim ",
          context().dim, " was requested; reduce with PCA (pca_dim) instead"));
    }
    const bool was_training = model->is_training();
    ModuleSnapshot pretrained(*model);
    std::vector<at::Tensor> rows;
    for (int32_t task = 0; task < static_cast<int32_t>(input.data->tasks.size()); ++task) {
      const TokenizedDataset task_data = TaskSubset(*input.data, task);
      absl::Status trained = FineTune(input, task_data, context().seed + task);
      if (!trained.ok()) {
        pretrained.Restore();
        model->train(was_training);
        return trained;
      }
      rows.push_back(MeanPooledEncoderStates(input, task_data, params_.predict_batch_size()));
      pretrained.Restore();
      if (input.on_task_done) input.on_task_done(task + 1);
    }
    model->train(was_training);
    return at::stack(rows);
  }

 private:
  absl::Status FineTune(const TaskEmbeddingInput& input, const TokenizedDataset& task_data,
                        uint64_t seed) const {
    BartForConditionalGeneration& model = input.model->model;
    at::manual_seed(seed);  // dropout
    model->train();
    TrainableParameters trainable;
    for (const auto& parameter : model->named_parameters()) {
      trainable.model.emplace_back(parameter.key(), parameter.value());
    }
    OptimizerOptions optimizer_options;
    optimizer_options.lr = params_.learning_rate();
    optimizer_options.weight_decay = params_.weight_decay();
    GroupedAdamW optimizer = MakeGroupedAdamW(trainable, optimizer_options);
    BatchOptions batch_options;
    batch_options.batch_size = params_.train_batch_size();
    batch_options.seed = seed;
    batch_options.pad_id = input.pad_id;
    BatchCycle batches(task_data, batch_options);
    for (int64_t step = 0; step < params_.steps(); ++step) {
      const Batch& batch = batches.Next();
      const BatchTensors tensors = ToTensors(batch, input.decoder_start_token_id, input.device);
      const RouteWeights routes = input.model->AverageRoutes(batch.size, input.device);
      const at::Tensor logits = model->Forward(tensors.input_ids, tensors.attention_mask,
                                               tensors.decoder_input_ids,
                                               RoutesOrNull(*input.model, routes))
                                    .logits;
      const LabelSmoothedLoss loss =
          LabelSmoothedNllLoss(logits, tensors.labels, params_.label_smoothing(), input.pad_id);
      const at::Tensor mean_loss = loss.loss / loss.ntokens.clamp_min(1).to(loss.loss.dtype());
      if (!std::isfinite(mean_loss.item<double>())) {
        return absl::InternalError(absl::StrCat("ft_text_emb: the loss of task ", task_data.tasks[0],
                                                " is not finite at step ", step));
      }
      optimizer.optimizer->zero_grad();
      mean_loss.backward();
      ClipGradNorm(optimizer.Parameters(), params_.max_grad_norm());
      optimizer.optimizer->step();
    }
    return absl::OkStatus();
  }

  FineTunedTextEmbeddingParams params_;
};

absl::StatusOr<std::shared_ptr<TaskEmbeddingMethod>> MakeFineTunedTextEmbedding(
    const TaskEmbeddingContext& context, const FineTunedTextEmbeddingParams& params) {
  if (params.steps() < 0 || params.train_batch_size() < 1 || params.predict_batch_size() < 1 ||
      !(params.learning_rate() > 0) || !(params.max_grad_norm() > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "FineTunedTextEmbeddingParams need steps >= 0, batch sizes >= 1, learning_rate > 0 and "
        "max_grad_norm > 0; got ", params.ShortDebugString()));
  }
  return std::make_shared<FineTunedTextEmbedding>(context, params);
}

TASKMOE_REGISTER_TASK_EMBEDDING("ft_text_emb", FineTunedTextEmbeddingParams,
                                MakeFineTunedTextEmbedding);

}  // namespace
}  // namespace taskmoe
