// Task-embedding method "fisher": diagonal Fisher information of bottleneck adapters trained in
// every layer of the frozen model (see fisher.proto).
#include <ATen/ATen.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "data/batching.h"
#include "moe/embedding/task_embedding.h"
#include "moe/embedding/task_training.h"
#include "task_embeddings/fisher/fisher.pb.h"

namespace taskmoe {
namespace {

// h + up(act(down(h))).
class BottleneckAdapterImpl : public torch::nn::Module {
 public:
  BottleneckAdapterImpl(int64_t d_model, const FisherEmbeddingParams& params, Activation activation)
      : down(register_module("down", torch::nn::Linear(d_model, params.adapter_dim()))),
        up(register_module("up", torch::nn::Linear(params.adapter_dim(), d_model))),
        activation_(activation) {
    at::NoGradGuard no_grad;
    if (params.adapter_init() == FisherEmbeddingParams::ONES) {
      down->weight.fill_(1.0);
      up->weight.fill_(1.0);
    } else {
      up->weight.zero_();
    }
    down->bias.zero_();
    up->bias.zero_();
  }

  at::Tensor forward(const at::Tensor& hidden) {
    return hidden + up(Activate(down(hidden), activation_));
  }

  torch::nn::Linear down;
  torch::nn::Linear up;

 private:
  Activation activation_;
};
TORCH_MODULE(BottleneckAdapter);

// The adapters of one layer, one per sublayer (an encoder layer has no cross-attention).
class LayerAdaptersImpl : public torch::nn::Module {
 public:
  LayerAdaptersImpl(bool decoder, const BartConfig& config, const FisherEmbeddingParams& params) {
    auto make = [&] {
      return BottleneckAdapter(config.d_model, params, config.activation_function);
    };
    self_attention = register_module("self_attention", make());
    if (decoder) cross_attention = register_module("cross_attention", make());
    feed_forward = register_module("feed_forward", make());
  }

  at::Tensor Apply(Sublayer sublayer, const at::Tensor& output) {
    switch (sublayer) {
      case Sublayer::kSelfAttention:
        return self_attention(output);
      case Sublayer::kCrossAttention:
        CHECK(!cross_attention.is_empty()) << "an encoder layer has no cross-attention";
        return cross_attention(output);
      case Sublayer::kFeedForward:
        return feed_forward(output);
    }
    LOG(FATAL) << "unknown sublayer " << static_cast<int>(sublayer);
  }

  BottleneckAdapter self_attention{nullptr};
  BottleneckAdapter cross_attention{nullptr};
  BottleneckAdapter feed_forward{nullptr};
};

// Every layer's adapters; registration order is the original's parameter order.
class ModelAdaptersImpl : public torch::nn::Module {
 public:
  ModelAdaptersImpl(const BartConfig& config, const FisherEmbeddingParams& params)
      : encoder(register_module("encoder", torch::nn::ModuleList())),
        decoder(register_module("decoder", torch::nn::ModuleList())) {
    for (int64_t i = 0; i < config.encoder_layers; ++i) {
      encoder->push_back(std::make_shared<LayerAdaptersImpl>(false, config, params));
    }
    for (int64_t i = 0; i < config.decoder_layers; ++i) {
      decoder->push_back(std::make_shared<LayerAdaptersImpl>(true, config, params));
    }
  }

  // The weight matrices (no biases), in the order of the task vector.
  std::vector<at::Tensor> Weights() const {
    std::vector<at::Tensor> weights;
    for (const auto& parameter : named_parameters()) {
      if (absl::EndsWith(parameter.key(), ".weight")) weights.push_back(parameter.value());
    }
    return weights;
  }

  torch::nn::ModuleList encoder;
  torch::nn::ModuleList decoder;
};
TORCH_MODULE(ModelAdapters);

// Hooks the adapters into every BART layer of the model while it lives. Every expert of an MoE
// layer position (each a BART layer) shares its position's adapters.
class InstalledAdapters {
 public:
  InstalledAdapters(BartForConditionalGeneration& model, ModelAdapters& adapters) {
    Install<BartEncoderLayerImpl>(*model->model->encoder->layers, *adapters->encoder);
    Install<BartDecoderLayerImpl>(*model->model->decoder->layers, *adapters->decoder);
  }
  ~InstalledAdapters() {
    for (SublayerHook* hook : hooks_) *hook = nullptr;
  }
  InstalledAdapters(const InstalledAdapters&) = delete;
  InstalledAdapters& operator=(const InstalledAdapters&) = delete;

 private:
  template <typename Layer>
  void Install(const torch::nn::ModuleListImpl& layers, const torch::nn::ModuleListImpl& adapters) {
    CHECK_EQ(layers.size(), adapters.size());
    for (size_t i = 0; i < layers.size(); ++i) {
      std::shared_ptr<LayerAdaptersImpl> layer_adapters = adapters.ptr<LayerAdaptersImpl>(i);
      for (const auto& module : layers.ptr(i)->modules(/*include_self=*/true)) {
        auto* layer = dynamic_cast<Layer*>(module.get());
        if (layer == nullptr) continue;
        layer->sublayer_hook = [layer_adapters](Sublayer sublayer, const at::Tensor& output) {
          return layer_adapters->Apply(sublayer, output);
        };
        hooks_.push_back(&layer->sublayer_hook);
      }
    }
  }

  std::vector<SublayerHook*> hooks_;
};

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
    std::vector<at::Tensor> rows;
    for (int32_t task = 0; task < static_cast<int32_t>(input.data->tasks.size()); ++task) {
      absl::StatusOr<at::Tensor> fisher =
          TaskFisher(input, TaskSubset(*input.data, task), context().seed + task);
      if (!fisher.ok()) return fisher.status();
      rows.push_back(*fisher);
      if (input.on_task_done) input.on_task_done(task + 1);
    }
    const at::Tensor vectors = at::stack(rows);
    if (context().dim == 0) return vectors;
    return PcaReduce(vectors, context().dim);
  }

 private:
  absl::StatusOr<at::Tensor> TaskFisher(const TaskEmbeddingInput& input,
                                        const TokenizedDataset& task_data, uint64_t seed) const {
    BartForConditionalGeneration& model = input.model->model;
    at::manual_seed(seed);  // ZERO_UP's initialisation
    ModelAdapters adapters(model->config(), params_);
    adapters->to(input.device);
    InstalledAdapters installed(model, adapters);
    TrainableParameters trainable;
    for (const auto& parameter : adapters->named_parameters()) {
      trainable.model.emplace_back("adapters." + parameter.key(), parameter.value());
    }
    std::vector<at::Tensor> clipped = adapters->parameters();
    {
      std::optional<FrozenParameters> frozen;
      if (params_.clip_whole_model()) {
        for (const at::Tensor& parameter : model->parameters()) clipped.push_back(parameter);
      } else {
        frozen.emplace(*model);
      }
      TaskTrainingOptions options = TaskTrainingOptionsFrom(params_);
      options.seed = seed;
      const absl::Status trained = TrainOnTask(input, task_data, trainable, clipped, options);
      if (!trained.ok()) return trained;
    }
    FrozenParameters frozen(*model);
    return DiagonalFisher(input, task_data, adapters);
  }

  // Mean over the task's batches (fisher_batch_size examples, in order, dropout off) of the
  // squared gradients of the summed loss with respect to the adapters' weights, flattened and
  // concatenated. Gradients are read from .grad after backward(), not from autograd::grad: MoE
  // layers run their experts' backward passes themselves and only accumulate into .grad.
  at::Tensor DiagonalFisher(const TaskEmbeddingInput& input, const TokenizedDataset& task_data,
                            const ModelAdapters& adapters) const {
    BartForConditionalGeneration& model = input.model->model;
    const bool was_training = model->is_training();
    model->eval();
    BatchOptions options;
    options.batch_size = params_.fisher_batch_size();
    options.shuffle = false;
    options.pad_id = input.pad_id;
    const std::vector<at::Tensor> weights = adapters->Weights();
    std::vector<at::Tensor> squared_sums;
    for (const at::Tensor& weight : weights) squared_sums.push_back(at::zeros_like(weight));
    int64_t batches = 0;
    for (const Batch& batch : MakeEpochBatches(task_data, options, /*epoch=*/0)) {
      for (at::Tensor& parameter : adapters->parameters()) parameter.mutable_grad() = at::Tensor();
      SummedTaskLoss(input, batch, params_.label_smoothing()).backward();
      for (size_t i = 0; i < weights.size(); ++i) squared_sums[i] += weights[i].grad().square();
      ++batches;
    }
    for (at::Tensor& parameter : adapters->parameters()) parameter.mutable_grad() = at::Tensor();
    model->train(was_training);
    std::vector<at::Tensor> flat;
    for (const at::Tensor& sum : squared_sums) flat.push_back(sum.flatten() / batches);
    return at::cat(flat).to(at::kCPU, at::kFloat);
  }

  FisherEmbeddingParams params_;
};

absl::StatusOr<std::shared_ptr<TaskEmbeddingMethod>> MakeFisherEmbedding(
    const TaskEmbeddingContext& context, const FisherEmbeddingParams& params) {
  if (params.adapter_dim() < 1 || params.fisher_batch_size() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "FisherEmbeddingParams need adapter_dim >= 1 and fisher_batch_size >= 1; got adapter_dim ",
        params.adapter_dim(), ", fisher_batch_size ", params.fisher_batch_size()));
  }
  const absl::Status valid =
      ValidateTaskTrainingOptions(TaskTrainingOptionsFrom(params), "FisherEmbeddingParams");
  if (!valid.ok()) return valid;
  if (context.dim < 0) {
    return absl::InvalidArgumentError(absl::StrCat("fisher: dim must be >= 0, got ", context.dim));
  }
  return std::make_shared<FisherEmbedding>(context, params);
}

TASKMOE_REGISTER_TASK_EMBEDDING("fisher", FisherEmbeddingParams, MakeFisherEmbedding);

}  // namespace
}  // namespace taskmoe
