// Batched experts (moe/model/batched_experts.h): every expert's output equals that expert's own
// layer, and an MoE layer under soft routes gives the outputs and gradients (of its input, the
// encoder states, the routes and every parameter) of the expert-by-expert execution to 1e-5.

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/function.h>

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "moe/model/bart.h"
#include "moe/model/batched_experts.h"
#include "moe/model/expert_stacks.h"
#include "moe/model/moe_layers.h"
#include "tests/moe_fixture.h"

namespace taskmoe {
namespace {

using testing::MaxAbsDiff;
using testing::TinyConfig;

constexpr int64_t kExperts = 3;
constexpr int64_t kBatch = 4;
constexpr int64_t kSourceLen = 7;
constexpr int64_t kTargetLen = 5;
constexpr double kTolerance = 1e-5;

// Padding bias [batch, 1, 1, length]: example b has its last b positions padded.
at::Tensor PaddingBias(int64_t length) {
  at::Tensor bias = at::zeros({kBatch, 1, 1, length});
  for (int64_t b = 1; b < kBatch; ++b) {
    bias[b].narrow(-1, length - b, b).fill_(std::numeric_limits<float>::lowest());
  }
  return bias;
}

at::Tensor CausalBias(int64_t length) {
  return at::full({length, length}, std::numeric_limits<float>::lowest()).triu(1).view(
      {1, 1, length, length});
}

template <typename Layer>
std::vector<Layer*> Experts(const torch::nn::ModuleList& experts) {
  std::vector<Layer*> layers;
  for (size_t e = 0; e < experts->size(); ++e) layers.push_back(experts->ptr<Layer>(e).get());
  return layers;
}

// Prepared stacks of the experts' parameter `groups`.
ExpertStacks Stacks(const torch::nn::ModuleList& experts,
                    std::vector<std::vector<std::string>> groups) {
  std::vector<torch::nn::Module*> modules;
  for (size_t e = 0; e < experts->size(); ++e) modules.push_back(experts->ptr(e).get());
  ExpertStacks stacks(modules, std::move(groups));
  stacks.Prepare();
  return stacks;
}

// Copies every parameter of `from` into `to` (same structure).
void CopyParameters(const torch::nn::Module& from, torch::nn::Module& to) {
  at::NoGradGuard no_grad;
  const auto source = from.named_parameters();
  for (auto& item : to.named_parameters()) item.value().copy_(source[item.key()]);
}

void ExpectSameGradients(const torch::nn::Module& a, const torch::nn::Module& b) {
  const auto b_parameters = b.named_parameters();
  for (const auto& item : a.named_parameters()) {
    const at::Tensor& grad_a = item.value().grad();
    const at::Tensor& grad_b = b_parameters[item.key()].grad();
    ASSERT_TRUE(grad_a.defined() && grad_b.defined()) << item.key();
    EXPECT_LT(MaxAbsDiff(grad_a, grad_b), kTolerance) << item.key();
  }
}

// Soft routes [batch, experts] from logits that collect the routes' gradient.
at::Tensor SoftRoute(const at::Tensor& logits) { return at::softmax(logits, -1); }

TEST(BatchedExpertsTest, EncoderOutputsEqualEachExpertLayer) {
  at::manual_seed(1);
  MoeEncoderLayer layer(BartLayerOptions::Encoder(TinyConfig()), MoeLayerOptions(kExperts));
  layer->eval();
  const at::Tensor x = at::randn({kBatch, kSourceLen, TinyConfig().d_model});
  const at::Tensor bias = PaddingBias(kSourceLen);
  const std::vector<BartEncoderLayerImpl*> experts =
      Experts<BartEncoderLayerImpl>(layer->experts);
  ASSERT_TRUE(CanBatchExperts(experts));
  const ExpertStacks stacks = Stacks(layer->experts, EncoderStackGroups());
  const at::Tensor outputs =
      RunEncoderExpertsBatched(experts, stacks, x, bias, /*training=*/false);
  ASSERT_EQ(outputs.sizes(), (at::IntArrayRef{kExperts, kBatch, kSourceLen, x.size(2)}));
  for (int64_t e = 0; e < kExperts; ++e) {
    EXPECT_LT(MaxAbsDiff(outputs[e], layer->expert(e).Forward(x, bias, at::Tensor())), kTolerance)
        << "expert " << e;
  }
}

TEST(BatchedExpertsTest, DecoderOutputsEqualEachExpertLayer) {
  at::manual_seed(2);
  MoeDecoderLayer layer(BartLayerOptions::Decoder(TinyConfig()), MoeLayerOptions(kExperts));
  layer->eval();
  const at::Tensor x = at::randn({kBatch, kTargetLen, TinyConfig().d_model});
  const at::Tensor encoder = at::randn({kBatch, kSourceLen, TinyConfig().d_model});
  const at::Tensor self_bias = CausalBias(kTargetLen);
  const at::Tensor cross_bias = PaddingBias(kSourceLen);
  const std::vector<BartDecoderLayerImpl*> experts =
      Experts<BartDecoderLayerImpl>(layer->experts);
  const ExpertStacks stacks = Stacks(layer->experts, DecoderStackGroups());
  const at::Tensor outputs = RunDecoderExpertsBatched(experts, stacks, x, self_bias, encoder,
                                                      cross_bias, /*training=*/false);
  for (int64_t e = 0; e < kExperts; ++e) {
    const at::Tensor expected =
        layer->expert(e).Forward(x, self_bias, encoder, cross_bias, at::Tensor(), nullptr);
    EXPECT_LT(MaxAbsDiff(outputs[e], expected), kTolerance) << "expert " << e;
  }
}

TEST(BatchedExpertsTest, MixWeighsEachExpertByItsRoute) {
  const at::Tensor outputs = at::randn({kExperts, kBatch, 2, 3});
  const at::Tensor route = at::rand({kBatch, kExperts});
  at::Tensor expected = at::zeros({kBatch, 2, 3});
  for (int64_t e = 0; e < kExperts; ++e) {
    expected += outputs[e] * route.select(1, e).view({kBatch, 1, 1});
  }
  EXPECT_LT(MaxAbsDiff(MixExpertOutputs(outputs, route), expected), 1e-6);
}

TEST(BatchedExpertsTest, SublayerHookOrSingleExpertRunsExpertByExpert) {
  MoeEncoderLayer layer(BartLayerOptions::Encoder(TinyConfig()), MoeLayerOptions(kExperts));
  std::vector<BartEncoderLayerImpl*> experts = Experts<BartEncoderLayerImpl>(layer->experts);
  EXPECT_TRUE(CanBatchExperts(experts));
  layer->expert(1).sublayer_hook = [](Sublayer, const at::Tensor& output) { return output; };
  EXPECT_FALSE(CanBatchExperts(experts));
  EXPECT_FALSE(CanBatchExperts(std::vector<BartEncoderLayerImpl*>{experts[0]}));
}

// The batched layer ends in the mix's sum over experts; the expert-by-expert one in additions.
std::string LastNode(const at::Tensor& output) { return output.grad_fn()->name(); }

TEST(BatchedExpertsTest, EncoderLayerMatchesExpertByExpertWithGradients) {
  at::manual_seed(3);
  const BartLayerOptions options = BartLayerOptions::Encoder(TinyConfig());
  MoeEncoderLayer batched(options, MoeLayerOptions(kExperts));
  MoeEncoderLayer one_by_one(options, MoeLayerOptions(kExperts).batched(false));
  CopyParameters(*batched, *one_by_one);
  const at::Tensor x = at::randn({kBatch, kSourceLen, options.d_model()});
  const at::Tensor logits = at::randn({kBatch, kExperts});
  const at::Tensor bias = PaddingBias(kSourceLen);
  const at::Tensor upstream = at::randn({kBatch, kSourceLen, options.d_model()});

  std::vector<at::Tensor> grads;
  std::vector<at::Tensor> outputs;
  for (MoeEncoderLayer* layer : {&batched, &one_by_one}) {
    const at::Tensor input = x.clone().requires_grad_();
    const at::Tensor route_logits = logits.clone().requires_grad_();
    const at::Tensor out = (*layer)->Forward(input, bias, SoftRoute(route_logits));
    (out * upstream).sum().backward();
    outputs.push_back(out.detach());
    grads.push_back(input.grad());
    grads.push_back(route_logits.grad());
    if (layer == &batched) {
      EXPECT_NE(LastNode(out).find("Sum"), std::string::npos) << LastNode(out);
    }
  }
  EXPECT_LT(MaxAbsDiff(outputs[0], outputs[1]), kTolerance);
  EXPECT_LT(MaxAbsDiff(grads[0], grads[2]), kTolerance) << "input gradient";
  EXPECT_LT(MaxAbsDiff(grads[1], grads[3]), kTolerance) << "route gradient";
  ExpectSameGradients(*batched, *one_by_one);
}

TEST(BatchedExpertsTest, DecoderLayerMatchesExpertByExpertWithGradients) {
  at::manual_seed(4);
  const BartLayerOptions options = BartLayerOptions::Decoder(TinyConfig());
  MoeDecoderLayer batched(options, MoeLayerOptions(kExperts));
  MoeDecoderLayer one_by_one(options, MoeLayerOptions(kExperts).batched(false));
  CopyParameters(*batched, *one_by_one);
  const at::Tensor x = at::randn({kBatch, kTargetLen, options.d_model()});
  const at::Tensor encoder = at::randn({kBatch, kSourceLen, options.d_model()});
  const at::Tensor logits = at::randn({kBatch, kExperts});
  const at::Tensor upstream = at::randn({kBatch, kTargetLen, options.d_model()});

  std::vector<at::Tensor> results;
  for (MoeDecoderLayer* layer : {&batched, &one_by_one}) {
    const at::Tensor input = x.clone().requires_grad_();
    const at::Tensor encoder_states = encoder.clone().requires_grad_();
    const at::Tensor route_logits = logits.clone().requires_grad_();
    const at::Tensor out =
        (*layer)->Forward(input, CausalBias(kTargetLen), encoder_states, PaddingBias(kSourceLen),
                          SoftRoute(route_logits), nullptr);
    (out * upstream).sum().backward();
    results.insert(results.end(),
                   {out.detach(), input.grad(), encoder_states.grad(), route_logits.grad()});
    if (layer == &batched) {
      EXPECT_NE(LastNode(out).find("Sum"), std::string::npos) << LastNode(out);
    }
  }
  const char* names[] = {"output", "input gradient", "encoder-state gradient", "route gradient"};
  for (int i = 0; i < 4; ++i) {
    EXPECT_LT(MaxAbsDiff(results[i], results[i + 4]), kTolerance) << names[i];
  }
  ExpectSameGradients(*batched, *one_by_one);
}

// A stack reads the experts' parameters without a copy: in-place changes show in it, gradients
// reach each parameter, and a parameter given new storage is linked back with its value.
TEST(ExpertStacksTest, StackSharesParametersAndPassesGradients) {
  at::manual_seed(5);
  MoeEncoderLayer layer(BartLayerOptions::Encoder(TinyConfig()), MoeLayerOptions(kExperts));
  ExpertStacks stacks = Stacks(layer->experts, {{"fc1.weight"}, {"self_attn.q_proj.bias",
                                                                 "self_attn.k_proj.bias"}});
  {
    at::NoGradGuard no_grad;
    layer->expert(2).fc1->weight.fill_(0.5);
  }
  const at::Tensor fc1 = stacks.Stack("fc1.weight");
  ASSERT_EQ(fc1.sizes(), (at::IntArrayRef{kExperts, 1, 24, TinyConfig().d_model}));
  EXPECT_TRUE(at::equal(fc1[2][0], layer->expert(2).fc1->weight.detach()));
  EXPECT_TRUE(at::equal(stacks.Stack("self_attn.q_proj.bias")[1][1],
                        layer->expert(1).self_attn->k_proj->bias.detach()));

  const at::Tensor weights = at::randn({kExperts, 2, TinyConfig().d_model});
  (stacks.Stack("self_attn.q_proj.bias") * weights).sum().backward();
  EXPECT_TRUE(at::equal(layer->expert(0).self_attn->k_proj->bias.grad(), weights[0][1]));
  EXPECT_TRUE(at::equal(layer->expert(2).self_attn->q_proj->bias.grad(), weights[2][0]));

  const at::Tensor moved = at::full_like(layer->expert(1).fc1->weight, 2.0);
  layer->expert(1).fc1->weight.set_data(moved);
  stacks.Prepare();
  EXPECT_TRUE(at::equal(stacks.Stack("fc1.weight")[1][0], moved));
  EXPECT_EQ(layer->expert(1).fc1->weight.data_ptr(), stacks.Stack("fc1.weight")[1][0].data_ptr());
}

}  // namespace
}  // namespace taskmoe
