#include "moe/model/bart.h"

#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include <glog/logging.h>

#include "moe/model/batched_matmul.h"

namespace taskmoe {
namespace {

thread_local at::Generator dropout_generator;

at::Tensor Hooked(const SublayerHook& hook, Sublayer sublayer, const at::Tensor& output) {
  return hook ? hook(sublayer, output) : output;
}

torch::nn::LayerNorm MakeLayerNorm(int64_t d_model) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model}).eps(1e-5));
}

// Additive bias [batch, 1, 1, source_len]: 0 for tokens, the lowest float for padding (as
// Hugging Face does, so that a fully padded row stays finite). Undefined mask: no padding.
at::Tensor PaddingBias(const at::Tensor& attention_mask, at::ScalarType dtype) {
  if (!attention_mask.defined()) return at::Tensor();
  const at::Tensor is_padding = attention_mask.eq(0).unsqueeze(1).unsqueeze(2);
  return at::zeros(is_padding.sizes(), attention_mask.options().dtype(dtype))
      .masked_fill(is_padding, std::numeric_limits<float>::lowest());
}

// Causal bias [1, 1, target_len, past + target_len] for queries at positions past..past+T-1;
// undefined when a single query may see every key.
at::Tensor CausalBias(int64_t target_len, int64_t past, const at::TensorOptions& options) {
  if (target_len == 1) return at::Tensor();
  const at::Tensor query_pos =
      at::arange(past, past + target_len, options.dtype(at::kLong)).unsqueeze(1);
  const at::Tensor key_pos = at::arange(past + target_len, options.dtype(at::kLong)).unsqueeze(0);
  return at::zeros({target_len, past + target_len}, options)
      .masked_fill(key_pos.gt(query_pos), std::numeric_limits<float>::lowest())
      .view({1, 1, target_len, past + target_len});
}

// Token embeddings (scaled when the config says so) + learned positions (offset 2), then
// layernorm_embedding and dropout: the input of the first layer in both encoder and decoder.
at::Tensor EmbedInputs(const BartConfig& config, torch::nn::Embedding embed_tokens,
                       torch::nn::Embedding embed_positions,
                       torch::nn::LayerNorm layernorm_embedding, const at::Tensor& ids,
                       int64_t past, bool training) {
  at::Tensor tokens = embed_tokens->forward(ids);
  if (config.scale_embedding) tokens = tokens * std::sqrt(static_cast<double>(config.d_model));
  const int64_t length = ids.size(1);
  CHECK_LE(past + length, config.max_position_embeddings)
      << "sequence of " << past + length << " positions exceeds max_position_embeddings";
  const at::Tensor positions = at::arange(past + 2, past + length + 2, ids.options());
  at::Tensor hidden = layernorm_embedding->forward(tokens + embed_positions->forward(positions));
  return Dropout(hidden, config.dropout, training);
}

at::Tensor RouteRow(const at::Tensor& routes, int64_t layer, int64_t layers) {
  if (!routes.defined()) return at::Tensor();
  CHECK_EQ(routes.size(0), layers) << "route weights have " << routes.size(0)
                                   << " layers, the model has " << layers;
  return routes[layer];
}

}  // namespace

at::Tensor Activate(const at::Tensor& x, Activation activation) {
  if (activation == Activation::kGelu) return at::gelu(x);
  if (activation == Activation::kGeluNew) return at::gelu(x, "tanh");
  CHECK(activation == Activation::kRelu) << "unknown activation " << static_cast<int>(activation);
  return at::relu(x);
}

at::Tensor Dropout(const at::Tensor& x, double p, bool training) {
  if (!dropout_generator.defined()) return at::dropout(x, p, training);
  if (!training || p == 0) return x;
  const at::Tensor keep = at::empty_like(x).bernoulli_(1 - p, dropout_generator);
  return x * keep.div_(1 - p);
}

DropoutGeneratorScope::DropoutGeneratorScope(at::Generator generator)
    : previous_(std::move(dropout_generator)) {
  dropout_generator = std::move(generator);
}

DropoutGeneratorScope::~DropoutGeneratorScope() { dropout_generator = std::move(previous_); }

void AttentionCache::Reorder(const at::Tensor& batch_index) {
  if (!key.defined()) return;
  key = key.index_select(0, batch_index);
  value = value.index_select(0, batch_index);
}

BartAttentionImpl::BartAttentionImpl(const BartAttentionOptions& options_) : options(options_) {
  CHECK_EQ(options.embed_dim() % options.num_heads(), 0);
  const int64_t d = options.embed_dim();
  k_proj = register_module("k_proj", torch::nn::Linear(d, d));
  v_proj = register_module("v_proj", torch::nn::Linear(d, d));
  q_proj = register_module("q_proj", torch::nn::Linear(d, d));
  out_proj = register_module("out_proj", torch::nn::Linear(d, d));
}

at::Tensor BartAttentionImpl::SplitHeads(const at::Tensor& x) const {
  return x.view({x.size(0), x.size(1), options.num_heads(), -1}).transpose(1, 2);
}

at::Tensor BartAttentionImpl::Forward(const at::Tensor& hidden_states,
                                      const at::Tensor& key_value_states,
                                      const at::Tensor& attention_bias, AttentionCache* cache) {
  const int64_t batch = hidden_states.size(0);
  const int64_t target_len = hidden_states.size(1);
  const double scaling = std::pow(static_cast<double>(options.embed_dim() / options.num_heads()), -0.5);
  // The scale multiplies the projection including its bias, as in Hugging Face.
  const at::Tensor query = SplitHeads(q_proj->forward(hidden_states) * scaling);
  at::Tensor key;
  at::Tensor value;
  const bool cross = key_value_states.defined();
  if (cross && cache != nullptr && cache->key.defined()) {
    key = cache->key;
    value = cache->value;
  } else {
    const at::Tensor& source = cross ? key_value_states : hidden_states;
    key = SplitHeads(k_proj->forward(source));
    value = SplitHeads(v_proj->forward(source));
    if (!cross && cache != nullptr && cache->key.defined()) {
      key = at::cat({cache->key, key}, 2);
      value = at::cat({cache->value, value}, 2);
    }
    if (cache != nullptr) {
      cache->key = key;
      cache->value = value;
    }
  }
  at::Tensor scores = BatchedMatmul(query, key.transpose(2, 3));
  if (attention_bias.defined()) scores = scores + attention_bias;
  const at::Tensor probs = Dropout(at::softmax(scores, -1), options.dropout(), is_training());
  const at::Tensor context =
      BatchedMatmul(probs, value).transpose(1, 2).reshape({batch, target_len, options.embed_dim()});
  return out_proj->forward(context);
}

BartLayerOptions BartLayerOptions::Encoder(const BartConfig& config) {
  return BartLayerOptions()
      .d_model(config.d_model)
      .attention_heads(config.encoder_attention_heads)
      .ffn_dim(config.encoder_ffn_dim)
      .activation(config.activation_function)
      .dropout(config.dropout)
      .attention_dropout(config.attention_dropout)
      .activation_dropout(config.activation_dropout);
}

BartLayerOptions BartLayerOptions::Decoder(const BartConfig& config) {
  return BartLayerOptions()
      .d_model(config.d_model)
      .attention_heads(config.decoder_attention_heads)
      .ffn_dim(config.decoder_ffn_dim)
      .activation(config.activation_function)
      .dropout(config.dropout)
      .attention_dropout(config.attention_dropout)
      .activation_dropout(config.activation_dropout);
}

BartEncoderLayerImpl::BartEncoderLayerImpl(const BartLayerOptions& options_) : options(options_) {
  self_attn = register_module(
      "self_attn", BartAttention(BartAttentionOptions(options.d_model(), options.attention_heads())
                                     .dropout(options.attention_dropout())));
  self_attn_layer_norm = register_module("self_attn_layer_norm", MakeLayerNorm(options.d_model()));
  fc1 = register_module("fc1", torch::nn::Linear(options.d_model(), options.ffn_dim()));
  fc2 = register_module("fc2", torch::nn::Linear(options.ffn_dim(), options.d_model()));
  final_layer_norm = register_module("final_layer_norm", MakeLayerNorm(options.d_model()));
}

at::Tensor BartEncoderLayerImpl::Forward(const at::Tensor& hidden_states,
                                         const at::Tensor& attention_bias,
                                         const at::Tensor& /*route*/) {
  const bool training = is_training();
  at::Tensor x = self_attn->Forward(hidden_states, at::Tensor(), attention_bias, nullptr);
  x = Hooked(sublayer_hook, Sublayer::kSelfAttention, Dropout(x, options.dropout(), training));
  x = self_attn_layer_norm->forward(hidden_states + x);
  at::Tensor ffn = Dropout(Activate(fc1->forward(x), options.activation()),
                               options.activation_dropout(), training);
  ffn = Hooked(sublayer_hook, Sublayer::kFeedForward,
               Dropout(fc2->forward(ffn), options.dropout(), training));
  return final_layer_norm->forward(x + ffn);
}

void BartDecoderLayerCache::Reorder(const at::Tensor& batch_index) {
  self_attn.Reorder(batch_index);
  encoder_attn.Reorder(batch_index);
}

BartDecoderLayerImpl::BartDecoderLayerImpl(const BartLayerOptions& options_) : options(options_) {
  const auto attention_options = BartAttentionOptions(options.d_model(), options.attention_heads())
                                     .dropout(options.attention_dropout());
  self_attn = register_module("self_attn", BartAttention(attention_options));
  self_attn_layer_norm = register_module("self_attn_layer_norm", MakeLayerNorm(options.d_model()));
  encoder_attn = register_module("encoder_attn", BartAttention(attention_options));
  encoder_attn_layer_norm =
      register_module("encoder_attn_layer_norm", MakeLayerNorm(options.d_model()));
  fc1 = register_module("fc1", torch::nn::Linear(options.d_model(), options.ffn_dim()));
  fc2 = register_module("fc2", torch::nn::Linear(options.ffn_dim(), options.d_model()));
  final_layer_norm = register_module("final_layer_norm", MakeLayerNorm(options.d_model()));
}

std::unique_ptr<DecoderBlockCache> BartDecoderLayerImpl::NewCache() const {
  return std::make_unique<BartDecoderLayerCache>();
}

at::Tensor BartDecoderLayerImpl::Forward(const at::Tensor& hidden_states,
                                         const at::Tensor& self_attention_bias,
                                         const at::Tensor& encoder_hidden_states,
                                         const at::Tensor& cross_attention_bias,
                                         const at::Tensor& /*route*/, DecoderBlockCache* cache) {
  BartDecoderLayerCache* layer_cache = nullptr;
  if (cache != nullptr) {
    layer_cache = dynamic_cast<BartDecoderLayerCache*>(cache);
    CHECK(layer_cache != nullptr) << "decoder layer got a cache it did not create";
  }
  const bool training = is_training();
  at::Tensor x = self_attn->Forward(hidden_states, at::Tensor(), self_attention_bias,
                                    layer_cache ? &layer_cache->self_attn : nullptr);
  x = Hooked(sublayer_hook, Sublayer::kSelfAttention, Dropout(x, options.dropout(), training));
  x = self_attn_layer_norm->forward(hidden_states + x);
  at::Tensor cross = encoder_attn->Forward(x, encoder_hidden_states, cross_attention_bias,
                                           layer_cache ? &layer_cache->encoder_attn : nullptr);
  cross = Hooked(sublayer_hook, Sublayer::kCrossAttention,
                 Dropout(cross, options.dropout(), training));
  x = encoder_attn_layer_norm->forward(x + cross);
  at::Tensor ffn = Dropout(Activate(fc1->forward(x), options.activation()),
                               options.activation_dropout(), training);
  ffn = Hooked(sublayer_hook, Sublayer::kFeedForward,
               Dropout(fc2->forward(ffn), options.dropout(), training));
  return final_layer_norm->forward(x + ffn);
}

void DecoderCache::Reorder(const at::Tensor& batch_index) {
  for (auto& block : blocks) block->Reorder(batch_index);
}

BartEncoderImpl::BartEncoderImpl(const BartConfig& config, torch::nn::Embedding shared,
                                 const EncoderBlockFactory& factory)
    : config_(config), embed_tokens_(std::move(shared)) {
  embed_positions = register_module(
      "embed_positions", torch::nn::Embedding(config.max_position_embeddings + 2, config.d_model));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.encoder_layers; ++i) {
    std::shared_ptr<EncoderBlock> block =
        factory ? factory(config, i)
                : BartEncoderLayer(BartLayerOptions::Encoder(config)).ptr();
    CHECK(block != nullptr) << "encoder block factory returned null for layer " << i;
    layers->push_back(block);
  }
  layernorm_embedding = register_module("layernorm_embedding", MakeLayerNorm(config.d_model));
}

EncoderBlock& BartEncoderImpl::block(int64_t index) const {
  return *layers->ptr<EncoderBlock>(index);
}

at::Tensor BartEncoderImpl::Forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                    const RouteWeights* routes,
                                    std::vector<at::Tensor>* hidden_states) {
  at::Tensor x = EmbedInputs(config_, embed_tokens_, embed_positions, layernorm_embedding,
                             input_ids, /*past=*/0, is_training());
  const at::Tensor bias = PaddingBias(attention_mask, x.scalar_type());
  if (hidden_states != nullptr) hidden_states->push_back(x);
  for (int64_t i = 0; i < config_.encoder_layers; ++i) {
    x = block(i).Forward(x, bias,
                         RouteRow(routes ? routes->encoder : at::Tensor(), i, config_.encoder_layers));
    if (hidden_states != nullptr) hidden_states->push_back(x);
  }
  return x;
}

BartDecoderImpl::BartDecoderImpl(const BartConfig& config, torch::nn::Embedding shared,
                                 const DecoderBlockFactory& factory)
    : config_(config), embed_tokens_(std::move(shared)) {
  embed_positions = register_module(
      "embed_positions", torch::nn::Embedding(config.max_position_embeddings + 2, config.d_model));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.decoder_layers; ++i) {
    std::shared_ptr<DecoderBlock> block =
        factory ? factory(config, i)
                : BartDecoderLayer(BartLayerOptions::Decoder(config)).ptr();
    CHECK(block != nullptr) << "decoder block factory returned null for layer " << i;
    layers->push_back(block);
  }
  layernorm_embedding = register_module("layernorm_embedding", MakeLayerNorm(config.d_model));
}

DecoderBlock& BartDecoderImpl::block(int64_t index) const {
  return *layers->ptr<DecoderBlock>(index);
}

DecoderCache BartDecoderImpl::NewCache() const {
  DecoderCache cache;
  for (int64_t i = 0; i < config_.decoder_layers; ++i) cache.blocks.push_back(block(i).NewCache());
  return cache;
}

at::Tensor BartDecoderImpl::Forward(const at::Tensor& decoder_input_ids,
                                    const at::Tensor& encoder_hidden_states,
                                    const at::Tensor& encoder_attention_mask,
                                    const RouteWeights* routes, DecoderCache* cache,
                                    std::vector<at::Tensor>* hidden_states) {
  const int64_t past = cache != nullptr ? cache->length : 0;
  at::Tensor x = EmbedInputs(config_, embed_tokens_, embed_positions, layernorm_embedding,
                             decoder_input_ids, past, is_training());
  const at::Tensor self_bias = CausalBias(decoder_input_ids.size(1), past, x.options());
  const at::Tensor cross_bias = PaddingBias(encoder_attention_mask, x.scalar_type());
  if (hidden_states != nullptr) hidden_states->push_back(x);
  for (int64_t i = 0; i < config_.decoder_layers; ++i) {
    x = block(i).Forward(x, self_bias, encoder_hidden_states, cross_bias,
                         RouteRow(routes ? routes->decoder : at::Tensor(), i, config_.decoder_layers),
                         cache != nullptr ? cache->blocks[i].get() : nullptr);
    if (hidden_states != nullptr) hidden_states->push_back(x);
  }
  if (cache != nullptr) cache->length += decoder_input_ids.size(1);
  return x;
}

BartModelImpl::BartModelImpl(const BartConfig& config, const BlockFactories& factories) {
  shared = register_module(
      "shared", torch::nn::Embedding(torch::nn::EmbeddingOptions(config.vocab_size, config.d_model)
                                         .padding_idx(config.pad_token_id)));
  encoder = register_module("encoder", BartEncoder(config, shared, factories.encoder));
  decoder = register_module("decoder", BartDecoder(config, shared, factories.decoder));
}

BartForConditionalGenerationImpl::BartForConditionalGenerationImpl(const BartConfig& config,
                                                                   const BlockFactories& factories)
    : config_(config) {
  model = register_module("model", BartModel(config, factories));
  final_logits_bias = register_buffer("final_logits_bias", at::zeros({1, config.vocab_size}));
}

at::Tensor BartForConditionalGenerationImpl::Encode(const at::Tensor& input_ids,
                                                    const at::Tensor& attention_mask,
                                                    const RouteWeights* routes) {
  return model->encoder->Forward(input_ids, attention_mask, routes);
}

at::Tensor BartForConditionalGenerationImpl::LmHead(const at::Tensor& decoder_hidden_states) const {
  return at::matmul(decoder_hidden_states, model->shared->weight.t()) + final_logits_bias;
}

at::Tensor BartForConditionalGenerationImpl::Decode(const at::Tensor& decoder_input_ids,
                                                    const at::Tensor& encoder_hidden_states,
                                                    const at::Tensor& encoder_attention_mask,
                                                    const RouteWeights* routes,
                                                    DecoderCache* cache) {
  return LmHead(model->decoder->Forward(decoder_input_ids, encoder_hidden_states,
                                        encoder_attention_mask, routes, cache));
}

BartOutput BartForConditionalGenerationImpl::Forward(const at::Tensor& input_ids,
                                                     const at::Tensor& attention_mask,
                                                     const at::Tensor& decoder_input_ids,
                                                     const RouteWeights* routes,
                                                     bool output_hidden_states) {
  BartOutput out;
  out.encoder_last_hidden_state = model->encoder->Forward(
      input_ids, attention_mask, routes,
      output_hidden_states ? &out.encoder_hidden_states : nullptr);
  out.decoder_last_hidden_state = model->decoder->Forward(
      decoder_input_ids, out.encoder_last_hidden_state, attention_mask, routes, nullptr,
      output_hidden_states ? &out.decoder_hidden_states : nullptr);
  out.logits = LmHead(out.decoder_last_hidden_state);
  return out;
}

}  // namespace taskmoe
