#include "moe/formats/bart_config.h"

#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"

namespace taskmoe {
namespace {

using nlohmann::json;

class FieldReader {
 public:
  FieldReader(const json& root, const std::string& source) : root_(root), source_(source) {}

  // Reads an integer in [1, max] that must be present.
  absl::Status RequiredSize(const char* key, int64_t max, int64_t* out) const {
    auto it = root_.find(key);
    if (it == root_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_, ": missing required field '", key, "'"));
    }
    if (!it->is_number_integer() || it->get<int64_t>() <= 0 || it->get<int64_t>() > max) {
      return Invalid(key, absl::StrCat("an integer in [1, ", max, "]"), *it);
    }
    *out = it->get<int64_t>();
    return absl::OkStatus();
  }

  // Reads a non-negative integer, leaving `out` at its default when absent.
  absl::Status OptionalId(const char* key, int64_t* out) const {
    auto it = root_.find(key);
    if (it == root_.end()) return absl::OkStatus();
    if (!it->is_number_integer() || it->get<int64_t>() < 0) {
      return Invalid(key, "a non-negative integer", *it);
    }
    *out = it->get<int64_t>();
    return absl::OkStatus();
  }

  absl::Status OptionalProbability(const char* key, double* out) const {
    auto it = root_.find(key);
    if (it == root_.end()) return absl::OkStatus();
    if (!it->is_number() || it->get<double>() < 0 || it->get<double>() >= 1) {
      return Invalid(key, "a number in [0, 1)", *it);
    }
    *out = it->get<double>();
    return absl::OkStatus();
  }

  absl::Status OptionalBool(const char* key, bool* out) const {
    auto it = root_.find(key);
    if (it == root_.end()) return absl::OkStatus();
    if (!it->is_boolean()) return Invalid(key, "true or false", *it);
    *out = it->get<bool>();
    return absl::OkStatus();
  }

  // A boolean that only `expected` makes sense for in BART; absent is fine.
  absl::Status FixedBool(const char* key, bool expected, const char* why) const {
    bool value = expected;
    TASKMOE_RETURN_IF_ERROR(OptionalBool(key, &value));
    if (value != expected) {
      return absl::InvalidArgumentError(absl::StrCat(source_, ": field '", key, "' is ",
                                                     value ? "true" : "false", ", but ", why));
    }
    return absl::OkStatus();
  }

  absl::Status Invalid(const char* key, absl::string_view expected, const json& value) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": field '", key, "' must be ",
                                                   expected, ", got ", value.dump()));
  }

 private:
  const json& root_;
  const std::string& source_;
};

}  // namespace

absl::StatusOr<BartConfig> ParseBartConfig(const std::string& json_text,
                                           const std::string& source_name) {
  json root = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": not a JSON object"));
  }
  const FieldReader reader(root, source_name);
  BartConfig config;
  for (const absl::Status& s : {
           reader.RequiredSize("vocab_size", kMaxVocabSize, &config.vocab_size),
           reader.RequiredSize("d_model", kMaxModelWidth, &config.d_model),
           reader.RequiredSize("encoder_layers", kMaxLayers, &config.encoder_layers),
           reader.RequiredSize("decoder_layers", kMaxLayers, &config.decoder_layers),
           reader.RequiredSize("encoder_attention_heads", kMaxAttentionHeads,
                               &config.encoder_attention_heads),
           reader.RequiredSize("decoder_attention_heads", kMaxAttentionHeads,
                               &config.decoder_attention_heads),
           reader.RequiredSize("encoder_ffn_dim", kMaxModelWidth, &config.encoder_ffn_dim),
           reader.RequiredSize("decoder_ffn_dim", kMaxModelWidth, &config.decoder_ffn_dim),
           reader.RequiredSize("max_position_embeddings", kMaxPositions,
                               &config.max_position_embeddings),
           reader.OptionalBool("scale_embedding", &config.scale_embedding),
           reader.OptionalProbability("dropout", &config.dropout),
           reader.OptionalProbability("attention_dropout", &config.attention_dropout),
           reader.OptionalProbability("activation_dropout", &config.activation_dropout),
           reader.OptionalId("pad_token_id", &config.pad_token_id),
           reader.OptionalId("bos_token_id", &config.bos_token_id),
           reader.OptionalId("eos_token_id", &config.eos_token_id),
           reader.OptionalId("decoder_start_token_id", &config.decoder_start_token_id),
           reader.FixedBool("normalize_before", false, "only post-LN BART layers are supported"),
           reader.FixedBool("add_final_layer_norm", false,
                            "BART has no LayerNorm after the last layer"),
           reader.FixedBool("normalize_embedding", true, "BART applies layernorm_embedding"),
           reader.FixedBool("tie_word_embeddings", true,
                            "the output projection is tied to model.shared"),
       }) {
    TASKMOE_RETURN_IF_ERROR(s);
  }
  if (auto it = root.find("forced_eos_token_id"); it != root.end()) {
    if (it->is_null()) {
      config.forced_eos_token_id.reset();
    } else {
      int64_t id = 0;
      TASKMOE_RETURN_IF_ERROR(reader.OptionalId("forced_eos_token_id", &id));
      config.forced_eos_token_id = id;
    }
  }
  if (auto it = root.find("activation_function"); it != root.end()) {
    const std::string name = it->is_string() ? it->get<std::string>() : it->dump();
    if (name == "gelu") {
      config.activation_function = Activation::kGelu;
    } else if (name == "gelu_new") {
      config.activation_function = Activation::kGeluNew;
    } else if (name == "relu") {
      config.activation_function = Activation::kRelu;
    } else {
      return reader.Invalid("activation_function", "one of \"gelu\", \"gelu_new\", \"relu\"", *it);
    }
  }
  for (const auto& [key, heads] : {std::make_pair("encoder_attention_heads",
                                                  config.encoder_attention_heads),
                                   std::make_pair("decoder_attention_heads",
                                                  config.decoder_attention_heads)}) {
    if (config.d_model % heads != 0) {
      return absl::InvalidArgumentError(absl::StrCat(source_name, ": d_model ", config.d_model,
                                                     " is not divisible by ", key, " ", heads));
    }
  }
  for (const auto& [key, id] : {std::make_pair("pad_token_id", config.pad_token_id),
                                std::make_pair("bos_token_id", config.bos_token_id),
                                std::make_pair("eos_token_id", config.eos_token_id),
                                std::make_pair("decoder_start_token_id",
                                               config.decoder_start_token_id)}) {
    if (id >= config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(source_name, ": ", key, " ", id,
                                                     " is outside vocab_size ", config.vocab_size));
    }
  }
  TASKMOE_RETURN_IF_ERROR(CheckBartParameterCount(config, source_name));
  return config;
}

double BartParameterCount(const BartConfig& c) {
  const double d = static_cast<double>(c.d_model);
  const double embeddings = (c.vocab_size + 2.0 * (c.max_position_embeddings + 2)) * d;
  // Attention projections (4 d x d, biased), the FFN (2 d x ffn) and LayerNorms, per layer.
  const double encoder_layer = 4 * d * (d + 1) + 2 * d * c.encoder_ffn_dim + 5 * d;
  const double decoder_layer = 8 * d * (d + 1) + 2 * d * c.decoder_ffn_dim + 7 * d;
  return embeddings + c.encoder_layers * encoder_layer + c.decoder_layers * decoder_layer;
}

absl::Status CheckBartParameterCount(const BartConfig& config, const std::string& source) {
  const double parameters = BartParameterCount(config);
  if (parameters <= kMaxParameters) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrFormat(
      "%s: the model would hold %.3g parameters (vocab_size %d, d_model %d, %d + %d layers, ffn "
      "%d, max_position_embeddings %d), more than TaskMoE's limit of %.0e",
      source, parameters, config.vocab_size, config.d_model, config.encoder_layers,
      config.decoder_layers, config.encoder_ffn_dim, config.max_position_embeddings,
      kMaxParameters));
}

absl::StatusOr<BartConfig> LoadBartConfig(const std::string& path) {
  TASKMOE_ASSIGN_OR_RETURN(const std::string text, ReadFileBytes(path));
  return ParseBartConfig(text, path);
}

}  // namespace taskmoe
