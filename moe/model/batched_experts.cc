#include "moe/model/batched_experts.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include <glog/logging.h>
#include <torch/csrc/autograd/custom_function.h>

#include "moe/model/batched_matmul.h"

namespace taskmoe {
namespace {

// x [rows, in] through the projections whose weights and biases are stacked as the groups that
// start with `weight` and `bias` ([E, k, out, in], [E, k, out]): one GEMM over the concatenated
// weights. Returns [rows, E * k * out], expert-major.
at::Tensor FusedProjection(const ExpertStacks& stacks, const std::string& weight,
                           const std::string& bias, const at::Tensor& x) {
  const at::Tensor w = stacks.Stack(weight);
  return at::addmm(stacks.Stack(bias).reshape({-1}), x, w.reshape({-1, w.size(-1)}).t());
}

// y[e] = x[e] W[e]^T + b[e] for x [E, rows, in], W [E, out, in], b [E, 1, out], with a backward
// pass that writes the weight gradient in the weight's layout: autograd's backward of a batched
// product with W^T would hand the weights a transposed gradient, whose accumulation into the
// parameters' gradients is a slow strided pass.
class BatchedLinear : public torch::autograd::Function<BatchedLinear> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& weight, const at::Tensor& bias) {
    ctx->save_for_backward({x, weight});
    return at::baddbmm(bias, x, weight.transpose(1, 2));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& grad = grads[0];
    torch::autograd::variable_list input_grads(3);
    if (ctx->needs_input_grad(0)) input_grads[0] = at::bmm(grad, saved[1]);
    if (ctx->needs_input_grad(1)) input_grads[1] = at::bmm(grad.transpose(1, 2), saved[0]);
    if (ctx->needs_input_grad(2)) input_grads[2] = grad.sum(1, /*keepdim=*/true);
    return input_grads;
  }
};

// x [E, rows, in] through expert e's Linear (the stacks of one-name groups `weight`, `bias`) on
// slice e.
at::Tensor PerExpertLinear(const ExpertStacks& stacks, const std::string& weight,
                           const std::string& bias, const at::Tensor& x) {
  return BatchedLinear::apply(x, stacks.Stack(weight).squeeze(1), stacks.Stack(bias));
}

// x [E, rows, D] through expert e's LayerNorm `name` on slice e: one layer_norm per expert, so
// that autograd keeps what a LayerNorm keeps (its input and statistics); a shared normalisation
// followed by a batched affine would keep the normalised values as well.
at::Tensor PerExpertLayerNorm(const ExpertStacks& stacks, const std::string& name,
                              const torch::nn::LayerNorm& first, const at::Tensor& x) {
  const at::Tensor weight = stacks.Stack(name + ".weight");  // [E, 1, D]
  const at::Tensor bias = stacks.Stack(name + ".bias");
  std::vector<at::Tensor> outputs;
  for (int64_t e = 0; e < x.size(0); ++e) {
    outputs.push_back(at::layer_norm(x[e], first->options.normalized_shape(), weight[e][0],
                                     bias[e][0], first->options.eps()));
  }
  return at::stack(outputs);
}

// One of `parts` equal slices of a fused projection [B * T, E * parts * D], as [E, B, T, D].
at::Tensor ProjectionPart(const at::Tensor& fused, int64_t batch, int64_t experts, int64_t parts,
                          int64_t part) {
  return fused.view({batch, -1, experts, parts, fused.size(-1) / (experts * parts)})
      .select(3, part)
      .permute({2, 0, 1, 3});
}

// Scaled dot-product attention of every expert: query [E, B, T, D] (scaled), key and value
// [E, B, S, D], bias broadcastable to [B, H, T, S]. Returns the context [E, B * T, D].
at::Tensor Attend(const at::Tensor& query, const at::Tensor& key, const at::Tensor& value,
                  const at::Tensor& bias, const BartAttentionOptions& options, bool training) {
  const int64_t experts = query.size(0);
  const int64_t batch = query.size(1);
  const int64_t target_len = query.size(2);
  const int64_t d = query.size(3);
  const auto split_heads = [&](const at::Tensor& x) {
    return x.reshape({experts, batch, x.size(2), options.num_heads(), -1}).transpose(2, 3);
  };
  at::Tensor scores = BatchedMatmul(split_heads(query), split_heads(key).transpose(3, 4));
  if (bias.defined()) scores = scores + bias;
  const at::Tensor probs = Dropout(at::softmax(scores, -1), options.dropout(), training);
  return BatchedMatmul(probs, split_heads(value))
      .transpose(2, 3)
      .reshape({experts, batch * target_len, d});
}

double QueryScaling(const BartAttentionOptions& options) {
  return std::pow(static_cast<double>(options.embed_dim() / options.num_heads()), -0.5);
}

// Self-attention sublayer with its residual and LayerNorm: x [B, T, D] -> [E, B * T, D].
template <typename Layer>
at::Tensor SelfAttentionBlock(const Layer& first, int64_t experts, const ExpertStacks& stacks,
                              const at::Tensor& x, const at::Tensor& bias, bool training) {
  const int64_t batch = x.size(0);
  const int64_t d = x.size(2);
  const at::Tensor qkv = FusedProjection(stacks, "self_attn.q_proj.weight",
                                         "self_attn.q_proj.bias", x.reshape({-1, d}));
  // As Hugging Face, the scale multiplies the query projection including its bias.
  const at::Tensor query =
      ProjectionPart(qkv, batch, experts, 3, 0) * QueryScaling(first.self_attn->options);
  const at::Tensor context =
      Attend(query, ProjectionPart(qkv, batch, experts, 3, 1),
             ProjectionPart(qkv, batch, experts, 3, 2), bias, first.self_attn->options, training);
  const at::Tensor attended = Dropout(
      PerExpertLinear(stacks, "self_attn.out_proj.weight", "self_attn.out_proj.bias", context),
      first.options.dropout(), training);
  return PerExpertLayerNorm(stacks, "self_attn_layer_norm", first.self_attn_layer_norm,
                            x.reshape({1, -1, d}) + attended);
}

// Feed-forward sublayer with its residual and LayerNorm on [E, rows, D].
template <typename Layer>
at::Tensor FeedForwardBlock(const Layer& first, const ExpertStacks& stacks, const at::Tensor& x,
                            bool training) {
  const BartLayerOptions& options = first.options;
  at::Tensor ffn = PerExpertLinear(stacks, "fc1.weight", "fc1.bias", x);
  ffn = Dropout(Activate(ffn, options.activation()), options.activation_dropout(), training);
  ffn = Dropout(PerExpertLinear(stacks, "fc2.weight", "fc2.bias", ffn), options.dropout(),
                training);
  return PerExpertLayerNorm(stacks, "final_layer_norm", first.final_layer_norm, x + ffn);
}

template <typename Layer>
bool CanBatch(const std::vector<Layer*>& experts) {
  if (experts.size() < 2) return false;
  for (const Layer* expert : experts) {
    if (expert->sublayer_hook) return false;
  }
  return true;
}

// The groups of the parts both layer kinds share: self-attention and the feed-forward block.
std::vector<std::vector<std::string>> CommonStackGroups() {
  std::vector<std::vector<std::string>> groups = {
      {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"},
      {"self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"}};
  for (const char* name : {"self_attn.out_proj", "self_attn_layer_norm", "fc1", "fc2",
                           "final_layer_norm"}) {
    groups.push_back({std::string(name) + ".weight"});
    groups.push_back({std::string(name) + ".bias"});
  }
  return groups;
}

}  // namespace

std::vector<std::vector<std::string>> EncoderStackGroups() { return CommonStackGroups(); }

std::vector<std::vector<std::string>> DecoderStackGroups() {
  std::vector<std::vector<std::string>> groups = CommonStackGroups();
  groups.push_back({"encoder_attn.k_proj.weight", "encoder_attn.v_proj.weight"});
  groups.push_back({"encoder_attn.k_proj.bias", "encoder_attn.v_proj.bias"});
  for (const char* name : {"encoder_attn.q_proj", "encoder_attn.out_proj",
                           "encoder_attn_layer_norm"}) {
    groups.push_back({std::string(name) + ".weight"});
    groups.push_back({std::string(name) + ".bias"});
  }
  return groups;
}

bool CanBatchExperts(const std::vector<BartEncoderLayerImpl*>& experts) {
  return CanBatch(experts);
}

bool CanBatchExperts(const std::vector<BartDecoderLayerImpl*>& experts) {
  return CanBatch(experts);
}

at::Tensor RunEncoderExpertsBatched(const std::vector<BartEncoderLayerImpl*>& experts,
                                    const ExpertStacks& stacks, const at::Tensor& hidden_states,
                                    const at::Tensor& attention_bias, bool training) {
  CHECK(CanBatchExperts(experts));
  const BartEncoderLayerImpl& first = *experts.front();
  const int64_t num_experts = static_cast<int64_t>(experts.size());
  const at::Tensor x =
      SelfAttentionBlock(first, num_experts, stacks, hidden_states, attention_bias, training);
  return FeedForwardBlock(first, stacks, x, training)
      .view({num_experts, hidden_states.size(0), hidden_states.size(1), hidden_states.size(2)});
}

at::Tensor RunDecoderExpertsBatched(const std::vector<BartDecoderLayerImpl*>& experts,
                                    const ExpertStacks& stacks, const at::Tensor& hidden_states,
                                    const at::Tensor& self_attention_bias,
                                    const at::Tensor& encoder_hidden_states,
                                    const at::Tensor& cross_attention_bias, bool training) {
  CHECK(CanBatchExperts(experts));
  const BartDecoderLayerImpl& first = *experts.front();
  const int64_t num_experts = static_cast<int64_t>(experts.size());
  const int64_t batch = hidden_states.size(0);
  const int64_t d = hidden_states.size(2);
  const at::Tensor x = SelfAttentionBlock(first, num_experts, stacks, hidden_states,
                                          self_attention_bias, training);
  // Cross-attention: queries per expert, keys and values of all experts in one GEMM over the
  // shared encoder states.
  const at::Tensor query =
      PerExpertLinear(stacks, "encoder_attn.q_proj.weight", "encoder_attn.q_proj.bias", x)
          .view({num_experts, batch, -1, d}) *
      QueryScaling(first.encoder_attn->options);
  const at::Tensor kv = FusedProjection(stacks, "encoder_attn.k_proj.weight",
                                        "encoder_attn.k_proj.bias",
                                        encoder_hidden_states.reshape({-1, d}));
  const at::Tensor context = Attend(query, ProjectionPart(kv, batch, num_experts, 2, 0),
                                    ProjectionPart(kv, batch, num_experts, 2, 1),
                                    cross_attention_bias, first.encoder_attn->options, training);
  const at::Tensor attended =
      Dropout(PerExpertLinear(stacks, "encoder_attn.out_proj.weight",
                              "encoder_attn.out_proj.bias", context),
              first.options.dropout(), training);
  const at::Tensor h = PerExpertLayerNorm(stacks, "encoder_attn_layer_norm",
                                          first.encoder_attn_layer_norm, x + attended);
  return FeedForwardBlock(first, stacks, h, training).view({num_experts, batch, -1, d});
}

at::Tensor MixExpertOutputs(const at::Tensor& outputs, const at::Tensor& route) {
  const at::Tensor weights =
      route.t().to(outputs.scalar_type()).reshape({outputs.size(0), outputs.size(1), 1, 1});
  return (outputs * weights).sum(0);
}

}  // namespace taskmoe
