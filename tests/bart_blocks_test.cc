// The MoE extension point: custom encoder/decoder blocks built by factories receive their layer's
// route rows, keep their own decoder caches, and see routes repeated per beam in beam search.

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <memory>
#include <vector>

#include "moe/model/bart.h"
#include "moe/model/bart_weights.h"
#include "moe/model/generation.h"
#include "tests/bart_fixture.h"

namespace taskmoe {
namespace {

// Wraps a dense layer and records the routes it was given.
class RecordingEncoderBlock : public EncoderBlock {
 public:
  explicit RecordingEncoderBlock(const BartConfig& config)
      : layer(register_module("layer", BartEncoderLayer(BartLayerOptions::Encoder(config)))) {}
  at::Tensor Forward(const at::Tensor& hidden_states, const at::Tensor& attention_bias,
                     const at::Tensor& route) override {
    routes_seen.push_back(route);
    return layer->Forward(hidden_states, attention_bias, route);
  }
  BartEncoderLayer layer;
  std::vector<at::Tensor> routes_seen;
};

// Counts its reorders in a counter of the block that made it, which outlives the cache (the
// generation that owns the cache frees it before the test looks).
struct CountingCache : DecoderBlockCache {
  std::unique_ptr<DecoderBlockCache> inner;
  std::shared_ptr<int> reorders;
  void Reorder(const at::Tensor& batch_index) override {
    ++*reorders;
    inner->Reorder(batch_index);
  }
};

class RecordingDecoderBlock : public DecoderBlock {
 public:
  explicit RecordingDecoderBlock(const BartConfig& config)
      : layer(register_module("layer", BartDecoderLayer(BartLayerOptions::Decoder(config)))) {}
  at::Tensor Forward(const at::Tensor& hidden_states, const at::Tensor& self_attention_bias,
                     const at::Tensor& encoder_hidden_states, const at::Tensor& cross_attention_bias,
                     const at::Tensor& route, DecoderBlockCache* cache) override {
    routes_seen.push_back(route);
    DecoderBlockCache* inner = nullptr;
    if (cache != nullptr) {
      auto* counting = dynamic_cast<CountingCache*>(cache);
      EXPECT_NE(counting, nullptr) << "the decoder passed a cache this block did not make";
      if (counting != nullptr) inner = counting->inner.get();
      ++cached_steps;
    }
    return layer->Forward(hidden_states, self_attention_bias, encoder_hidden_states,
                          cross_attention_bias, route, inner);
  }
  std::unique_ptr<DecoderBlockCache> NewCache() const override {
    auto cache = std::make_unique<CountingCache>();
    cache->inner = layer->NewCache();
    cache->reorders = reorders;
    return cache;
  }
  BartDecoderLayer layer;
  std::vector<at::Tensor> routes_seen;
  int cached_steps = 0;
  std::shared_ptr<int> reorders = std::make_shared<int>(0);
};

class BartBlocksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BartForConditionalGeneration dense = testing::LoadBartTiny();
    BlockFactories factories;
    factories.encoder = [this](const BartConfig& config, int64_t) {
      encoder_blocks_.push_back(std::make_shared<RecordingEncoderBlock>(config));
      return encoder_blocks_.back();
    };
    factories.decoder = [this](const BartConfig& config, int64_t) {
      decoder_blocks_.push_back(std::make_shared<RecordingDecoderBlock>(config));
      return decoder_blocks_.back();
    };
    model_ = BartForConditionalGeneration(dense->config(), factories);
    // The wrapped layers' names gain ".layer": load the dense weights under those names.
    TensorMap renamed;
    for (const auto& [name, tensor] : BartStateDict(dense)) {
      std::string target = name;
      for (const char* side : {"model.encoder.layers.", "model.decoder.layers."}) {
        if (name.rfind(side, 0) == 0) {
          const size_t dot = name.find('.', std::string(side).size());
          target = name.substr(0, dot) + ".layer" + name.substr(dot);
        }
      }
      renamed[target] = tensor;
    }
    ASSERT_TRUE(LoadIntoModule(renamed, "renamed", *model_).ok());
    model_->eval();
  }

  std::vector<std::shared_ptr<RecordingEncoderBlock>> encoder_blocks_;
  std::vector<std::shared_ptr<RecordingDecoderBlock>> decoder_blocks_;
  BartForConditionalGeneration model_{nullptr};
  TensorMap c_ = testing::BartTinyCase();
};

TEST_F(BartBlocksTest, EachBlockGetsItsLayersRouteAndOutputsStayExact) {
  torch::NoGradGuard no_grad;
  RouteWeights routes{at::rand({2, 3, 4}), at::rand({2, 3, 4})};
  BartOutput out = model_->Forward(c_.at("input_ids"), c_.at("attention_mask"),
                                   c_.at("decoder_input_ids"), &routes);
  EXPECT_LT(testing::MaxAbsDiff(out.logits, c_.at("logits")), 1e-4);
  for (int64_t l = 0; l < 2; ++l) {
    ASSERT_EQ(encoder_blocks_[l]->routes_seen.size(), 1u);
    EXPECT_TRUE(at::equal(encoder_blocks_[l]->routes_seen[0], routes.encoder[l]));
    ASSERT_EQ(decoder_blocks_[l]->routes_seen.size(), 1u);
    EXPECT_TRUE(at::equal(decoder_blocks_[l]->routes_seen[0], routes.decoder[l]));
  }
}

TEST_F(BartBlocksTest, BeamSearchRepeatsRoutesPerBeamAndReordersBlockCaches) {
  RouteWeights routes{at::rand({2, 3, 4}), at::rand({2, 3, 4})};
  GenerationOptions options;
  options.max_length = 12;
  options.num_beams = 2;
  absl::StatusOr<GenerationOutput> out =
      Generate(model_, c_.at("input_ids"), c_.at("attention_mask"), options, &routes);
  ASSERT_TRUE(out.ok()) << out.status();
  // Encoder: one pass over the 3 examples. Decoder: every step sees 3 x 2 beam rows.
  EXPECT_TRUE(at::equal(encoder_blocks_[1]->routes_seen.at(0), routes.encoder[1]));
  const at::Tensor expected = routes.decoder[1].repeat_interleave(2, 0);
  ASSERT_FALSE(decoder_blocks_[1]->routes_seen.empty());
  for (const at::Tensor& seen : decoder_blocks_[1]->routes_seen) EXPECT_TRUE(at::equal(seen, expected));
  // Every step decoded with the block's cache; the surviving beams are selected after each.
  EXPECT_EQ(decoder_blocks_[1]->cached_steps,
            static_cast<int>(decoder_blocks_[1]->routes_seen.size()));
  EXPECT_EQ(*decoder_blocks_[1]->reorders, decoder_blocks_[1]->cached_steps);
}

}  // namespace
}  // namespace taskmoe
