#ifndef TASKMOE_MOE_MODEL_BATCHED_EXPERTS_H_
#define TASKMOE_MOE_MODEL_BATCHED_EXPERTS_H_

// A layer's experts as batched work, for soft routes (every expert runs on every example) without
// a decoding cache. Every expert of a layer reads the same input, so their first projections are
// one GEMM over the experts' concatenated weights: q/k/v of self-attention from the layer input,
// k/v of cross-attention from the shared encoder states. The rest runs per expert as batched
// matrix products over an expert dimension ([E, rows, features]), and the elementwise work
// (softmax, GELU, residual, LayerNorm) runs once over all experts instead of E times. The
// experts' weights come from ExpertStacks (moe/model/expert_stacks.h) built with the groups below,
// so no pass copies them. The result equals the experts run one by one
// (tests/batched_experts_test.cc), with dropout masks drawn differently.

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "moe/model/bart.h"
#include "moe/model/expert_stacks.h"

namespace taskmoe {

// Whether RunEncoderExpertsBatched applies: more than one expert, none with a sublayer hook.
bool CanBatchExperts(const std::vector<BartEncoderLayerImpl*>& experts);
bool CanBatchExperts(const std::vector<BartDecoderLayerImpl*>& experts);

// The parameter groups to stack (ExpertStacks) for encoder and decoder layers.
std::vector<std::vector<std::string>> EncoderStackGroups();
std::vector<std::vector<std::string>> DecoderStackGroups();

// Every expert's output for every example, [experts, batch, length, d_model]; the arguments as
// BartEncoderLayerImpl::Forward. `experts` give the layers' options, `stacks` (prepared, of
// EncoderStackGroups) their weights. `training` switches dropout on.
at::Tensor RunEncoderExpertsBatched(const std::vector<BartEncoderLayerImpl*>& experts,
                                    const ExpertStacks& stacks, const at::Tensor& hidden_states,
                                    const at::Tensor& attention_bias, bool training);

// As above for decoder layers (stacks of DecoderStackGroups), the arguments as
// BartDecoderLayerImpl::Forward without a cache.
at::Tensor RunDecoderExpertsBatched(const std::vector<BartDecoderLayerImpl*>& experts,
                                    const ExpertStacks& stacks, const at::Tensor& hidden_states,
                                    const at::Tensor& self_attention_bias,
                                    const at::Tensor& encoder_hidden_states,
                                    const at::Tensor& cross_attention_bias, bool training);

// sum_e route[b, e] * outputs[e, b]: outputs [E, B, T, D], route [B, E] -> [B, T, D].
at::Tensor MixExpertOutputs(const at::Tensor& outputs, const at::Tensor& route);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_MODEL_BATCHED_EXPERTS_H_
