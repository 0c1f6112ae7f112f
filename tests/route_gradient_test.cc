// The router's gradient under a straight-through one-hot route (moe/model/moe_layers.h): with
// RouteGradient::kAllExperts every gradient equals that of running every expert with autograd
// (the original's estimator); kSelectedExperts gives zero route weights no gradient.

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "moe/model/bart.h"
#include "moe/model/moe_layers.h"
#include "tests/moe_fixture.h"

namespace taskmoe {
namespace {

using testing::CausalBias;
using testing::IntraOpThreads;
using testing::MaxAbsDiff;
using testing::PaddingBias;
using testing::PlainDecoderMix;
using testing::PlainEncoderMix;
using testing::UsedConcurrentExperts;
using testing::TinyConfig;

constexpr int64_t kBatch = 5;

// One-hot forward, softmax backward; row b picks expert picks[b] (mixed tasks in one batch).
at::Tensor StraightThroughRoute(const at::Tensor& logits) {
  const at::Tensor soft = at::softmax(logits, -1);
  const at::Tensor hard = at::one_hot(soft.argmax(-1), logits.size(1)).to(soft.scalar_type());
  return hard - soft.detach() + soft;
}

at::Tensor Logits(int64_t experts) {
  // Experts 0..2 picked by some rows; with 4 experts, expert 3 by none.
  const std::vector<int64_t> picks = experts == 2 ? std::vector<int64_t>{0, 1, 1, 0, 0}
                                                  : std::vector<int64_t>{0, 2, 2, 1, 0};
  at::Tensor logits = at::randn({kBatch, experts});
  for (int64_t b = 0; b < kBatch; ++b) logits[b][picks[b]] += 5;
  return logits.requires_grad_();
}

// Runs expert e on the rows of x (all rows when `rows` is undefined), as an MoE layer does.
using ExpertOnRows = std::function<at::Tensor(int64_t e, const at::Tensor& rows)>;

// sum_e route[b, e] * expert_e(x[b]) with autograd through every expert, the experts called in
// the order the layer calls them (selected rows of each expert, then zero-weight rows of each),
// so that dropout draws the same masks.
at::Tensor AllExpertsInLayerOrder(const at::Tensor& route, const at::Tensor& like,
                                  const ExpertOnRows& run) {
  at::Tensor sum = at::zeros_like(like);
  for (const at::Tensor& used : {route.detach().ne(0), route.detach().eq(0)}) {
    for (const ExpertAssignment& a : AssignExperts(used)) {
      const at::Tensor weight = route.select(1, a.expert);
      if (!a.rows.defined()) {
        sum = sum + run(a.expert, a.rows) * weight.view({-1, 1, 1});
      } else {
        sum = sum.index_add(0, a.rows,
                            run(a.expert, a.rows) * weight.index_select(0, a.rows).view({-1, 1, 1}));
      }
    }
  }
  return sum;
}

at::Tensor Rows(const at::Tensor& t, const at::Tensor& rows) {
  return rows.defined() && t.size(0) > 1 ? t.index_select(0, rows) : t;
}

struct Gradients {
  at::Tensor output;
  at::Tensor logits;
  at::Tensor route;
  std::vector<at::Tensor> inputs;
  std::vector<at::Tensor> parameters;
};

// Backpropagates <output, probe> into the logits, the inputs and the module's parameters.
Gradients Backward(const at::Tensor& output, const at::Tensor& logits, const at::Tensor& route,
                   const std::vector<at::Tensor>& inputs, torch::nn::Module& module,
                   const at::Tensor& probe) {
  (output * probe).sum().backward();
  Gradients g{output.detach(), logits.grad().clone(), route.grad().clone(), {}, {}};
  for (const at::Tensor& input : inputs) g.inputs.push_back(input.grad().clone());
  for (at::Tensor p : module.parameters()) {
    g.parameters.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
    p.mutable_grad() = at::Tensor();
  }
  return g;
}

void ExpectClose(const at::Tensor& actual, const at::Tensor& expected, const std::string& what) {
  const double scale = 1.0 + expected.abs().max().item<double>();
  EXPECT_LT(MaxAbsDiff(actual, expected), 1e-5 * scale) << what;
}

void ExpectSameGradients(const Gradients& actual, const Gradients& expected) {
  ExpectClose(actual.output, expected.output, "output");
  ExpectClose(actual.route, expected.route, "route gradient");
  ExpectClose(actual.logits, expected.logits, "router logits gradient");
  for (size_t i = 0; i < actual.inputs.size(); ++i) {
    ExpectClose(actual.inputs[i], expected.inputs[i], "input gradient " + std::to_string(i));
  }
  ASSERT_EQ(actual.parameters.size(), expected.parameters.size());
  for (size_t i = 0; i < actual.parameters.size(); ++i) {
    ExpectClose(actual.parameters[i], expected.parameters[i], "parameter " + std::to_string(i));
  }
}

struct Setting {
  int64_t experts;
  double dropout;
};

class RouteGradientTest : public ::testing::TestWithParam<Setting> {
 protected:
  BartConfig Config() const {
    BartConfig config = TinyConfig();
    config.dropout = config.attention_dropout = config.activation_dropout = GetParam().dropout;
    return config;
  }
};

TEST_P(RouteGradientTest, EncoderLayerEqualsEveryExpertWithAutograd) {
  const BartConfig config = Config();
  torch::manual_seed(3);
  MoeEncoderLayer layer(BartLayerOptions::Encoder(config),
                        MoeLayerOptions(GetParam().experts)
                            .concurrent(false)
                            .route_gradient(RouteGradient::kAllExperts));
  const at::Tensor logits = Logits(GetParam().experts);
  const at::Tensor x = at::randn({kBatch, 6, config.d_model}).requires_grad_();
  const at::Tensor bias = PaddingBias(kBatch, 6);
  const at::Tensor probe = at::randn({kBatch, 6, config.d_model});
  const auto run = [&](const at::Tensor& route) {
    torch::manual_seed(11);
    return layer->Forward(x, bias, route);
  };
  at::Tensor route = StraightThroughRoute(logits);
  route.retain_grad();
  const Gradients exact = Backward(run(route), logits, route, {x}, *layer, probe);
  logits.mutable_grad() = at::Tensor();
  x.mutable_grad() = at::Tensor();

  at::Tensor reference_route = StraightThroughRoute(logits);
  reference_route.retain_grad();
  torch::manual_seed(11);
  const at::Tensor reference_output =
      GetParam().dropout == 0
          ? PlainEncoderMix(*layer, x, bias, reference_route)
          : AllExpertsInLayerOrder(reference_route, x, [&](int64_t e, const at::Tensor& rows) {
              return layer->expert(e).Forward(Rows(x, rows), Rows(bias, rows), at::Tensor());
            });
  const Gradients reference =
      Backward(reference_output, logits, reference_route, {x}, *layer, probe);
  ExpectSameGradients(exact, reference);
  // The zero weights do get a gradient.
  EXPECT_GT(exact.route.masked_select(route.detach().eq(0)).abs().max().item<double>(), 0);
}

TEST_P(RouteGradientTest, DecoderLayerEqualsEveryExpertWithAutograd) {
  const BartConfig config = Config();
  torch::manual_seed(4);
  MoeDecoderLayer layer(BartLayerOptions::Decoder(config),
                        MoeLayerOptions(GetParam().experts)
                            .concurrent(false)
                            .route_gradient(RouteGradient::kAllExperts));
  const at::Tensor logits = Logits(GetParam().experts);
  const at::Tensor y = at::randn({kBatch, 4, config.d_model}).requires_grad_();
  const at::Tensor memory = at::randn({kBatch, 6, config.d_model}).requires_grad_();
  const at::Tensor cross_bias = PaddingBias(kBatch, 6);
  const at::Tensor probe = at::randn({kBatch, 4, config.d_model});
  at::Tensor route = StraightThroughRoute(logits);
  route.retain_grad();
  torch::manual_seed(12);
  const at::Tensor output = layer->Forward(y, CausalBias(4), memory, cross_bias, route, nullptr);
  const Gradients exact = Backward(output, logits, route, {y, memory}, *layer, probe);
  for (at::Tensor t : {logits, y, memory}) t.mutable_grad() = at::Tensor();

  at::Tensor reference_route = StraightThroughRoute(logits);
  reference_route.retain_grad();
  torch::manual_seed(12);
  const at::Tensor reference_output =
      GetParam().dropout == 0
          ? PlainDecoderMix(*layer, y, CausalBias(4), memory, cross_bias, reference_route)
          : AllExpertsInLayerOrder(reference_route, y, [&](int64_t e, const at::Tensor& rows) {
              return layer->expert(e).Forward(Rows(y, rows), CausalBias(4), Rows(memory, rows),
                                              Rows(cross_bias, rows), at::Tensor(), nullptr);
            });
  ExpectSameGradients(exact, Backward(reference_output, logits, reference_route, {y, memory},
                                      *layer, probe));
}

TEST_P(RouteGradientTest, SelectedExpertsOnlyLeavesZeroWeightsWithoutGradient) {
  const BartConfig config = Config();
  torch::manual_seed(5);
  MoeEncoderLayer layer(BartLayerOptions::Encoder(config),
                        MoeLayerOptions(GetParam().experts)
                            .concurrent(false)
                            .route_gradient(RouteGradient::kSelectedExperts));
  const at::Tensor logits = Logits(GetParam().experts);
  const at::Tensor x = at::randn({kBatch, 6, config.d_model}).requires_grad_();
  at::Tensor route = StraightThroughRoute(logits);
  route.retain_grad();
  torch::manual_seed(13);
  const at::Tensor output = layer->Forward(x, PaddingBias(kBatch, 6), route);
  const Gradients selected = Backward(output, logits, route, {x}, *layer,
                                      at::randn({kBatch, 6, config.d_model}));
  EXPECT_EQ(selected.route.masked_select(route.detach().eq(0)).abs().max().item<double>(), 0);
  EXPECT_GT(selected.route.masked_select(route.detach().ne(0)).abs().max().item<double>(), 0);
}

// With two threads the selected and the unselected experts run concurrently in row blocks (the
// unselected ones without a graph); the gradients still equal the every-expert reference.
TEST(RouteGradientConcurrentTest, EncoderLayerOnTwoThreadsEqualsEveryExpertWithAutograd) {
  const BartConfig config = TinyConfig();
  torch::manual_seed(5);
  MoeEncoderLayer layer(
      BartLayerOptions::Encoder(config),
      MoeLayerOptions(4).concurrent(true).route_gradient(RouteGradient::kAllExperts));
  const at::Tensor logits = Logits(4);
  const at::Tensor x = at::randn({kBatch, 6, config.d_model}).requires_grad_();
  const at::Tensor bias = PaddingBias(kBatch, 6);
  const at::Tensor probe = at::randn({kBatch, 6, config.d_model});
  at::Tensor route = StraightThroughRoute(logits);
  route.retain_grad();
  Gradients exact;
  {
    IntraOpThreads intra_op(2);
    const at::Tensor output = layer->Forward(x, bias, route);
    ASSERT_TRUE(UsedConcurrentExperts(output));
    exact = Backward(output, logits, route, {x}, *layer, probe);
  }
  logits.mutable_grad() = at::Tensor();
  x.mutable_grad() = at::Tensor();
  at::Tensor reference_route = StraightThroughRoute(logits);
  reference_route.retain_grad();
  const Gradients reference = Backward(PlainEncoderMix(*layer, x, bias, reference_route), logits,
                                       reference_route, {x}, *layer, probe);
  ExpectSameGradients(exact, reference);
  EXPECT_GT(exact.route.masked_select(route.detach().eq(0)).abs().max().item<double>(), 0);
}

// A cached decoding step runs only the selected experts, also under grad mode with the exact
// estimator: the unselected experts hold no cache of the earlier steps. The steps give the full
// pass's outputs, and zero route weights get no gradient.
TEST(RouteGradientCachedDecodingTest, CachedStepsRunTheSelectedExpertsOnly) {
  const BartConfig config = TinyConfig();
  torch::manual_seed(6);
  MoeDecoderLayer layer(BartLayerOptions::Decoder(config),
                        MoeLayerOptions(3).concurrent(false).route_gradient(
                            RouteGradient::kAllExperts));
  layer->eval();
  const at::Tensor logits = Logits(3);
  const at::Tensor y = at::randn({kBatch, 4, config.d_model});
  const at::Tensor memory = at::randn({kBatch, 6, config.d_model});
  const at::Tensor cross_bias = PaddingBias(kBatch, 6);
  at::Tensor route = StraightThroughRoute(logits);
  route.retain_grad();
  const at::Tensor full = layer->Forward(y, CausalBias(4), memory, cross_bias, route, nullptr);
  std::unique_ptr<DecoderBlockCache> cache = layer->NewCache();
  at::Tensor probed = at::zeros({});
  for (int64_t t = 0; t < 4; ++t) {
    const at::Tensor step =
        layer->Forward(y.narrow(1, t, 1), at::Tensor(), memory, cross_bias, route, cache.get());
    EXPECT_LT(MaxAbsDiff(step, full.narrow(1, t, 1)), 1e-5) << "position " << t;
    probed = probed + step.sum();
  }
  probed.backward();
  ASSERT_TRUE(route.grad().defined());
  EXPECT_EQ(route.grad().masked_select(route.detach().eq(0)).abs().max().item<double>(), 0);
  EXPECT_GT(route.grad().masked_select(route.detach().ne(0)).abs().max().item<double>(), 0);
}

INSTANTIATE_TEST_SUITE_P(ExpertsAndDropout, RouteGradientTest,
                         ::testing::Values(Setting{2, 0.0}, Setting{4, 0.0}, Setting{2, 0.1},
                                           Setting{4, 0.1}),
                         [](const ::testing::TestParamInfo<Setting>& info) {
                           return "E" + std::to_string(info.param.experts) +
                                  (info.param.dropout > 0 ? "_dropout" : "_no_dropout");
                         });

}  // namespace
}  // namespace taskmoe
