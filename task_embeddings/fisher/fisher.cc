// Task-embedding method "fisher": diagonal Fisher information of per-task adapter weights.
#include <cmath>
#include <memory>
#include <vector>

#include <ATen/ATen.h>
#include <torch/nn/modules/linear.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "data/batching.h"
#include "moe/embedding/task_embedding.h"
#include "moe/model/loss.h"
#include "moe/model/optimization.h"
#include "task_embeddings/fisher/fisher.pb.h"

namespace taskmoe {
namespace {

// h + up(relu(down(h))); `up` starts at zero so the adapted model starts as the frozen one.
class BottleneckAdapterImpl : public torch::nn::Module {
 public:
  BottleneckAdapterImpl(int64_t d_model, int64_t adapter_dim)
      : down(register_module("down", torch::nn::Linear(d_model, adapter_dim))),
        up(register_module("up", torch::nn::Linear(adapter_dim, d_model))) {
    at::NoGradGuard no_grad;
    up->weight.zero_();
    up->bias.zero_();
  }
  at::Tensor forward(const at::Tensor& hidden) { return hidden + up(at::relu(down(hidden))); }

  torch::nn::Linear down;
  torch::nn::Linear up;
};
TORCH_MODULE(BottleneckAdapter);

// The model's parameters stop requiring gradients while this lives.
class FrozenParameters {
 public:
  explicit FrozenParameters(torch::nn::Module& module) {
    for (at::Tensor& parameter : module.parameters()) {
      if (!parameter.requires_grad()) continue;
      parameter.requires_grad_(false);
      frozen_.push_back(parameter);
    }
  }
  ~FrozenParameters() {
    for (at::Tensor& parameter : frozen_) parameter.requires_grad_(true);
  }

 private:
  std::vector<at::Tensor> frozen_;
};

class FisherEmbedding : public TaskEmbeddingMethod {
 public:
  FisherEmbedding(const TaskEmbeddingContext& context, const FisherEmbeddingParams& params)
      : TaskEmbeddingMethod(context), params_(params) {}

  absl::StatusOr<at::Tensor> Compute(const TaskEmbeddingInput& input) override {
    BartForConditionalGeneration& model = input.model->model;
    const bool was_training = model->is_training();
    FrozenParameters frozen(*model);
    std::vector<at::Tensor> rows;
    for (int32_t task = 0; task < static_cast<int32_t>(input.data->tasks.size()); ++task) {
      absl::StatusOr<at::Tensor> fisher = TaskFisher(input, TaskSubset(*input.data, task),
                                                     context().seed + task);
      if (!fisher.ok()) {
        model->train(was_training);
        return fisher.status();
      }
      rows.push_back(*fisher);
      if (input.on_task_done) input.on_task_done(task + 1);
    }
    model->train(was_training);
    const at::Tensor vectors = at::stack(rows);
    if (context().dim == 0) return vectors;
    return PcaReduce(vectors, context().dim);
  }

 private:
  struct Adapters {
    BottleneckAdapter encoder{nullptr};
    BottleneckAdapter decoder{nullptr};
    std::vector<at::Tensor> Parameters() const {
      std::vector<at::Tensor> parameters = encoder->parameters();
      for (const at::Tensor& parameter : decoder->parameters()) parameters.push_back(parameter);
      return parameters;
    }
  };

  // Per-token loss of the adapted model on one batch: label-smoothed, or plain NLL when
  // `label_smoothing` is 0.
  static at::Tensor AdaptedLoss(const TaskEmbeddingInput& input, Adapters& adapters,
                                const Batch& batch, double label_smoothing) {
    BartForConditionalGeneration& model = input.model->model;
    const BatchTensors tensors = ToTensors(batch, input.decoder_start_token_id, input.device);
    const RouteWeights routes = input.model->AverageRoutes(batch.size, input.device);
    const RouteWeights* route_pointer = RoutesOrNull(*input.model, routes);
    const at::Tensor encoded =
        adapters.encoder(model->Encode(tensors.input_ids, tensors.attention_mask, route_pointer));
    const at::Tensor decoded = model->model->decoder->Forward(
        tensors.decoder_input_ids, encoded, tensors.attention_mask, route_pointer, nullptr);
    const at::Tensor logits = model->LmHead(adapters.decoder(decoded));
    const LabelSmoothedLoss loss =
        LabelSmoothedNllLoss(logits, tensors.labels, label_smoothing, input.pad_id);
    return loss.loss / loss.ntokens.clamp_min(1).to(loss.loss.dtype());
  }

  absl::StatusOr<at::Tensor> TaskFisher(const TaskEmbeddingInput& input,
                                        const TokenizedDataset& task_data, uint64_t seed) const {
    BartForConditionalGeneration& model = input.model->model;
    at::manual_seed(seed);  // adapter initialisation and dropout
    const int64_t d_model = model->config().d_model;
    Adapters adapters{BottleneckAdapter(d_model, params_.adapter_dim()),
                      BottleneckAdapter(d_model, params_.adapter_dim())};
    adapters.encoder->to(input.device);
    adapters.decoder->to(input.device);

    TrainableParameters trainable;
    for (const auto& parameter : adapters.encoder->named_parameters()) {
      trainable.model.emplace_back("encoder_adapter." + parameter.key(), parameter.value());
    }
    for (const auto& parameter : adapters.decoder->named_parameters()) {
      trainable.model.emplace_back("decoder_adapter." + parameter.key(), parameter.value());
    }
    OptimizerOptions optimizer_options;
    optimizer_options.lr = params_.learning_rate();
    GroupedAdamW optimizer = MakeGroupedAdamW(trainable, optimizer_options);
    BatchOptions train_options;
    train_options.batch_size = params_.train_batch_size();
    train_options.seed = seed;
    train_options.pad_id = input.pad_id;
    BatchCycle batches(task_data, train_options);
    model->train();
    for (int64_t step = 0; step < params_.steps(); ++step) {
      const at::Tensor loss = AdaptedLoss(input, adapters, batches.Next(), params_.label_smoothing());
      if (!std::isfinite(loss.item<double>())) {
        return absl::InternalError(absl::StrCat("fisher: the adapter loss of task ", task_data.tasks[0],
                                                " is not finite at step ", step));
      }
      optimizer.optimizer->zero_grad();
      loss.backward();
      optimizer.optimizer->step();
    }

    // Fisher information: mean squared gradient of the log-likelihood, deterministic model.
    model->eval();
    const std::vector<at::Tensor> parameters = adapters.Parameters();
    std::vector<at::Tensor> squared_sums;
    for (const at::Tensor& parameter : parameters) squared_sums.push_back(at::zeros_like(parameter));
    BatchOptions fisher_options;
    fisher_options.batch_size = params_.fisher_batch_size();
    fisher_options.shuffle = false;
    fisher_options.pad_id = input.pad_id;
    int64_t batch_count = 0;
    for (const Batch& batch : MakeEpochBatches(task_data, fisher_options, /*epoch=*/0)) {
      optimizer.optimizer->zero_grad();
      AdaptedLoss(input, adapters, batch, /*label_smoothing=*/0.0).backward();
      for (size_t i = 0; i < parameters.size(); ++i) squared_sums[i] += parameters[i].grad().square();
      ++batch_count;
    }
    std::vector<at::Tensor> flat;
    for (const at::Tensor& sum : squared_sums) flat.push_back(sum.flatten() / batch_count);
    return at::cat(flat).to(at::kCPU, at::kFloat);
  }

  FisherEmbeddingParams params_;
};

absl::StatusOr<std::shared_ptr<TaskEmbeddingMethod>> MakeFisherEmbedding(
    const TaskEmbeddingContext& context, const FisherEmbeddingParams& params) {
  if (params.adapter_dim() < 1 || params.steps() < 0 || params.train_batch_size() < 1 ||
      params.fisher_batch_size() < 1 || !(params.learning_rate() > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "FisherEmbeddingParams need adapter_dim >= 1, steps >= 0, batch sizes >= 1 and "
        "learning_rate > 0; got ", params.ShortDebugString()));
  }
  if (context.dim < 0) {
    return absl::InvalidArgumentError(absl::StrCat("fisher: dim must be >= 0, got ", context.dim));
  }
  return std::make_shared<FisherEmbedding>(context, params);
}

TASKMOE_REGISTER_TASK_EMBEDDING("fisher", FisherEmbeddingParams, MakeFisherEmbedding);

}  // namespace
}  // namespace taskmoe
