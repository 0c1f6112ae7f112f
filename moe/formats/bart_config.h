#ifndef TASKMOE_MOE_FORMATS_BART_CONFIG_H_
#define TASKMOE_MOE_FORMATS_BART_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace taskmoe {

// The feed-forward nonlinearity, as Hugging Face names it in `activation_function`.
enum class Activation {
  kGelu,     // "gelu": exact erf GELU (BART's)
  kGeluNew,  // "gelu_new": tanh approximation
  kRelu,     // "relu"
};

// Every field of a Hugging Face BART config.json that changes the model's math or decoding.
struct BartConfig {
  int64_t vocab_size = 0;
  int64_t d_model = 0;
  int64_t encoder_layers = 0;
  int64_t decoder_layers = 0;
  int64_t encoder_attention_heads = 0;
  int64_t decoder_attention_heads = 0;
  int64_t encoder_ffn_dim = 0;
  int64_t decoder_ffn_dim = 0;
  // Positions 0..max_position_embeddings-1; the tables hold 2 more rows (BART's offset).
  int64_t max_position_embeddings = 0;
  bool scale_embedding = false;  // multiply token embeddings by sqrt(d_model)
  Activation activation_function = Activation::kGelu;
  double dropout = 0.1;
  double attention_dropout = 0.0;
  double activation_dropout = 0.0;
  int64_t pad_token_id = 1;
  int64_t bos_token_id = 0;
  int64_t eos_token_id = 2;
  int64_t decoder_start_token_id = 2;
  std::optional<int64_t> forced_eos_token_id = 2;  // null in config.json: none
};

// Upper bounds on the sizes of a config: far above any published BART (bart-large: vocab 50265,
// d_model 1024, 12 + 12 layers, 16 heads, ffn 4096, 1024 positions), yet small enough that a
// corrupt or hostile config.json cannot make TaskMoE allocate until the machine runs out of
// memory.
inline constexpr int64_t kMaxVocabSize = 1 << 20;
inline constexpr int64_t kMaxModelWidth = 1 << 16;  // d_model and ffn_dim
inline constexpr int64_t kMaxLayers = 256;          // per stack
inline constexpr int64_t kMaxAttentionHeads = 1024;
inline constexpr int64_t kMaxPositions = 1 << 16;
inline constexpr double kMaxParameters = 1e10;  // 40 GB of float32

// The parameters of the dense model a config describes (embeddings, layers, LayerNorms).
double BartParameterCount(const BartConfig& config);

// An error, naming `source`, when the config's model would hold more than kMaxParameters.
absl::Status CheckBartParameterCount(const BartConfig& config, const std::string& source);

// Parses config.json text. The sizes (vocab_size, d_model, encoder_layers, decoder_layers,
// encoder/decoder_attention_heads, encoder/decoder_ffn_dim, max_position_embeddings) are
// required, each within the bounds above; other fields default as in Hugging Face's BartConfig,
// and the whole model must hold at most kMaxParameters. Values BART cannot express
// here (pre-LN `normalize_before`, `add_final_layer_norm`, untied embeddings, heads that do not
// divide d_model, an unknown activation) are errors. `source_name` is named in every error.
absl::StatusOr<BartConfig> ParseBartConfig(const std::string& json_text,
                                           const std::string& source_name);

// Reads and parses the config.json at `path`.
absl::StatusOr<BartConfig> LoadBartConfig(const std::string& path);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_FORMATS_BART_CONFIG_H_
