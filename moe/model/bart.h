#ifndef TASKMOE_MOE_MODEL_BART_H_
#define TASKMOE_MOE_MODEL_BART_H_

// BART (Hugging Face BartForConditionalGeneration math) in the LibTorch C++ frontend. Module and
// parameter names follow Hugging Face, so named_parameters() yields e.g.
// "model.encoder.layers.0.self_attn.k_proj.weight" and "final_logits_bias".
//
// Extension point for mixture-of-experts: the encoder and decoder hold their layers in a
// ModuleList `layers` of EncoderBlock / DecoderBlock, built by a factory (dense BART layers by
// default). Each block receives its row of the RouteWeights ([batch, experts], undefined for a
// dense model) and, in the decoder, a cache object it created itself, so an MoE block can keep
// one key/value cache per expert.

#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "moe/formats/bart_config.h"
#include "moe/model/route_weights.h"

namespace taskmoe {

// Dropout (as at::dropout) drawing its mask from the generator of the calling thread's
// DropoutGeneratorScope, or from LibTorch's default generator outside one. Threads that run
// parts of one forward pass concurrently each take a seeded generator of their own, so the
// masks do not depend on which thread reaches the shared default generator first.
at::Tensor Dropout(const at::Tensor& x, double p, bool training);

// Makes Dropout on this thread draw from `generator` (a CPU generator) while it lives.
class DropoutGeneratorScope {
 public:
  explicit DropoutGeneratorScope(at::Generator generator);
  ~DropoutGeneratorScope();
  DropoutGeneratorScope(const DropoutGeneratorScope&) = delete;
  DropoutGeneratorScope& operator=(const DropoutGeneratorScope&) = delete;

 private:
  at::Generator previous_;
};

// Keys and values of one attention layer for the positions seen so far, [batch, heads, length,
// head_dim]. Self-attention appends each decoding step; cross-attention fills it once from the
// encoder states and reuses it.
struct AttentionCache {
  at::Tensor key;
  at::Tensor value;

  // Keeps rows `batch_index` (int64 [new_batch]) of the cache, e.g. the surviving beams.
  void Reorder(const at::Tensor& batch_index);
};

struct BartAttentionOptions {
  BartAttentionOptions(int64_t embed_dim, int64_t num_heads)
      : embed_dim_(embed_dim), num_heads_(num_heads) {}
  TORCH_ARG(int64_t, embed_dim);
  TORCH_ARG(int64_t, num_heads);
  TORCH_ARG(double, dropout) = 0.0;  // on the attention probabilities, training only
};

// Multi-head attention with q/k/v/out projections (BartAttention).
class BartAttentionImpl : public torch::nn::Module {
 public:
  explicit BartAttentionImpl(const BartAttentionOptions& options);

  // hidden_states: [batch, target_len, embed_dim]. key_value_states: undefined for
  // self-attention, the encoder states [batch, source_len, embed_dim] for cross-attention (not
  // read once `cache` holds them). attention_bias: additive, broadcastable to
  // [batch, heads, target_len, key_len], or undefined. cache: nullptr or this layer's cache.
  at::Tensor Forward(const at::Tensor& hidden_states, const at::Tensor& key_value_states,
                     const at::Tensor& attention_bias, AttentionCache* cache);

  BartAttentionOptions options;
  torch::nn::Linear k_proj{nullptr};
  torch::nn::Linear v_proj{nullptr};
  torch::nn::Linear q_proj{nullptr};
  torch::nn::Linear out_proj{nullptr};

 private:
  at::Tensor SplitHeads(const at::Tensor& x) const;  // [B, T, D] -> [B, H, T, D/H]
};
TORCH_MODULE(BartAttention);

// The activation function of a config (gelu, gelu_new or relu) applied to `x`.
at::Tensor Activate(const at::Tensor& x, Activation activation);

// The sublayers of a BART layer whose outputs a SublayerHook sees.
enum class Sublayer { kSelfAttention, kCrossAttention, kFeedForward };

// Transforms a sublayer's output after its dropout, before the residual sum and layer norm: where
// the original's Fisher task embeddings put bottleneck adapters. Empty: the output unchanged.
using SublayerHook = std::function<at::Tensor(Sublayer sublayer, const at::Tensor& output)>;

// Sizes and dropouts of one encoder or decoder layer.
struct BartLayerOptions {
  static BartLayerOptions Encoder(const BartConfig& config);
  static BartLayerOptions Decoder(const BartConfig& config);
  TORCH_ARG(int64_t, d_model) = 0;
  TORCH_ARG(int64_t, attention_heads) = 0;
  TORCH_ARG(int64_t, ffn_dim) = 0;
  TORCH_ARG(Activation, activation) = Activation::kGelu;
  TORCH_ARG(double, dropout) = 0.0;
  TORCH_ARG(double, attention_dropout) = 0.0;
  TORCH_ARG(double, activation_dropout) = 0.0;
};

// One encoder layer position. `route` is this layer's expert weights [batch, experts], undefined
// for a dense model. attention_bias: [batch, 1, 1, source_len] additive padding bias.
class EncoderBlock : public torch::nn::Module {
 public:
  virtual at::Tensor Forward(const at::Tensor& hidden_states, const at::Tensor& attention_bias,
                             const at::Tensor& route) = 0;
};

// Whatever a decoder block keeps between decoding steps.
class DecoderBlockCache {
 public:
  virtual ~DecoderBlockCache() = default;
  // Keeps rows `batch_index` (int64 [new_batch]), e.g. the beams that survive a step.
  virtual void Reorder(const at::Tensor& batch_index) = 0;
};

// One decoder layer position; see EncoderBlock for `route`. self_attention_bias: causal bias
// [1, 1, target_len, key_len] or undefined (a single step attends to everything before it);
// cross_attention_bias: [batch, 1, 1, source_len]. cache: nullptr for a full pass, or an object
// from this block's NewCache() carried across steps.
class DecoderBlock : public torch::nn::Module {
 public:
  virtual at::Tensor Forward(const at::Tensor& hidden_states, const at::Tensor& self_attention_bias,
                             const at::Tensor& encoder_hidden_states,
                             const at::Tensor& cross_attention_bias, const at::Tensor& route,
                             DecoderBlockCache* cache) = 0;
  virtual std::unique_ptr<DecoderBlockCache> NewCache() const = 0;
};

// A post-LN BART encoder layer (BartEncoderLayer); ignores `route`.
class BartEncoderLayerImpl : public EncoderBlock {
 public:
  explicit BartEncoderLayerImpl(const BartLayerOptions& options);
  at::Tensor Forward(const at::Tensor& hidden_states, const at::Tensor& attention_bias,
                     const at::Tensor& route) override;

  BartLayerOptions options;
  BartAttention self_attn{nullptr};
  torch::nn::LayerNorm self_attn_layer_norm{nullptr};
  torch::nn::Linear fc1{nullptr};
  torch::nn::Linear fc2{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};
  SublayerHook sublayer_hook;  // kSelfAttention, kFeedForward; empty by default
};
TORCH_MODULE(BartEncoderLayer);

// The cache of a dense decoder layer.
struct BartDecoderLayerCache : DecoderBlockCache {
  AttentionCache self_attn;
  AttentionCache encoder_attn;
  void Reorder(const at::Tensor& batch_index) override;
};

// A post-LN BART decoder layer (BartDecoderLayer); ignores `route`.
class BartDecoderLayerImpl : public DecoderBlock {
 public:
  explicit BartDecoderLayerImpl(const BartLayerOptions& options);
  at::Tensor Forward(const at::Tensor& hidden_states, const at::Tensor& self_attention_bias,
                     const at::Tensor& encoder_hidden_states, const at::Tensor& cross_attention_bias,
                     const at::Tensor& route, DecoderBlockCache* cache) override;
  std::unique_ptr<DecoderBlockCache> NewCache() const override;

  BartLayerOptions options;
  BartAttention self_attn{nullptr};
  torch::nn::LayerNorm self_attn_layer_norm{nullptr};
  BartAttention encoder_attn{nullptr};
  torch::nn::LayerNorm encoder_attn_layer_norm{nullptr};
  torch::nn::Linear fc1{nullptr};
  torch::nn::Linear fc2{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};
  SublayerHook sublayer_hook;  // all three sublayers; empty by default
};
TORCH_MODULE(BartDecoderLayer);

// Builds the block at `layer_index`; an MoE model supplies its own.
using EncoderBlockFactory =
    std::function<std::shared_ptr<EncoderBlock>(const BartConfig& config, int64_t layer_index)>;
using DecoderBlockFactory =
    std::function<std::shared_ptr<DecoderBlock>(const BartConfig& config, int64_t layer_index)>;

struct BlockFactories {
  EncoderBlockFactory encoder;  // empty: dense BartEncoderLayer
  DecoderBlockFactory decoder;  // empty: dense BartDecoderLayer
};

// Decoding state of the whole decoder: one cache per block plus the number of positions done.
struct DecoderCache {
  std::vector<std::unique_ptr<DecoderBlockCache>> blocks;
  int64_t length = 0;
  void Reorder(const at::Tensor& batch_index);
};

class BartEncoderImpl : public torch::nn::Module {
 public:
  // `shared` is the token embedding owned by the model; it is used but not registered here, so
  // the tied weight appears once, as "model.shared.weight".
  BartEncoderImpl(const BartConfig& config, torch::nn::Embedding shared,
                  const EncoderBlockFactory& factory);

  // input_ids: int64 [batch, source_len]; attention_mask: [batch, source_len], nonzero for
  // tokens (undefined: no padding). routes: nullptr for a dense model. If `hidden_states` is
  // given it receives the embedding output and every layer's output (Hugging Face
  // output_hidden_states). Returns [batch, source_len, d_model].
  at::Tensor Forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                     const RouteWeights* routes, std::vector<at::Tensor>* hidden_states = nullptr);

  EncoderBlock& block(int64_t index) const;

  torch::nn::Embedding embed_positions{nullptr};
  torch::nn::LayerNorm layernorm_embedding{nullptr};
  torch::nn::ModuleList layers{nullptr};

 private:
  BartConfig config_;
  torch::nn::Embedding embed_tokens_;
};
TORCH_MODULE(BartEncoder);

class BartDecoderImpl : public torch::nn::Module {
 public:
  BartDecoderImpl(const BartConfig& config, torch::nn::Embedding shared,
                  const DecoderBlockFactory& factory);

  // decoder_input_ids: int64 [batch, target_len], the positions after `cache->length`
  // (all positions when cache is nullptr). encoder_attention_mask as in BartEncoder. Self-
  // attention is causal only: padded decoder inputs are attended to, as in Hugging Face without
  // a decoder_attention_mask. Returns [batch, target_len, d_model].
  at::Tensor Forward(const at::Tensor& decoder_input_ids, const at::Tensor& encoder_hidden_states,
                     const at::Tensor& encoder_attention_mask, const RouteWeights* routes,
                     DecoderCache* cache, std::vector<at::Tensor>* hidden_states = nullptr);

  // An empty cache with one entry per block.
  DecoderCache NewCache() const;

  DecoderBlock& block(int64_t index) const;

  torch::nn::Embedding embed_positions{nullptr};
  torch::nn::LayerNorm layernorm_embedding{nullptr};
  torch::nn::ModuleList layers{nullptr};

 private:
  BartConfig config_;
  torch::nn::Embedding embed_tokens_;
};
TORCH_MODULE(BartDecoder);

// The encoder-decoder without the LM head (Hugging Face BartModel).
class BartModelImpl : public torch::nn::Module {
 public:
  BartModelImpl(const BartConfig& config, const BlockFactories& factories);

  torch::nn::Embedding shared{nullptr};
  BartEncoder encoder{nullptr};
  BartDecoder decoder{nullptr};
};
TORCH_MODULE(BartModel);

struct BartOutput {
  at::Tensor logits;                     // [batch, target_len, vocab]
  at::Tensor encoder_last_hidden_state;  // [batch, source_len, d_model]
  at::Tensor decoder_last_hidden_state;  // [batch, target_len, d_model]
  // Filled only when requested: embedding output, then each layer's output.
  std::vector<at::Tensor> encoder_hidden_states;
  std::vector<at::Tensor> decoder_hidden_states;
};

// BART with the output projection tied to model.shared and the `final_logits_bias` buffer.
class BartForConditionalGenerationImpl : public torch::nn::Module {
 public:
  explicit BartForConditionalGenerationImpl(const BartConfig& config,
                                            const BlockFactories& factories = {});

  // Teacher-forced pass. routes: nullptr for a dense model.
  BartOutput Forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                     const at::Tensor& decoder_input_ids, const RouteWeights* routes = nullptr,
                     bool output_hidden_states = false);

  at::Tensor Encode(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                    const RouteWeights* routes = nullptr);

  // Logits [batch, target_len, vocab] of `decoder_input_ids` (the positions after
  // cache->length; all positions when cache is nullptr).
  at::Tensor Decode(const at::Tensor& decoder_input_ids, const at::Tensor& encoder_hidden_states,
                    const at::Tensor& encoder_attention_mask, const RouteWeights* routes,
                    DecoderCache* cache);

  // hidden [.., d_model] -> hidden @ shared.weight^T + final_logits_bias.
  at::Tensor LmHead(const at::Tensor& decoder_hidden_states) const;

  const BartConfig& config() const { return config_; }

  BartModel model{nullptr};
  at::Tensor final_logits_bias;  // buffer [1, vocab]

 private:
  BartConfig config_;
};
TORCH_MODULE(BartForConditionalGeneration);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_MODEL_BART_H_
