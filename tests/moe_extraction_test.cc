// Initialising the MoE model from the bart_tiny Hugging Face directory and extracting one task's
// dense BART as a directory that LoadBartDirectory reads back.

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "moe/formats/bart_config.h"
#include "moe/model/bart_weights.h"
#include "moe/model/generation.h"
#include "moe/model/moe_model.h"
#include "tests/bart_fixture.h"

namespace taskmoe {
namespace {

using ::taskmoe::testing::BartTinyDir;
using ::taskmoe::testing::LoadBartTiny;
using ::taskmoe::testing::MaxAbsDiff;

std::string TempDir(const std::string& name) {
  const char* root = std::getenv("TEST_TMPDIR");
  return std::string(root != nullptr ? root : "/tmp") + "/" + name;
}

TEST(MoeExtractionTest, ExtractedModelSavedAndLoadedReproducesTheMoeLogits) {
  torch::manual_seed(11);
  MoeOptions options;
  options.experts = 3;
  options.init_eps = 1e-2;  // experts clearly differ, so a wrong expert would show
  options.encoder_vanilla_layers = {0};
  absl::StatusOr<MoeBart> moe = MoeBart::FromDenseDirectory(BartTinyDir(), options);
  ASSERT_TRUE(moe.ok()) << moe.status();
  const BartConfig& config = moe->config();
  const int64_t experts = options.experts;

  // One task's hard routes: layer l on expert (l + 2) % E.
  RouteWeights task;
  task.encoder = at::zeros({config.encoder_layers, 1, experts});
  task.decoder = at::zeros({config.decoder_layers, 1, experts});
  for (int64_t l = 0; l < config.encoder_layers; ++l) task.encoder[l][0][(l + 2) % experts] = 1;
  for (int64_t l = 0; l < config.decoder_layers; ++l) task.decoder[l][0][(l + 2) % experts] = 1;

  absl::StatusOr<BartForConditionalGeneration> dense = moe->ExtractDense(task);
  ASSERT_TRUE(dense.ok()) << dense.status();
  const std::string dir = TempDir("extracted_task");
  ASSERT_TRUE(SaveBartDirectory(*dense, dir).ok());
  ASSERT_TRUE(std::filesystem::exists(dir + "/config.json"));
  absl::StatusOr<BartForConditionalGeneration> loaded = LoadBartDirectory(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();

  const int64_t batch = 2;
  const at::Tensor input_ids = at::randint(3, config.vocab_size, {batch, 11}, at::kLong);
  const at::Tensor attention_mask = at::ones({batch, 11}, at::kLong);
  const at::Tensor decoder_input_ids = at::randint(3, config.vocab_size, {batch, 6}, at::kLong);
  RouteWeights routes{task.encoder.expand({config.encoder_layers, batch, experts}),
                      task.decoder.expand({config.decoder_layers, batch, experts})};
  absl::StatusOr<BartOutput> moe_out =
      moe->Forward(input_ids, attention_mask, decoder_input_ids, routes);
  ASSERT_TRUE(moe_out.ok()) << moe_out.status();
  const at::Tensor dense_logits =
      (*loaded)->Forward(input_ids, attention_mask, decoder_input_ids).logits;
  EXPECT_EQ(MaxAbsDiff(moe_out->logits, dense_logits), 0.0);

  // Another task's routes give another model.
  RouteWeights other{task.encoder.roll(1, 2), task.decoder.roll(1, 2)};
  absl::StatusOr<BartForConditionalGeneration> other_dense = moe->ExtractDense(other);
  ASSERT_TRUE(other_dense.ok()) << other_dense.status();
  EXPECT_GT(MaxAbsDiff((*other_dense)->Forward(input_ids, attention_mask, decoder_input_ids).logits,
                       dense_logits),
            1e-4);
}

// Beam search with the KV cache on a batch whose examples have different hard routes equals
// beam search on each example's extracted dense model.
TEST(MoeExtractionTest, BeamSearchWithMixedHardRoutesMatchesTheExtractedModels) {
  torch::manual_seed(13);
  MoeOptions options;
  options.experts = 3;
  options.init_eps = 5e-2;
  absl::StatusOr<MoeBart> moe = MoeBart::FromDenseDirectory(BartTinyDir(), options);
  ASSERT_TRUE(moe.ok()) << moe.status();
  const BartConfig& config = moe->config();
  RouteWeights routes;
  routes.encoder = at::one_hot(at::randint(0, 3, {config.encoder_layers, 2}, at::kLong), 3)
                       .to(at::kFloat);
  routes.decoder = at::one_hot(at::randint(0, 3, {config.decoder_layers, 2}, at::kLong), 3)
                       .to(at::kFloat);
  routes.decoder.select(1, 1).copy_(routes.decoder.select(1, 0).roll(1, 1));  // differ surely
  const at::Tensor input_ids = at::randint(3, config.vocab_size, {2, 7}, at::kLong);
  const at::Tensor attention_mask = at::ones({2, 7}, at::kLong);
  GenerationOptions generation;
  generation.num_beams = 3;
  generation.max_length = 8;
  absl::StatusOr<GenerationOutput> mixed =
      Generate(moe->model(), input_ids, attention_mask, generation, &routes);
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  for (int64_t example = 0; example < 2; ++example) {
    RouteWeights task{routes.encoder.slice(1, example, example + 1),
                      routes.decoder.slice(1, example, example + 1)};
    absl::StatusOr<BartForConditionalGeneration> dense = moe->ExtractDense(task);
    ASSERT_TRUE(dense.ok()) << dense.status();
    absl::StatusOr<GenerationOutput> alone =
        Generate(*dense, input_ids.slice(0, example, example + 1),
                 attention_mask.slice(0, example, example + 1), generation);
    ASSERT_TRUE(alone.ok()) << alone.status();
    const at::Tensor expected = alone->sequences[0];
    const at::Tensor got = mixed->sequences[example].slice(0, 0, expected.size(0));
    EXPECT_TRUE(got.equal(expected)) << "example " << example << ": " << got << " vs " << expected;
    EXPECT_NEAR(mixed->sequence_scores[example].item<double>(),
                alone->sequence_scores[0].item<double>(), 1e-4);
  }
}

TEST(MoeExtractionTest, InitialisationFromTheDirectoryKeepsTheDenseModelAtZeroNoise) {
  MoeOptions options;
  options.experts = 2;
  options.init_eps = 0.0;
  absl::StatusOr<MoeBart> moe = MoeBart::FromDenseDirectory(BartTinyDir(), options);
  ASSERT_TRUE(moe.ok()) << moe.status();
  BartForConditionalGeneration dense = LoadBartTiny();
  const BartConfig& config = moe->config();
  const at::Tensor input_ids = at::randint(3, config.vocab_size, {2, 9}, at::kLong);
  const at::Tensor decoder_input_ids = at::randint(3, config.vocab_size, {2, 4}, at::kLong);
  RouteWeights routes{at::softmax(at::randn({config.encoder_layers, 2, 2}), -1),
                      at::softmax(at::randn({config.decoder_layers, 2, 2}), -1)};
  absl::StatusOr<BartOutput> out = moe->Forward(input_ids, at::Tensor(), decoder_input_ids, routes);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_LT(MaxAbsDiff(out->logits, dense->Forward(input_ids, at::Tensor(), decoder_input_ids).logits),
            1e-5);
}

TEST(MoeExtractionTest, MissingDirectoryIsAnError) {
  absl::StatusOr<MoeBart> moe = MoeBart::FromDenseDirectory(TempDir("no_such_model"), MoeOptions());
  EXPECT_FALSE(moe.ok());
}

TEST(MoeExtractionTest, ConfigJsonReadsBackAsTheSameConfig) {
  absl::StatusOr<BartConfig> original = LoadBartConfig(BartTinyDir() + "/config.json");
  ASSERT_TRUE(original.ok()) << original.status();
  absl::StatusOr<BartConfig> round_trip = ParseBartConfig(BartConfigJson(*original), "written");
  ASSERT_TRUE(round_trip.ok()) << round_trip.status();
  EXPECT_EQ(round_trip->vocab_size, original->vocab_size);
  EXPECT_EQ(round_trip->d_model, original->d_model);
  EXPECT_EQ(round_trip->encoder_layers, original->encoder_layers);
  EXPECT_EQ(round_trip->decoder_layers, original->decoder_layers);
  EXPECT_EQ(round_trip->encoder_attention_heads, original->encoder_attention_heads);
  EXPECT_EQ(round_trip->decoder_ffn_dim, original->decoder_ffn_dim);
  EXPECT_EQ(round_trip->max_position_embeddings, original->max_position_embeddings);
  EXPECT_EQ(round_trip->activation_function, original->activation_function);
  EXPECT_EQ(round_trip->scale_embedding, original->scale_embedding);
  EXPECT_EQ(round_trip->dropout, original->dropout);
  EXPECT_EQ(round_trip->decoder_start_token_id, original->decoder_start_token_id);
  EXPECT_EQ(round_trip->forced_eos_token_id, original->forced_eos_token_id);
}

}  // namespace
}  // namespace taskmoe
