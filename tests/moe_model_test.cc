// The task-level MoE model against independent facts: a dense BART, the plain weighted sum of
// all experts, the mean of the experts, a full (uncached) pass.

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include <limits>
#include <vector>

#include "moe/model/bart.h"
#include "moe/model/moe_layers.h"
#include "moe/model/moe_model.h"
#include "tests/moe_fixture.h"

namespace taskmoe {
namespace {

using testing::Batch;
using testing::CausalBias;
using testing::MaxAbsDiff;
using testing::PaddingBias;
using testing::PlainDecoderMix;
using testing::PlainEncoderMix;
using testing::RandomBatch;
using testing::RandomHardRoutes;
using testing::TinyConfig;

at::Tensor RandomSoftRoutes(int64_t layers, int64_t batch, int64_t experts) {
  return at::softmax(at::randn({layers, batch, experts}), -1);
}

// Examples with one-hot routes on different experts, partial mixtures and an unused expert 3.
at::Tensor MixedRoute() {
  return at::tensor({1.0f, 0.0f, 0.0f, 0.0f,  //
                     0.0f, 0.0f, 1.0f, 0.0f,  //
                     0.3f, 0.7f, 0.0f, 0.0f,  //
                     0.0f, 0.5f, 0.5f, 0.0f,  //
                     0.0f, 0.0f, 1.0f, 0.0f})
      .view({5, 4});
}

TEST(MoeModelTest, ExpertsEqualToOneDenseLayerGiveTheDenseModel) {
  torch::manual_seed(1);
  const BartConfig config = TinyConfig();
  BartForConditionalGeneration dense(config);
  dense->eval();
  MoeOptions options;
  options.experts = 3;
  options.init_eps = 0.0;
  options.decoder_vanilla_layers = {1};
  absl::StatusOr<MoeBart> moe = MoeBart::FromDense(dense, options);
  ASSERT_TRUE(moe.ok()) << moe.status();
  const Batch batch = RandomBatch(config, 4, 10, 6);
  const at::Tensor expected =
      dense->Forward(batch.input_ids, batch.attention_mask, batch.decoder_input_ids).logits;
  for (const bool hard : {false, true}) {
    RouteWeights routes;
    routes.encoder = hard ? RandomHardRoutes(3, 4, 3) : RandomSoftRoutes(3, 4, 3);
    routes.decoder = hard ? RandomHardRoutes(2, 4, 3) : RandomSoftRoutes(2, 4, 3);
    absl::StatusOr<BartOutput> out =
        moe->Forward(batch.input_ids, batch.attention_mask, batch.decoder_input_ids, routes);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_LT(MaxAbsDiff(out->logits, expected), 1e-5) << (hard ? "hard" : "soft") << " routes";
  }
}

TEST(MoeModelTest, OneHotRoutesEqualTheDenseModelOfTheChosenExperts) {
  torch::manual_seed(2);
  const BartConfig config = TinyConfig();
  MoeOptions options;
  options.experts = 3;
  options.encoder_vanilla_layers = {1};
  absl::StatusOr<MoeBart> moe = MoeBart::Create(config, options);
  ASSERT_TRUE(moe.ok()) << moe.status();
  moe->model()->eval();
  // One task: layer l uses expert (l + 1) % 3; vanilla encoder layer 1 carries any row.
  RouteWeights task;
  task.encoder = at::tensor({0.f, 1.f, 0.f, 0.2f, 0.3f, 0.5f, 1.f, 0.f, 0.f}).view({3, 1, 3});
  task.decoder = at::tensor({0.f, 1.f, 0.f, 0.f, 0.f, 1.f}).view({2, 1, 3});
  absl::StatusOr<BartForConditionalGeneration> dense = moe->ExtractDense(task);
  ASSERT_TRUE(dense.ok()) << dense.status();

  // The dense layers are the chosen experts.
  auto& encoder_layer0 = dynamic_cast<MoeEncoderLayerImpl&>(moe->model()->model->encoder->block(0));
  EXPECT_TRUE((*dense)->model->encoder->block(0).named_parameters()["fc1.weight"].equal(
      encoder_layer0.expert(1).fc1->weight));

  const Batch batch = RandomBatch(config, 3, 9, 5);
  RouteWeights routes{task.encoder.expand({3, 3, 3}), task.decoder.expand({2, 3, 3})};
  absl::StatusOr<BartOutput> out =
      moe->Forward(batch.input_ids, batch.attention_mask, batch.decoder_input_ids, routes);
  ASSERT_TRUE(out.ok()) << out.status();
  const at::Tensor expected =
      (*dense)->Forward(batch.input_ids, batch.attention_mask, batch.decoder_input_ids).logits;
  EXPECT_EQ(MaxAbsDiff(out->logits, expected), 0.0);
}

TEST(MoeModelTest, ExtractionNeedsOneHotRoutesOfOneTask) {
  torch::manual_seed(3);
  absl::StatusOr<MoeBart> moe = MoeBart::Create(TinyConfig(), MoeOptions());
  ASSERT_TRUE(moe.ok()) << moe.status();
  RouteWeights soft{RandomSoftRoutes(3, 1, 3), RandomHardRoutes(2, 1, 3)};
  absl::StatusOr<BartForConditionalGeneration> dense = moe->ExtractDense(soft);
  ASSERT_FALSE(dense.ok());
  EXPECT_NE(dense.status().message().find("one-hot"), std::string::npos) << dense.status();
  EXPECT_NE(dense.status().message().find("encoder layer 0"), std::string::npos) << dense.status();
  RouteWeights two_tasks{RandomHardRoutes(3, 2, 3), RandomHardRoutes(2, 2, 3)};
  EXPECT_FALSE(moe->ExtractDense(two_tasks).ok());
}

TEST(MoeModelTest, AverageRoutingIsTheMeanOfTheExperts) {
  torch::manual_seed(4);
  const BartConfig config = TinyConfig();
  const int64_t experts = 3;
  const at::Tensor route = at::full({4, experts}, 1.0 / experts);
  MoeEncoderLayer encoder(BartLayerOptions::Encoder(config), MoeLayerOptions(experts));
  const at::Tensor x = at::randn({4, 7, config.d_model});
  const at::Tensor bias = PaddingBias(4, 7);
  at::Tensor mean = at::zeros_like(x);
  for (int64_t e = 0; e < experts; ++e) mean += encoder->expert(e).Forward(x, bias, at::Tensor());
  mean /= experts;
  EXPECT_LT(MaxAbsDiff(encoder->Forward(x, bias, route), mean), 1e-6);

  MoeDecoderLayer decoder(BartLayerOptions::Decoder(config), MoeLayerOptions(experts));
  const at::Tensor y = at::randn({4, 5, config.d_model});
  at::Tensor decoder_mean = at::zeros_like(y);
  for (int64_t e = 0; e < experts; ++e) {
    decoder_mean +=
        decoder->expert(e).Forward(y, CausalBias(5), x, bias, at::Tensor(), nullptr);
  }
  decoder_mean /= experts;
  EXPECT_LT(MaxAbsDiff(decoder->Forward(y, CausalBias(5), x, bias, route, nullptr), decoder_mean),
            1e-6);
}

TEST(MoeModelTest, AssignmentRunsEachExpertOnlyOnItsExamples) {
  const std::vector<ExpertAssignment> assignments = AssignExperts(MixedRoute());
  ASSERT_EQ(assignments.size(), 3u);  // expert 3 has weight 0 everywhere
  EXPECT_EQ(assignments[0].expert, 0);
  EXPECT_TRUE(assignments[0].rows.equal(at::tensor({0, 2}, at::kLong)));
  EXPECT_TRUE(assignments[1].rows.equal(at::tensor({2, 3}, at::kLong)));
  EXPECT_TRUE(assignments[2].rows.equal(at::tensor({1, 3, 4}, at::kLong)));
  const std::vector<ExpertAssignment> all = AssignExperts(at::ones({2, 2}));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_FALSE(all[0].rows.defined());  // the whole batch, no gather
}

TEST(MoeModelTest, SparseExecutionEqualsThePlainWeightedSumWithItsGradients) {
  torch::manual_seed(5);
  const BartConfig config = TinyConfig();
  MoeEncoderLayer encoder(BartLayerOptions::Encoder(config), MoeLayerOptions(4));
  const at::Tensor x = at::randn({5, 6, config.d_model});
  const at::Tensor bias = PaddingBias(5, 6);
  const at::Tensor probe = at::randn({5, 6, config.d_model});

  const at::Tensor sparse_route = MixedRoute().requires_grad_();
  const at::Tensor sparse = encoder->Forward(x, bias, sparse_route);
  (sparse * probe).sum().backward();
  std::vector<at::Tensor> sparse_grads;
  for (const auto& p : encoder->parameters()) {
    sparse_grads.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
  }
  encoder->zero_grad();

  const at::Tensor plain_route = MixedRoute().requires_grad_();
  const at::Tensor plain = PlainEncoderMix(*encoder, x, bias, plain_route);
  (plain * probe).sum().backward();

  EXPECT_LT(MaxAbsDiff(sparse, plain), 1e-6);
  // The route gradient is exact everywhere, zero weights included (RouteGradient::kAllExperts).
  EXPECT_LT(MaxAbsDiff(sparse_route.grad(), plain_route.grad()), 1e-5);
  const auto params = encoder->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_LT(MaxAbsDiff(sparse_grads[i], params[i].grad()), 1e-5) << "parameter " << i;
  }

  MoeDecoderLayer decoder(BartLayerOptions::Decoder(config), MoeLayerOptions(4));
  const at::Tensor y = at::randn({5, 4, config.d_model});
  EXPECT_LT(MaxAbsDiff(decoder->Forward(y, CausalBias(4), x, bias, MixedRoute(), nullptr),
                       PlainDecoderMix(*decoder, y, CausalBias(4), x, bias, MixedRoute())),
            1e-6);
}

TEST(MoeModelTest, ExpertsWithZeroWeightDoNotRun) {
  torch::manual_seed(6);
  const BartConfig config = TinyConfig();
  MoeEncoderLayer encoder(BartLayerOptions::Encoder(config), MoeLayerOptions(4));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : encoder->expert(3).parameters()) p.fill_(std::numeric_limits<float>::quiet_NaN());
  }
  const at::Tensor x = at::randn({5, 6, config.d_model});
  const at::Tensor out = encoder->Forward(x, PaddingBias(5, 6), MixedRoute());
  EXPECT_TRUE(out.isfinite().all().item<bool>());
  at::Tensor expected = at::zeros_like(x);
  for (int64_t e = 0; e < 3; ++e) {
    expected += encoder->expert(e).Forward(x, PaddingBias(5, 6), at::Tensor()) *
                MixedRoute().select(1, e).view({-1, 1, 1});
  }
  EXPECT_LT(MaxAbsDiff(out, expected), 1e-6);
  // All weights zero: the weighted sum is zero.
  EXPECT_EQ(encoder->Forward(x, PaddingBias(5, 6), at::zeros({5, 4})).abs().max().item<float>(), 0);
}

TEST(MoeModelTest, GradientsReachRouteWeightsThroughTheModel) {
  torch::manual_seed(7);
  const BartConfig config = TinyConfig();
  absl::StatusOr<MoeBart> moe = MoeBart::Create(config, MoeOptions());
  ASSERT_TRUE(moe.ok()) << moe.status();
  const Batch batch = RandomBatch(config, 3, 8, 4);
  const at::Tensor logits = at::randn({3, 3, 3}).requires_grad_();
  RouteWeights routes{at::softmax(logits, -1), RandomHardRoutes(2, 3, 3).requires_grad_()};
  absl::StatusOr<BartOutput> out =
      moe->Forward(batch.input_ids, batch.attention_mask, batch.decoder_input_ids, routes);
  ASSERT_TRUE(out.ok()) << out.status();
  out->logits.logsumexp(-1).sum().backward();
  ASSERT_TRUE(logits.grad().defined());
  EXPECT_GT(logits.grad().abs().min().item<float>(), 0.0f);
  // Hard routes: the chosen entries get a gradient.
  const at::Tensor chosen = routes.decoder.grad().masked_select(routes.decoder.detach().ne(0));
  EXPECT_GT(chosen.abs().min().item<float>(), 0.0f);
}

TEST(MoeModelTest, RoutesOfTheWrongShapeAreAnError) {
  const BartConfig config = TinyConfig();
  absl::StatusOr<MoeBart> moe = MoeBart::Create(config, MoeOptions());
  ASSERT_TRUE(moe.ok()) << moe.status();
  const Batch batch = RandomBatch(config, 2, 5, 3);
  const std::vector<RouteWeights> bad = {
      {RandomSoftRoutes(3, 3, 3), RandomSoftRoutes(2, 2, 3)},  // batch
      {RandomSoftRoutes(3, 2, 2), RandomSoftRoutes(2, 2, 2)},  // experts
      {RandomSoftRoutes(2, 2, 3), RandomSoftRoutes(2, 2, 3)},  // encoder layers
      {RandomSoftRoutes(3, 2, 3), at::Tensor()},               // missing decoder routes
  };
  for (const RouteWeights& routes : bad) {
    absl::StatusOr<BartOutput> out =
        moe->Forward(batch.input_ids, batch.attention_mask, batch.decoder_input_ids, routes);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_FALSE(out.status().message().empty());
  }
}

TEST(MoeModelTest, CachedDecodingWithRoutesMatchesTheFullPass) {
  torch::manual_seed(8);
  const BartConfig config = TinyConfig();
  MoeOptions options;
  options.experts = 4;
  absl::StatusOr<MoeBart> moe = MoeBart::Create(config, options);
  ASSERT_TRUE(moe.ok()) << moe.status();
  moe->model()->eval();
  BartForConditionalGeneration& model = moe->model();
  const Batch batch = RandomBatch(config, 5, 7, 5);
  RouteWeights routes{MixedRoute().unsqueeze(0).expand({3, 5, 4}).contiguous(),
                      at::stack({MixedRoute(), MixedRoute().flip(0)})};
  const at::Tensor full =
      model->Forward(batch.input_ids, batch.attention_mask, batch.decoder_input_ids, &routes).logits;

  const at::Tensor memory = model->Encode(batch.input_ids, batch.attention_mask, &routes);
  DecoderCache cache = model->model->decoder->NewCache();
  for (int64_t t = 0; t < 4; ++t) {
    const at::Tensor step = model->Decode(batch.decoder_input_ids.slice(1, t, t + 1), memory,
                                          batch.attention_mask, &routes, &cache);
    EXPECT_LT(MaxAbsDiff(step.squeeze(1), full.select(1, t)), 1e-5) << "step " << t;
  }

  // Keep examples [4, 0, 0, 2] (e.g. surviving beams): the next step equals the full pass on
  // the reordered batch.
  const at::Tensor keep = at::tensor({4, 0, 0, 2}, at::kLong);
  cache.Reorder(keep);
  RouteWeights kept_routes{routes.encoder.index_select(1, keep),
                           routes.decoder.index_select(1, keep)};
  const at::Tensor kept_full = model
                                   ->Forward(batch.input_ids.index_select(0, keep),
                                             batch.attention_mask.index_select(0, keep),
                                             batch.decoder_input_ids.index_select(0, keep),
                                             &kept_routes)
                                   .logits;
  const at::Tensor step =
      model->Decode(batch.decoder_input_ids.index_select(0, keep).slice(1, 4, 5),
                    memory.index_select(0, keep), batch.attention_mask.index_select(0, keep),
                    &kept_routes, &cache);
  EXPECT_LT(MaxAbsDiff(step.squeeze(1), kept_full.select(1, 4)), 1e-5);
}

TEST(MoeModelTest, InitialisationCopiesTheDenseModelAndPerturbsExperts) {
  torch::manual_seed(9);
  const BartConfig config = TinyConfig();
  BartForConditionalGeneration dense(config);
  MoeOptions options;
  options.experts = 2;
  options.init_eps = 1e-2;
  options.encoder_vanilla_layers = {2};
  absl::StatusOr<MoeBart> moe = MoeBart::FromDense(dense, options);
  ASSERT_TRUE(moe.ok()) << moe.status();
  auto moe_params = moe->model()->named_parameters();
  auto dense_params = dense->named_parameters();
  EXPECT_TRUE(moe_params["model.shared.weight"].equal(dense_params["model.shared.weight"]));
  EXPECT_TRUE(moe_params["model.decoder.embed_positions.weight"].equal(
      dense_params["model.decoder.embed_positions.weight"]));
  EXPECT_TRUE(moe_params["model.encoder.layers.2.fc1.weight"].equal(
      dense_params["model.encoder.layers.2.fc1.weight"]));  // vanilla: dense, no noise
  EXPECT_EQ(moe_params.find("model.encoder.layers.0.fc1.weight"), nullptr);
  const at::Tensor dense_fc1 = dense_params["model.encoder.layers.0.fc1.weight"];
  const at::Tensor noise0 = moe_params["model.encoder.layers.0.experts.0.fc1.weight"] - dense_fc1;
  const at::Tensor noise1 = moe_params["model.encoder.layers.0.experts.1.fc1.weight"] - dense_fc1;
  EXPECT_NEAR(noise0.std().item<double>(), 1e-2, 2e-3);
  EXPECT_NEAR(noise1.std().item<double>(), 1e-2, 2e-3);
  EXPECT_FALSE(noise0.equal(noise1));
  EXPECT_TRUE(moe->model()->named_buffers()["final_logits_bias"].equal(
      dense->named_buffers()["final_logits_bias"]));
  EXPECT_EQ(moe->shape().experts, 2);
  EXPECT_EQ(moe->shape().encoder_layers, 3);
}

TEST(MoeModelTest, InvalidOptionsNameTheField) {
  const BartConfig config = TinyConfig();
  MoeOptions options;
  options.encoder_vanilla_layers = {3};
  absl::Status status = ValidateMoeOptions(options, config);
  EXPECT_NE(status.message().find("encoder_vanilla_layers: layer 3 is outside [0, 3)"),
            std::string::npos)
      << status;
  options = MoeOptions();
  options.decoder_vanilla_layers = {1, 1};
  EXPECT_NE(ValidateMoeOptions(options, config).message().find("decoder_vanilla_layers"),
            std::string::npos);
  options = MoeOptions();
  options.experts = 0;
  EXPECT_FALSE(MoeBart::Create(config, options).ok());
  EXPECT_TRUE(ValidateMoeOptions(MoeOptions(), config).ok());
}

}  // namespace
}  // namespace taskmoe
