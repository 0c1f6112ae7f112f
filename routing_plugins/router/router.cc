#include "routing_plugins/router/router.h"

#include <cmath>
#include <string>

#include <torch/nn/init.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>
#include <torch/nn/modules/transformerlayer.h>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace taskmoe {
namespace {

RouterArchitecture ArchitectureFromProto(RouterNetworkParams::Architecture architecture) {
  switch (architecture) {
    case RouterNetworkParams::LINEAR: return RouterArchitecture::kLinear;
    case RouterNetworkParams::LINEAR_LAYER_SPECIFIC: return RouterArchitecture::kLinearLayerSpecific;
    case RouterNetworkParams::RNN: return RouterArchitecture::kRnn;
    case RouterNetworkParams::GRU: return RouterArchitecture::kGru;
    case RouterNetworkParams::LSTM: return RouterArchitecture::kLstm;
    case RouterNetworkParams::RNN_LAYER_SPECIFIC: return RouterArchitecture::kRnnLayerSpecific;
    case RouterNetworkParams::GRU_LAYER_SPECIFIC: return RouterArchitecture::kGruLayerSpecific;
    case RouterNetworkParams::LSTM_LAYER_SPECIFIC: return RouterArchitecture::kLstmLayerSpecific;
    case RouterNetworkParams::TRANSFORMER: return RouterArchitecture::kTransformer;
    case RouterNetworkParams::TRANSFORMER_LAYER_SPECIFIC: return RouterArchitecture::kTransformerLayerSpecific;
  }
  LOG(FATAL) << "unhandled router architecture " << architecture;
}

// nn.Linear's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), for stacked weights.
at::Tensor LinearInit(at::IntArrayRef shape, int64_t fan_in) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return at::empty(shape).uniform_(-bound, bound);
}

// One GELU MLP per layer, all layers computed with one batched matmul.
class LinearLayerSpecificRouter : public RouterNetworkImpl {
 public:
  explicit LinearLayerSpecificRouter(const RouterNetworkOptions& o) {
    hidden_weight_ = register_parameter("hidden_weight", LinearInit({o.layers, o.input_dim, o.hidden_dim}, o.input_dim));
    hidden_bias_ = register_parameter("hidden_bias", LinearInit({o.layers, 1, o.hidden_dim}, o.input_dim));
    output_weight_ = register_parameter("output_weight", LinearInit({o.layers, o.hidden_dim, o.experts}, o.hidden_dim));
    output_bias_ = register_parameter("output_bias", LinearInit({o.layers, 1, o.experts}, o.hidden_dim));
  }

  at::Tensor forward(const at::Tensor& task_vectors) override {
    // [1, batch, dim] @ [layers, dim, hidden] -> [layers, batch, hidden]
    const at::Tensor hidden = at::gelu(at::matmul(task_vectors.unsqueeze(0), hidden_weight_) + hidden_bias_);
    return at::matmul(hidden, output_weight_) + output_bias_;
  }

 private:
  at::Tensor hidden_weight_, hidden_bias_, output_weight_, output_bias_;
};

class LinearRouter : public RouterNetworkImpl {
 public:
  explicit LinearRouter(const RouterNetworkOptions& o) : layers_(o.layers), experts_(o.experts) {
    hidden_ = register_module("hidden", torch::nn::Linear(o.input_dim, o.hidden_dim));
    output_ = register_module("output", torch::nn::Linear(o.hidden_dim, o.layers * o.experts));
  }

  at::Tensor forward(const at::Tensor& task_vectors) override {
    const at::Tensor logits = output_->forward(at::gelu(hidden_->forward(task_vectors)));
    return logits.view({-1, layers_, experts_}).transpose(0, 1);
  }

 private:
  int64_t layers_, experts_;
  torch::nn::Linear hidden_{nullptr}, output_{nullptr};
};

// The layers form a sequence. Plain variants read the task vector plus a learned layer embedding
// at every position; layer-specific variants read a per-layer projection of the task vector.
class SequenceRouterBase : public RouterNetworkImpl {
 public:
  SequenceRouterBase(const RouterNetworkOptions& o, bool layer_specific, int64_t sequence_dim)
      : layers_(o.layers), sequence_dim_(sequence_dim) {
    if (layer_specific) {
      layer_projection_ = register_module("layer_projection", torch::nn::Linear(o.input_dim, o.hidden_dim * o.layers));
    } else {
      layer_embedding_ = register_module("layer_embedding", torch::nn::Embedding(o.layers, o.input_dim));
    }
  }

 protected:
  // [batch, layers, sequence_dim]
  at::Tensor LayerSequence(const at::Tensor& task_vectors) {
    if (layer_projection_) return layer_projection_->forward(task_vectors).view({-1, layers_, sequence_dim_});
    return task_vectors.unsqueeze(1) + layer_embedding_->weight.unsqueeze(0);
  }

 private:
  int64_t layers_, sequence_dim_;
  torch::nn::Linear layer_projection_{nullptr};
  torch::nn::Embedding layer_embedding_{nullptr};
};

class RecurrentRouter : public SequenceRouterBase {
 public:
  RecurrentRouter(const RouterNetworkOptions& o, bool layer_specific)
      : SequenceRouterBase(o, layer_specific, layer_specific ? o.hidden_dim : o.input_dim) {
    const int64_t in = layer_specific ? o.hidden_dim : o.input_dim;
    switch (o.architecture) {
      case RouterArchitecture::kRnn:
      case RouterArchitecture::kRnnLayerSpecific:
        rnn_ = register_module("rnn", torch::nn::RNN(torch::nn::RNNOptions(in, o.hidden_dim).bidirectional(true).batch_first(true)));
        break;
      case RouterArchitecture::kGru:
      case RouterArchitecture::kGruLayerSpecific:
        gru_ = register_module("rnn", torch::nn::GRU(torch::nn::GRUOptions(in, o.hidden_dim).bidirectional(true).batch_first(true)));
        break;
      default:
        lstm_ = register_module("rnn", torch::nn::LSTM(torch::nn::LSTMOptions(in, o.hidden_dim).bidirectional(true).batch_first(true)));
    }
    output_ = register_module("output", torch::nn::Linear(2 * o.hidden_dim, o.experts));  // 2: both directions
  }

  at::Tensor forward(const at::Tensor& task_vectors) override {
    const at::Tensor sequence = LayerSequence(task_vectors);
    at::Tensor states;
    if (rnn_) states = std::get<0>(rnn_->forward(sequence));
    else if (gru_) states = std::get<0>(gru_->forward(sequence));
    else states = std::get<0>(lstm_->forward(sequence));
    return output_->forward(states).transpose(0, 1);  // [batch, layers, E] -> [layers, batch, E]
  }

 private:
  torch::nn::RNN rnn_{nullptr};
  torch::nn::GRU gru_{nullptr};
  torch::nn::LSTM lstm_{nullptr};
  torch::nn::Linear output_{nullptr};
};

class TransformerRouter : public SequenceRouterBase {
 public:
  TransformerRouter(const RouterNetworkOptions& o, bool layer_specific)
      : SequenceRouterBase(o, layer_specific, layer_specific ? o.hidden_dim : o.input_dim) {
    const int64_t width = layer_specific ? o.hidden_dim : o.input_dim;
    encoder_layer_ = register_module(
        "encoder_layer", torch::nn::TransformerEncoderLayer(
                             torch::nn::TransformerEncoderLayerOptions(width, o.transformer_heads)
                                 .dim_feedforward(o.transformer_ffn_dim)));
    output_ = register_module("output", torch::nn::Linear(width, o.experts));
  }

  at::Tensor forward(const at::Tensor& task_vectors) override {
    // The encoder layer takes [sequence, batch, width]: the layers are the sequence.
    return output_->forward(encoder_layer_->forward(LayerSequence(task_vectors).transpose(0, 1)));
  }

 private:
  torch::nn::TransformerEncoderLayer encoder_layer_{nullptr};
  torch::nn::Linear output_{nullptr};
};

}  // namespace

absl::StatusOr<RouterNetworkOptions> RouterNetworkOptionsFromProto(const RouterNetworkParams& params,
                                                                   const RoutingContext& context) {
  RouterNetworkOptions options;
  options.architecture = ArchitectureFromProto(params.architecture());
  options.input_dim = context.task_vector_dim;
  options.hidden_dim = params.hidden_dim();
  options.layers = context.shape.encoder_layers + context.shape.decoder_layers;
  options.experts = context.shape.experts;
  options.transformer_heads = params.transformer_heads();
  options.transformer_ffn_dim = params.transformer_ffn_dim();
  if (options.hidden_dim < 1 || options.transformer_heads < 1 || options.transformer_ffn_dim < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "router: hidden_dim, transformer_heads and transformer_ffn_dim must be positive, got ",
        options.hidden_dim, ", ", options.transformer_heads, ", ", options.transformer_ffn_dim));
  }
  if (options.layers < 1) return absl::InvalidArgumentError("router: the model has no layers to route");
  const bool plain_transformer = options.architecture == RouterArchitecture::kTransformer;
  if (plain_transformer || options.architecture == RouterArchitecture::kTransformerLayerSpecific) {
    const int64_t width = plain_transformer ? options.input_dim : options.hidden_dim;
    if (width % options.transformer_heads != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "router: ", RouterNetworkParams::Architecture_Name(params.architecture()), " attends over width ",
          width, plain_transformer ? " (task_vector_dim)" : " (hidden_dim)",
          ", which transformer_heads = ", options.transformer_heads, " does not divide"));
    }
  }
  return options;
}

std::shared_ptr<RouterNetworkImpl> MakeRouterNetwork(const RouterNetworkOptions& options) {
  switch (options.architecture) {
    case RouterArchitecture::kLinear: return std::make_shared<LinearRouter>(options);
    case RouterArchitecture::kLinearLayerSpecific: return std::make_shared<LinearLayerSpecificRouter>(options);
    case RouterArchitecture::kRnn:
    case RouterArchitecture::kGru:
    case RouterArchitecture::kLstm: return std::make_shared<RecurrentRouter>(options, /*layer_specific=*/false);
    case RouterArchitecture::kRnnLayerSpecific:
    case RouterArchitecture::kGruLayerSpecific:
    case RouterArchitecture::kLstmLayerSpecific: return std::make_shared<RecurrentRouter>(options, /*layer_specific=*/true);
    case RouterArchitecture::kTransformer: return std::make_shared<TransformerRouter>(options, /*layer_specific=*/false);
    case RouterArchitecture::kTransformerLayerSpecific:
      return std::make_shared<TransformerRouter>(options, /*layer_specific=*/true);
  }
  LOG(FATAL) << "unhandled router architecture";
}

double TemperatureSchedule::At(int64_t step) const {
  return std::max(initial_tau * std::exp(-anneal_rate * static_cast<double>(step)), minimum_tau);
}

absl::StatusOr<SelectionOptions> SelectionOptionsFromProto(const RouteSelectionParams& params) {
  SelectionOptions options;
  switch (params.function()) {
    case RouteSelectionParams::SOFTMAX: options.function = SelectionFunction::kSoftmax; break;
    case RouteSelectionParams::GUMBEL_SOFTMAX: options.function = SelectionFunction::kGumbelSoftmax; break;
    case RouteSelectionParams::GUMBEL_SOFTMAX_ST:
      options.function = SelectionFunction::kGumbelSoftmaxStraightThrough;
      break;
  }
  options.temperature = {params.initial_tau(), params.minimum_tau(), params.anneal_rate()};
  options.evaluation = params.eval_route() == RouteSelectionParams::ARGMAX
                           ? EvaluationRoute::kArgmax
                           : EvaluationRoute::kSample;
  if (!(params.initial_tau() > 0) || !(params.minimum_tau() > 0) || !(params.anneal_rate() >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "selection: initial_tau and minimum_tau must be > 0 and anneal_rate >= 0, got ",
        params.initial_tau(), ", ", params.minimum_tau(), ", ", params.anneal_rate()));
  }
  return options;
}

at::Tensor SelectRoutes(const at::Tensor& logits, SelectionFunction function, double tau,
                        bool training, EvaluationRoute evaluation) {
  CHECK_GT(tau, 0.0);
  if (function == SelectionFunction::kSoftmax) return at::softmax(logits / tau, -1);
  const int64_t experts = logits.size(-1);
  if (!training && evaluation == EvaluationRoute::kArgmax) {
    return at::one_hot(logits.argmax(-1), experts).to(logits.scalar_type());
  }
  // Gumbel(0, 1) noise is -log(Exponential(1)).
  const at::Tensor gumbels = -at::empty_like(logits).exponential_().log();
  const at::Tensor soft = at::softmax((logits + gumbels) / tau, -1);
  const at::Tensor hard = at::one_hot(soft.argmax(-1), experts).to(soft.scalar_type());
  // The original evaluates with the argmax of its sample (use_sparse), for both functions.
  if (!training) return hard;
  if (function == SelectionFunction::kGumbelSoftmax) return soft;
  // Straight-through: the forward value is `hard`, the gradient that of `soft`.
  return hard - soft.detach() + soft;
}

}  // namespace taskmoe
