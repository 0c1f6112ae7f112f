#ifndef TASKMOE_TESTS_MOE_FIXTURE_H_
#define TASKMOE_TESTS_MOE_FIXTURE_H_

// Small MoE configurations, random batches and routes, and the plain definition of an MoE layer,
// for tests of the MoE model.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/function.h>

#include <limits>
#include <string>

#include "moe/formats/bart_config.h"
#include "moe/model/autograd_graph.h"
#include "moe/model/moe_layers.h"

namespace taskmoe::testing {

inline BartConfig TinyConfig() {
  BartConfig config;
  config.vocab_size = 40;
  config.d_model = 16;
  config.encoder_layers = 3;
  config.decoder_layers = 2;
  config.encoder_attention_heads = 2;
  config.decoder_attention_heads = 4;
  config.encoder_ffn_dim = 24;
  config.decoder_ffn_dim = 20;
  config.max_position_embeddings = 32;
  config.dropout = 0.0;
  return config;
}

inline double MaxAbsDiff(const at::Tensor& a, const at::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// The definition: every expert on the whole batch, then sum_e w[b, e] * out_e[b].
inline at::Tensor PlainEncoderMix(MoeEncoderLayerImpl& layer, const at::Tensor& x,
                                  const at::Tensor& bias, const at::Tensor& route) {
  at::Tensor sum = at::zeros_like(x);
  for (int64_t e = 0; e < layer.num_experts(); ++e) {
    sum = sum + layer.expert(e).Forward(x, bias, at::Tensor()) * route.select(1, e).view({-1, 1, 1});
  }
  return sum;
}

inline at::Tensor PlainDecoderMix(MoeDecoderLayerImpl& layer, const at::Tensor& y,
                                  const at::Tensor& self_bias, const at::Tensor& memory,
                                  const at::Tensor& cross_bias, const at::Tensor& route) {
  at::Tensor sum = at::zeros_like(y);
  for (int64_t e = 0; e < layer.num_experts(); ++e) {
    sum = sum + layer.expert(e).Forward(y, self_bias, memory, cross_bias, at::Tensor(), nullptr) *
                    route.select(1, e).view({-1, 1, 1});
  }
  return sum;
}

// Token ids of a model batch.
struct Batch {
  at::Tensor input_ids;
  at::Tensor attention_mask;
  at::Tensor decoder_input_ids;
};

// Random tokens with some right padding in the source.
inline Batch RandomBatch(const BartConfig& config, int64_t batch, int64_t source_len,
                         int64_t target_len) {
  Batch b;
  b.input_ids = at::randint(3, config.vocab_size, {batch, source_len}, at::kLong);
  b.attention_mask = at::ones({batch, source_len}, at::kLong);
  for (int64_t i = 1; i < batch; ++i) {
    const int64_t pad_from = source_len - i % (source_len / 2);
    b.attention_mask[i].slice(0, pad_from).fill_(0);
    b.input_ids[i].slice(0, pad_from).fill_(config.pad_token_id);
  }
  b.decoder_input_ids = at::randint(3, config.vocab_size, {batch, target_len}, at::kLong);
  return b;
}

// Each (layer, example) one-hot on a random expert.
inline at::Tensor RandomHardRoutes(int64_t layers, int64_t batch, int64_t experts) {
  return at::one_hot(at::randint(0, experts, {layers, batch}, at::kLong), experts).to(at::kFloat);
}

inline at::Tensor PaddingBias(int64_t batch, int64_t length) {
  at::Tensor bias = at::zeros({batch, 1, 1, length});
  for (int64_t b = 1; b < batch; ++b) {
    bias[b].slice(2, length - b).fill_(std::numeric_limits<float>::lowest());
  }
  return bias;
}

inline at::Tensor CausalBias(int64_t length) {
  return at::full({length, length}, std::numeric_limits<float>::lowest()).triu(1).view(
      {1, 1, length, length});
}

// Sets LibTorch's intra-op thread count for a scope and restores it after, also when an
// assertion returns from the test early.
class IntraOpThreads {
 public:
  explicit IntraOpThreads(int threads) : previous_(at::get_num_threads()) {
    at::set_num_threads(threads);
  }
  ~IntraOpThreads() { at::set_num_threads(previous_); }
  IntraOpThreads(const IntraOpThreads&) = delete;
  IntraOpThreads& operator=(const IntraOpThreads&) = delete;

 private:
  int previous_;
};

// Whether `output`'s autograd graph holds a ConcurrentExperts node (moe/model/expert_jobs.cc):
// the layer's experts were handed to concurrent workers, forward and backward. (A test of
// concurrent experts that never ran them concurrently, e.g. with one OpenMP thread, proves
// nothing; which worker takes which job depends on timing, so the graph is what is checked.)
inline bool UsedConcurrentExperts(const at::Tensor& output) {
  bool found = false;
  VisitAutogradGraph(output, [&](torch::autograd::Node& node) {
    found = found || node.name().find("ConcurrentExperts") != std::string::npos;
    return !found;
  });
  return found;
}

}  // namespace taskmoe::testing

#endif  // TASKMOE_TESTS_MOE_FIXTURE_H_
