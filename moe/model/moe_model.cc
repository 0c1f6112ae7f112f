#include "moe/model/moe_model.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include <glog/logging.h>
#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/utils.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "moe/base/atomic_directory.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "moe/model/bart_weights.h"
#include "moe/model/merged_experts.h"
#include "moe/model/moe_layers.h"
#include "moe/formats/tensor_shape.h"
#include "moe/model/route_weights.h"

namespace taskmoe {
namespace {

constexpr absl::string_view kEncoderLayers = "model.encoder.layers.";
constexpr absl::string_view kDecoderLayers = "model.decoder.layers.";
constexpr absl::string_view kExperts = "experts.";

bool Contains(const std::vector<int64_t>& values, int64_t value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

// A parameter name split at its layer: "model.encoder.layers.3.experts.1.fc1.weight" has
// prefix "model.encoder.layers.", layer 3, expert 1 and rest "fc1.weight".
struct LayerName {
  bool decoder = false;
  int64_t layer = 0;
  std::optional<int64_t> expert;
  std::string rest;
};

// Consumes "<integer>." from the front of `text`.
std::optional<int64_t> ConsumeIndex(absl::string_view& text) {
  const size_t dot = text.find('.');
  int64_t index = 0;
  if (dot == absl::string_view::npos || !absl::SimpleAtoi(text.substr(0, dot), &index)) {
    return std::nullopt;
  }
  text.remove_prefix(dot + 1);
  return index;
}

// Nullopt for names outside the layer stacks (embeddings, layernorm_embedding, the logits bias).
std::optional<LayerName> ParseLayerName(absl::string_view name) {
  LayerName parsed;
  if (absl::ConsumePrefix(&name, kEncoderLayers)) {
    parsed.decoder = false;
  } else if (absl::ConsumePrefix(&name, kDecoderLayers)) {
    parsed.decoder = true;
  } else {
    return std::nullopt;
  }
  const std::optional<int64_t> layer = ConsumeIndex(name);
  CHECK(layer.has_value()) << "parameter name without a layer index: " << name;
  parsed.layer = *layer;
  if (absl::ConsumePrefix(&name, kExperts)) {
    parsed.expert = ConsumeIndex(name);
    CHECK(parsed.expert.has_value()) << "parameter name without an expert index: " << name;
  }
  parsed.rest = std::string(name);
  return parsed;
}

std::string DenseLayerName(const LayerName& parsed) {
  return absl::StrCat(parsed.decoder ? kDecoderLayers : kEncoderLayers, parsed.layer, ".",
                      parsed.rest);
}

std::string ExpertLayerName(const LayerName& parsed, int64_t expert) {
  return absl::StrCat(parsed.decoder ? kDecoderLayers : kEncoderLayers, parsed.layer, ".",
                      kExperts, expert, ".", parsed.rest);
}

// Every parameter and buffer of `module` by name.
std::vector<std::pair<std::string, at::Tensor>> NamedState(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> state;
  for (const auto& item : module.named_parameters()) state.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers()) state.emplace_back(item.key(), item.value());
  return state;
}

absl::Status CopyInto(at::Tensor& target, const at::Tensor& source, const std::string& target_name,
                      const std::string& source_name) {
  if (!target.sizes().equals(source.sizes())) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, " has shape ", ShapeString(source.sizes()), ", but ",
                     target_name, " needs ", ShapeString(target.sizes())));
  }
  target.copy_(source);
  return absl::OkStatus();
}

// The expert whose weight is 1 in `row` ([experts], doubles), when all others are 0.
std::optional<int64_t> OneHotExpert(const at::Tensor& row) {
  const auto values = row.accessor<double, 1>();
  std::optional<int64_t> chosen;
  for (int64_t e = 0; e < row.size(0); ++e) {
    if (values[e] == 0.0) continue;
    if (values[e] != 1.0 || chosen.has_value()) return std::nullopt;
    chosen = e;
  }
  return chosen;
}

// The expert weights [E] of every layer of one stack (undefined for vanilla layers), from routes
// [layers, 1, E]; with `one_hot`, a layer whose weights are not one-hot is an error.
absl::StatusOr<std::vector<at::Tensor>> LayerWeights(const at::Tensor& routes,
                                                    const std::vector<int64_t>& vanilla,
                                                    absl::string_view stack, bool one_hot) {
  const at::Tensor rows = routes.detach().to(at::kCPU).select(1, 0).contiguous();
  std::vector<at::Tensor> weights(rows.size(0));
  for (int64_t layer = 0; layer < rows.size(0); ++layer) {
    if (Contains(vanilla, layer)) continue;
    const at::Tensor row = rows[layer].to(at::kDouble);
    if (one_hot && !OneHotExpert(row).has_value()) {
      std::vector<double> values(row.data_ptr<double>(), row.data_ptr<double>() + row.numel());
      return absl::InvalidArgumentError(absl::StrCat(
          "extraction needs one-hot routes, but ", stack, " layer ", layer, " has weights [",
          absl::StrJoin(values, ", "), "]"));
    }
    weights[layer] = rows[layer];
  }
  return weights;
}

const char* ActivationName(Activation activation) {
  if (activation == Activation::kGelu) return "gelu";
  if (activation == Activation::kGeluNew) return "gelu_new";
  CHECK(activation == Activation::kRelu) << "unknown activation " << static_cast<int>(activation);
  return "relu";
}

MoeLayerOptions LayerOptions(const MoeOptions& options) {
  return MoeLayerOptions(options.experts)
      .concurrent(options.concurrent_experts)
      .batched(options.batched_experts)
      .route_gradient(options.route_gradient)
      .execution(options.expert_execution);
}

}  // namespace

absl::Status ValidateMoeOptions(const MoeOptions& options, const BartConfig& config) {
  if (options.experts < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("moe.experts must be at least 1, got ", options.experts));
  }
  if (!(options.init_eps >= 0.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("moe.init_eps must be >= 0, got ", options.init_eps));
  }
  for (const auto& [field, layers, count] :
       {std::make_tuple("encoder_vanilla_layers", &options.encoder_vanilla_layers,
                        config.encoder_layers),
        std::make_tuple("decoder_vanilla_layers", &options.decoder_vanilla_layers,
                        config.decoder_layers)}) {
    std::set<int64_t> seen;
    for (const int64_t layer : *layers) {
      if (layer < 0 || layer >= count) {
        return absl::InvalidArgumentError(absl::StrCat("moe.", field, ": layer ", layer,
                                                       " is outside [0, ", count, ")"));
      }
      if (!seen.insert(layer).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("moe.", field, ": layer ", layer, " is listed twice"));
      }
    }
  }
  return absl::OkStatus();
}

std::string BartConfigJson(const BartConfig& config) {
  nlohmann::json json = {
      {"model_type", "bart"},
      {"architectures", {"BartForConditionalGeneration"}},
      {"vocab_size", config.vocab_size},
      {"d_model", config.d_model},
      {"encoder_layers", config.encoder_layers},
      {"decoder_layers", config.decoder_layers},
      {"encoder_attention_heads", config.encoder_attention_heads},
      {"decoder_attention_heads", config.decoder_attention_heads},
      {"encoder_ffn_dim", config.encoder_ffn_dim},
      {"decoder_ffn_dim", config.decoder_ffn_dim},
      {"max_position_embeddings", config.max_position_embeddings},
      {"scale_embedding", config.scale_embedding},
      {"activation_function", ActivationName(config.activation_function)},
      {"dropout", config.dropout},
      {"attention_dropout", config.attention_dropout},
      {"activation_dropout", config.activation_dropout},
      {"pad_token_id", config.pad_token_id},
      {"bos_token_id", config.bos_token_id},
      {"eos_token_id", config.eos_token_id},
      {"decoder_start_token_id", config.decoder_start_token_id},
      {"normalize_before", false},
      {"add_final_layer_norm", false},
      {"normalize_embedding", true},
      {"tie_word_embeddings", true},
  };
  json["forced_eos_token_id"] = config.forced_eos_token_id.has_value()
                                    ? nlohmann::json(*config.forced_eos_token_id)
                                    : nlohmann::json(nullptr);
  return json.dump(2) + "\n";
}

MoeBart::MoeBart(BartForConditionalGeneration model, const BartConfig& config,
                 const MoeOptions& options)
    : model_(std::move(model)), config_(config), options_(options) {
  shape_.encoder_layers = config.encoder_layers;
  shape_.decoder_layers = config.decoder_layers;
  shape_.experts = options.experts;
}

absl::StatusOr<MoeBart> MoeBart::Create(const BartConfig& config, const MoeOptions& options) {
  TASKMOE_RETURN_IF_ERROR(ValidateMoeOptions(options, config));
  BlockFactories factories;
  factories.encoder = [options](const BartConfig& c,
                                int64_t layer) -> std::shared_ptr<EncoderBlock> {
    if (Contains(options.encoder_vanilla_layers, layer)) {
      return BartEncoderLayer(BartLayerOptions::Encoder(c)).ptr();
    }
    return MoeEncoderLayer(BartLayerOptions::Encoder(c), LayerOptions(options)).ptr();
  };
  factories.decoder = [options](const BartConfig& c,
                                int64_t layer) -> std::shared_ptr<DecoderBlock> {
    if (Contains(options.decoder_vanilla_layers, layer)) {
      return BartDecoderLayer(BartLayerOptions::Decoder(c)).ptr();
    }
    return MoeDecoderLayer(BartLayerOptions::Decoder(c), LayerOptions(options)).ptr();
  };
  return MoeBart(BartForConditionalGeneration(config, factories), config, options);
}

absl::StatusOr<MoeBart> MoeBart::FromDense(const BartForConditionalGeneration& dense,
                                           const MoeOptions& options) {
  TASKMOE_ASSIGN_OR_RETURN(MoeBart moe, Create(dense->config(), options));
  std::map<std::string, at::Tensor> dense_state;
  for (auto& [name, tensor] : NamedState(*dense)) dense_state.emplace(name, tensor);
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : NamedState(*moe.model_)) {
    const std::optional<LayerName> parsed = ParseLayerName(name);
    const std::string dense_name =
        parsed.has_value() && parsed->expert.has_value() ? DenseLayerName(*parsed) : name;
    const auto source = dense_state.find(dense_name);
    if (source == dense_state.end()) {
      return absl::InvalidArgumentError(absl::StrCat("dense model has no ", dense_name,
                                                     " to initialise ", name));
    }
    TASKMOE_RETURN_IF_ERROR(CopyInto(tensor, source->second, name, dense_name));
    if (parsed.has_value() && parsed->expert.has_value() && options.init_eps > 0.0) {
      tensor.add_(at::randn_like(tensor) * options.init_eps);
    }
  }
  moe.model_->eval();
  return moe;
}

absl::StatusOr<MoeBart> MoeBart::FromDenseDirectory(const std::string& dir,
                                                    const MoeOptions& options) {
  TASKMOE_ASSIGN_OR_RETURN(const BartForConditionalGeneration dense, LoadBartDirectory(dir));
  return FromDense(dense, options);
}

absl::Status MoeBart::CheckRoutes(const RouteWeights& routes, int64_t batch) const {
  return ValidateRoutes(routes, shape_, batch);
}

absl::StatusOr<BartOutput> MoeBart::Forward(const at::Tensor& input_ids,
                                            const at::Tensor& attention_mask,
                                            const at::Tensor& decoder_input_ids,
                                            const RouteWeights& routes) {
  TASKMOE_RETURN_IF_ERROR(CheckRoutes(routes, input_ids.size(0)));
  return model_->Forward(input_ids, attention_mask, decoder_input_ids, &routes);
}

absl::StatusOr<BartForConditionalGeneration> MoeBart::ExtractDense(
    const RouteWeights& routes) const {
  TASKMOE_RETURN_IF_ERROR(CheckRoutes(routes, /*batch=*/1));
  const bool one_hot = options_.expert_execution == ExpertExecution::kMixOutputs;
  TASKMOE_ASSIGN_OR_RETURN(
      const std::vector<at::Tensor> encoder_weights,
      LayerWeights(routes.encoder, options_.encoder_vanilla_layers, "encoder", one_hot));
  TASKMOE_ASSIGN_OR_RETURN(
      const std::vector<at::Tensor> decoder_weights,
      LayerWeights(routes.decoder, options_.decoder_vanilla_layers, "decoder", one_hot));

  std::map<std::string, at::Tensor> moe_state;
  for (auto& [name, tensor] : NamedState(*model_)) moe_state.emplace(name, tensor);
  BartForConditionalGeneration dense(config_);
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : NamedState(*dense)) {
    const std::optional<LayerName> parsed = ParseLayerName(name);
    const at::Tensor* weights =
        parsed.has_value() ? &(parsed->decoder ? decoder_weights : encoder_weights)[parsed->layer]
                           : nullptr;
    if (weights == nullptr || !weights->defined()) {
      const auto source = moe_state.find(name);
      CHECK(source != moe_state.end()) << "MoE model lacks " << name;
      TASKMOE_RETURN_IF_ERROR(CopyInto(tensor, source->second, name, name));
      continue;
    }
    if (one_hot) {
      // Mixed outputs under one-hot routes: the chosen expert's parameter itself.
      const std::string source_name = ExpertLayerName(*parsed, weights->argmax().item<int64_t>());
      const auto source = moe_state.find(source_name);
      CHECK(source != moe_state.end()) << "MoE model lacks " << source_name << " for " << name;
      TASKMOE_RETURN_IF_ERROR(CopyInto(tensor, source->second, name, source_name));
      continue;
    }
    // Merged parameters: the layer's parameter merged with the task's weights, computed as the
    // merged execution computes it.
    std::vector<at::Tensor> experts;
    for (int64_t e = 0; e < options_.experts; ++e) {
      const auto source = moe_state.find(ExpertLayerName(*parsed, e));
      CHECK(source != moe_state.end()) << "MoE model lacks " << ExpertLayerName(*parsed, e);
      experts.push_back(source->second);
    }
    const at::Tensor merged = MergeParameters(experts, weights->unsqueeze(0))[0];
    TASKMOE_RETURN_IF_ERROR(CopyInto(tensor, merged, name, ExpertLayerName(*parsed, 0)));
  }
  dense->eval();
  return dense;
}

absl::Status SaveBartDirectory(const BartForConditionalGeneration& model, const std::string& dir) {
  TASKMOE_ASSIGN_OR_RETURN(AtomicDirectory staging, AtomicDirectory::Begin(dir));
  TASKMOE_RETURN_IF_ERROR(
      WriteFileAtomically(staging.staging() + "/config.json", BartConfigJson(model->config())));
  TASKMOE_RETURN_IF_ERROR(SaveBartWeights(model, staging.staging() + "/model.safetensors"));
  return staging.Commit();
}

}  // namespace taskmoe
