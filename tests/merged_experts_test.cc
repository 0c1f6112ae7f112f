// Merged execution of MoE layers (model.expert_execution: MERGE_PARAMETERS): each group of equal
// routes runs one layer whose parameters are sum_e w_e theta_e. Checked against dense layers
// built from the averaged weights, an independent functional encoder layer for the gradients,
// cached decoding, and the export of a task's dense model.

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/functional/normalization.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "moe/model/bart.h"
#include "moe/model/merged_experts.h"
#include "moe/model/moe_layers.h"
#include "moe/model/moe_model.h"
#include "tests/moe_fixture.h"

namespace taskmoe {
namespace {

using testing::MaxAbsDiff;
using testing::TinyConfig;

constexpr int64_t kExperts = 3;

// Two tasks' routes [2, E] and the task of each of the 5 examples.
at::Tensor TaskTable() { return at::tensor({0.2, 0.5, 0.3, 0.7, 0.0, 0.3}).view({2, kExperts}); }
at::Tensor TaskIds() { return at::tensor({0, 1, 0, 0, 1}, at::kLong); }

// name -> sum_e weights[e] * expert_e's parameter `name`, by parameter name.
std::map<std::string, at::Tensor> AveragedParameters(const torch::nn::ModuleList& experts,
                                                     const at::Tensor& weights) {
  std::map<std::string, at::Tensor> averaged;
  for (int64_t e = 0; e < static_cast<int64_t>(experts->size()); ++e) {
    for (const auto& item : (*experts)[e]->named_parameters()) {
      const at::Tensor term = item.value() * weights[e];
      auto [it, inserted] = averaged.emplace(item.key(), term);
      if (!inserted) it->second = it->second + term;
    }
  }
  return averaged;
}

// Copies `parameters` into a freshly built dense layer (no graph).
void LoadParameters(torch::nn::Module& layer, const std::map<std::string, at::Tensor>& parameters) {
  at::NoGradGuard no_grad;
  for (auto& item : layer.named_parameters()) item.value().copy_(parameters.at(item.key()));
}

at::Tensor Linear(const at::Tensor& x, const std::map<std::string, at::Tensor>& p,
                  const std::string& name) {
  return at::linear(x, p.at(name + ".weight"), p.at(name + ".bias"));
}

at::Tensor LayerNorm(const at::Tensor& x, const std::map<std::string, at::Tensor>& p,
                     const std::string& name) {
  return at::layer_norm(x, {x.size(-1)}, p.at(name + ".weight"), p.at(name + ".bias"), 1e-5);
}

// A post-LN BART encoder layer written out with at:: ops on a parameter map (no dropout).
at::Tensor FunctionalEncoderLayer(const at::Tensor& x, const at::Tensor& bias, int64_t heads,
                                  const std::map<std::string, at::Tensor>& p) {
  const int64_t batch = x.size(0), length = x.size(1), d = x.size(2);
  auto split = [&](const at::Tensor& t) { return t.view({batch, length, heads, -1}).transpose(1, 2); };
  const at::Tensor q = split(Linear(x, p, "self_attn.q_proj") / std::sqrt(double(d / heads)));
  const at::Tensor k = split(Linear(x, p, "self_attn.k_proj"));
  const at::Tensor v = split(Linear(x, p, "self_attn.v_proj"));
  const at::Tensor probs = at::softmax(at::matmul(q, k.transpose(2, 3)) + bias, -1);
  const at::Tensor context = at::matmul(probs, v).transpose(1, 2).reshape({batch, length, d});
  const at::Tensor h = LayerNorm(x + Linear(context, p, "self_attn.out_proj"), p,
                                 "self_attn_layer_norm");
  const at::Tensor ffn = Linear(at::gelu(Linear(h, p, "fc1")), p, "fc2");
  return LayerNorm(h + ffn, p, "final_layer_norm");
}

MoeEncoderLayer MergedEncoder() {
  return MoeEncoderLayer(BartLayerOptions::Encoder(TinyConfig()),
                         MoeLayerOptions(kExperts).execution(ExpertExecution::kMergeParameters));
}

MoeDecoderLayer MergedDecoder() {
  return MoeDecoderLayer(BartLayerOptions::Decoder(TinyConfig()),
                         MoeLayerOptions(kExperts).execution(ExpertExecution::kMergeParameters));
}

TEST(GroupEqualRoutesTest, GroupsExamplesWithEqualRows) {
  const at::Tensor route = TaskTable().index_select(0, TaskIds());
  const std::vector<RouteGroup> groups = GroupEqualRoutes(route);
  ASSERT_EQ(groups.size(), 2u);
  // Sorted by route values: task 0's row (0.2, ...) before task 1's (0.7, ...).
  EXPECT_TRUE(groups[0].rows.equal(at::tensor({0, 2, 3}, at::kLong)));
  EXPECT_TRUE(groups[1].rows.equal(at::tensor({1, 4}, at::kLong)));
  EXPECT_LT(MaxAbsDiff(groups[1].weights, TaskTable()[1]), 1e-7);
  // One group of the whole batch needs no row list.
  const std::vector<RouteGroup> one = GroupEqualRoutes(TaskTable()[0].expand({4, kExperts}));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_FALSE(one[0].rows.defined());
}

TEST(MergedEncoderLayerTest, EqualsDenseLayersOfAveragedWeights) {
  at::manual_seed(1);
  MoeEncoderLayer layer = MergedEncoder();
  layer->eval();
  const at::Tensor x = at::randn({5, 6, 16});
  const at::Tensor bias = testing::PaddingBias(5, 6);
  const at::Tensor route = TaskTable().index_select(0, TaskIds());
  const at::Tensor merged = layer->Forward(x, bias, route);
  for (int64_t b = 0; b < 5; ++b) {
    BartEncoderLayer dense(BartLayerOptions::Encoder(TinyConfig()));
    dense->eval();
    LoadParameters(*dense, AveragedParameters(layer->experts, route[b]));
    const at::Tensor expected = dense->Forward(x.narrow(0, b, 1), bias.narrow(0, b, 1), at::Tensor());
    EXPECT_LT(MaxAbsDiff(merged.narrow(0, b, 1), expected), 1e-6) << "example " << b;
  }
  // Merging is not mixing: the outputs differ from the paper's mixture.
  EXPECT_GT(MaxAbsDiff(merged, testing::PlainEncoderMix(*layer, x, bias, route)), 1e-3);
}

TEST(MergedEncoderLayerTest, GradientsEqualAnIndependentFunctionalComputation) {
  at::manual_seed(2);
  MoeEncoderLayer layer = MergedEncoder();
  layer->train();  // dropout is 0 in TinyConfig: training mode runs the same function
  const at::Tensor x = at::randn({5, 6, 16});
  const at::Tensor bias = testing::PaddingBias(5, 6);
  const at::Tensor probe = at::randn({5, 6, 16});
  const at::Tensor table = TaskTable().requires_grad_(true);

  const at::Tensor merged = layer->Forward(x, bias, table.index_select(0, TaskIds()));
  (merged * probe).sum().backward();
  const at::Tensor table_grad = table.grad().clone();
  std::map<std::string, at::Tensor> expert_grads;
  for (const auto& item : layer->named_parameters()) {
    expert_grads[item.key()] = item.value().grad().clone();
    item.value().mutable_grad().zero_();
  }
  table.mutable_grad().zero_();

  // The same function, example by example, on the functional layer.
  at::Tensor reference_loss = at::zeros({});
  for (int64_t b = 0; b < 5; ++b) {
    const at::Tensor weights = table[TaskIds()[b].item<int64_t>()];
    const at::Tensor out = FunctionalEncoderLayer(x.narrow(0, b, 1), bias.narrow(0, b, 1),
                                                  TinyConfig().encoder_attention_heads,
                                                  AveragedParameters(layer->experts, weights));
    EXPECT_LT(MaxAbsDiff(out, merged.narrow(0, b, 1).detach()), 1e-5) << "example " << b;
    reference_loss = reference_loss + (out * probe.narrow(0, b, 1)).sum();
  }
  reference_loss.backward();
  EXPECT_LT(MaxAbsDiff(table_grad, table.grad()), 1e-4);
  EXPECT_GT(table_grad.abs().max().item<double>(), 1e-3);
  for (const auto& item : layer->named_parameters()) {
    const at::Tensor& reference = item.value().grad();
    EXPECT_LT(MaxAbsDiff(expert_grads[item.key()], reference),
              1e-5 * (1 + reference.abs().max().item<double>()))
        << item.key();
  }
}

TEST(MergedDecoderLayerTest, FullPassEqualsDenseLayersAndCachedSteps) {
  at::manual_seed(3);
  MoeDecoderLayer layer = MergedDecoder();
  layer->eval();
  const at::Tensor y = at::randn({5, 4, 16});
  const at::Tensor memory = at::randn({5, 6, 16});
  const at::Tensor cross_bias = testing::PaddingBias(5, 6);
  const at::Tensor route = TaskTable().index_select(0, TaskIds());
  const at::Tensor full = layer->Forward(y, testing::CausalBias(4), memory, cross_bias, route, nullptr);
  for (int64_t b = 0; b < 5; ++b) {
    BartDecoderLayer dense(BartLayerOptions::Decoder(TinyConfig()));
    dense->eval();
    LoadParameters(*dense, AveragedParameters(layer->experts, route[b]));
    const at::Tensor expected =
        dense->Forward(y.narrow(0, b, 1), testing::CausalBias(4), memory.narrow(0, b, 1),
                       cross_bias.narrow(0, b, 1), at::Tensor(), nullptr);
    EXPECT_LT(MaxAbsDiff(full.narrow(0, b, 1), expected), 1e-6) << "example " << b;
  }
  // One position at a time with the cache gives the full pass's outputs.
  std::unique_ptr<DecoderBlockCache> cache = layer->NewCache();
  for (int64_t t = 0; t < 4; ++t) {
    const at::Tensor step = layer->Forward(y.narrow(1, t, 1), at::Tensor(), memory, cross_bias,
                                           route, cache.get());
    EXPECT_LT(MaxAbsDiff(step, full.narrow(1, t, 1)), 1e-5) << "position " << t;
  }
}

TEST(MergedDecoderLayerTest, CacheFollowsReorderedRows) {
  at::manual_seed(4);
  MoeDecoderLayer layer = MergedDecoder();
  layer->eval();
  const at::Tensor y = at::randn({5, 3, 16});
  const at::Tensor memory = at::randn({5, 6, 16});
  const at::Tensor route = TaskTable().index_select(0, TaskIds());
  std::unique_ptr<DecoderBlockCache> cache = layer->NewCache();
  for (int64_t t = 0; t < 2; ++t) {
    layer->Forward(y.narrow(1, t, 1), at::Tensor(), memory, at::Tensor(), route, cache.get());
  }
  // As beam search does: rows kept, duplicated and moved, routes and memory alike.
  const at::Tensor index = at::tensor({1, 1, 0, 4, 2}, at::kLong);
  cache->Reorder(index);
  const at::Tensor step = layer->Forward(y.index_select(0, index).narrow(1, 2, 1), at::Tensor(),
                                         memory.index_select(0, index), at::Tensor(),
                                         route.index_select(0, index), cache.get());
  const at::Tensor full =
      layer->Forward(y.index_select(0, index), testing::CausalBias(3), memory.index_select(0, index),
                     at::Tensor(), route.index_select(0, index), nullptr);
  EXPECT_LT(MaxAbsDiff(step, full.narrow(1, 2, 1)), 1e-5);
}

TEST(MergedMoeBartTest, SoftRoutesExportToAnEqualDenseModel) {
  at::manual_seed(5);
  MoeOptions options;
  options.experts = kExperts;
  options.decoder_vanilla_layers = {1};
  options.expert_execution = ExpertExecution::kMergeParameters;
  absl::StatusOr<MoeBart> moe = MoeBart::Create(TinyConfig(), options);
  ASSERT_TRUE(moe.ok()) << moe.status();
  moe->model()->eval();
  const ModelShape& shape = moe->shape();
  const at::Tensor soft = at::softmax(
      at::randn({shape.encoder_layers + shape.decoder_layers, 1, kExperts}), -1);
  const RouteWeights routes = SplitLayers(soft, shape);
  absl::StatusOr<BartForConditionalGeneration> dense = moe->ExtractDense(routes);
  ASSERT_TRUE(dense.ok()) << dense.status();
  const at::Tensor input_ids = at::randint(4, 40, {1, 7}, at::kLong);
  const at::Tensor decoder_ids = at::randint(4, 40, {1, 5}, at::kLong);
  at::NoGradGuard no_grad;
  absl::StatusOr<BartOutput> expected = moe->Forward(input_ids, at::Tensor(), decoder_ids, routes);
  ASSERT_TRUE(expected.ok()) << expected.status();
  const BartOutput exported = (*dense)->Forward(input_ids, at::Tensor(), decoder_ids);
  EXPECT_LT(MaxAbsDiff(exported.logits, expected->logits), 1e-6);

  // Mixing outputs, the same soft routes have no exact dense model.
  options.expert_execution = ExpertExecution::kMixOutputs;
  absl::StatusOr<MoeBart> mixing = MoeBart::Create(TinyConfig(), options);
  ASSERT_TRUE(mixing.ok());
  const absl::Status refused = mixing->ExtractDense(routes).status();
  EXPECT_NE(refused.message().find("extraction needs one-hot routes"), std::string::npos) << refused;
}

}  // namespace
}  // namespace taskmoe
