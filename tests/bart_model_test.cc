#include "moe/model/bart.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "moe/formats/safetensors.h"
#include "moe/model/bart_weights.h"
#include "tests/bart_fixture.h"

namespace taskmoe {
namespace {

using testing::BartTinyCase;
using testing::BartTinyDir;
using testing::LoadBartTiny;
using testing::MaxAbsDiff;

constexpr double kTolerance = 1e-4;

TEST(BartModel, MatchesHuggingFaceOnFixture) {
  BartForConditionalGeneration model = LoadBartTiny();
  TensorMap c = BartTinyCase();
  torch::NoGradGuard no_grad;
  BartOutput out = model->Forward(c.at("input_ids"), c.at("attention_mask"),
                                  c.at("decoder_input_ids"), nullptr, /*output_hidden_states=*/true);
  EXPECT_LT(MaxAbsDiff(out.logits, c.at("logits")), kTolerance);
  EXPECT_LT(MaxAbsDiff(out.encoder_last_hidden_state, c.at("encoder_last_hidden_state")), kTolerance);
  EXPECT_LT(MaxAbsDiff(out.decoder_last_hidden_state, c.at("decoder_last_hidden_state")), kTolerance);
  ASSERT_EQ(out.encoder_hidden_states.size(), 3u);
  ASSERT_EQ(out.decoder_hidden_states.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    EXPECT_LT(MaxAbsDiff(out.encoder_hidden_states[i],
                         c.at("encoder_hidden_states." + std::to_string(i))), kTolerance);
    EXPECT_LT(MaxAbsDiff(out.decoder_hidden_states[i],
                         c.at("decoder_hidden_states." + std::to_string(i))), kTolerance);
  }
}

TEST(BartModel, ParameterNamesAreHuggingFaceNames) {
  BartForConditionalGeneration model = LoadBartTiny();
  std::set<std::string> names;
  for (const auto& item : model->named_parameters()) names.insert(item.key());
  for (const auto& item : model->named_buffers()) names.insert(item.key());
  absl::StatusOr<TensorMap> file = ReadSafetensors(BartTinyDir() + "/model.safetensors");
  ASSERT_TRUE(file.ok());
  std::set<std::string> file_names;
  for (const auto& [name, tensor] : *file) file_names.insert(name);
  // The fixture stores each tensor once under its Hugging Face name (92 tensors).
  EXPECT_EQ(names, file_names);
  EXPECT_EQ(names.count("model.encoder.layers.0.self_attn.k_proj.weight"), 1u);
  EXPECT_EQ(names.count("model.decoder.layers.1.encoder_attn_layer_norm.bias"), 1u);
  EXPECT_EQ(names.count("model.encoder.layernorm_embedding.weight"), 1u);
  EXPECT_EQ(names.count("final_logits_bias"), 1u);
}

TEST(BartModel, RoutesAreIgnoredByDenseLayers) {
  BartForConditionalGeneration model = LoadBartTiny();
  TensorMap c = BartTinyCase();
  torch::NoGradGuard no_grad;
  RouteWeights routes{at::rand({2, 3, 4}), at::rand({2, 3, 4})};
  at::Tensor dense =
      model->Forward(c.at("input_ids"), c.at("attention_mask"), c.at("decoder_input_ids")).logits;
  at::Tensor routed = model->Forward(c.at("input_ids"), c.at("attention_mask"),
                                     c.at("decoder_input_ids"), &routes).logits;
  EXPECT_TRUE(at::equal(dense, routed));
}

TEST(BartModel, CachedDecodingEqualsFullRecomputation) {
  BartForConditionalGeneration model = LoadBartTiny();
  TensorMap c = BartTinyCase();
  torch::NoGradGuard no_grad;
  const at::Tensor& decoder_ids = c.at("decoder_input_ids");
  const at::Tensor encoder = model->Encode(c.at("input_ids"), c.at("attention_mask"));
  DecoderCache cache = model->model->decoder->NewCache();
  // First two positions at once, then one at a time: the causal bias must account for the past.
  std::vector<at::Tensor> pieces;
  pieces.push_back(model->Decode(decoder_ids.slice(1, 0, 2), encoder, c.at("attention_mask"),
                                 nullptr, &cache));
  for (int64_t t = 2; t < decoder_ids.size(1); ++t) {
    pieces.push_back(model->Decode(decoder_ids.slice(1, t, t + 1), encoder,
                                   c.at("attention_mask"), nullptr, &cache));
  }
  EXPECT_EQ(cache.length, decoder_ids.size(1));
  EXPECT_LT(MaxAbsDiff(at::cat(pieces, 1), c.at("logits")), kTolerance);
}

TEST(BartModel, DropoutOnlyInTraining) {
  BartForConditionalGeneration model = LoadBartTiny();
  TensorMap c = BartTinyCase();
  torch::NoGradGuard no_grad;
  auto logits = [&] {
    return model->Forward(c.at("input_ids"), c.at("attention_mask"), c.at("decoder_input_ids"))
        .logits;
  };
  EXPECT_TRUE(at::equal(logits(), logits()));
  model->train();
  at::manual_seed(1);
  const at::Tensor first = logits();
  const at::Tensor second = logits();
  EXPECT_GT(MaxAbsDiff(first, second), 1e-3);
  EXPECT_GT(MaxAbsDiff(first, c.at("logits")), 1e-3);
}

TEST(BartWeights, SaveLoadRoundTripAndTiedEmbeddingUnderAnyName) {
  BartForConditionalGeneration model = LoadBartTiny();
  const std::string path = ::testing::TempDir() + "/saved.safetensors";
  ASSERT_TRUE(SaveBartWeights(model, path).ok());
  absl::StatusOr<TensorMap> saved = ReadSafetensors(path);
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->size(), 92u);
  for (const char* name : kTiedEmbeddingNames) {
    SCOPED_TRACE(name);
    TensorMap renamed = *saved;
    at::Tensor embedding = renamed.at("model.shared.weight");
    renamed.erase("model.shared.weight");
    renamed[name] = embedding;
    // A second identical copy under another tied name is accepted as well.
    renamed["lm_head.weight"] = embedding.clone();
    BartForConditionalGeneration fresh(model->config());
    ASSERT_TRUE(LoadBartWeights(renamed, "renamed", fresh).ok());
    for (const auto& item : model->named_parameters()) {
      EXPECT_TRUE(at::equal(item.value(), fresh->named_parameters()[item.key()])) << item.key();
    }
  }
}

TEST(BartWeights, HalfPrecisionCheckpointLoadsAsFloat) {
  BartForConditionalGeneration model = LoadBartTiny();
  TensorMap half;
  for (const auto& [name, tensor] : BartStateDict(model)) half[name] = tensor.to(at::kBFloat16);
  BartForConditionalGeneration fresh(model->config());
  ASSERT_TRUE(LoadBartWeights(half, "bf16", fresh).ok());
  const at::Tensor& weight = fresh->model->decoder->embed_positions->weight;
  EXPECT_EQ(weight.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(weight, model->model->decoder->embed_positions->weight
                                    .to(at::kBFloat16).to(at::kFloat)));
  EXPECT_GT(MaxAbsDiff(weight, model->model->decoder->embed_positions->weight), 0);
}

TEST(BartWeights, AcceptsBartModelCheckpointWithoutPrefixOrBias) {
  BartForConditionalGeneration model = LoadBartTiny();
  TensorMap base_model;
  for (const auto& [name, tensor] : BartStateDict(model)) {
    if (name == "final_logits_bias") continue;
    base_model[name.substr(std::string("model.").size())] = tensor;
  }
  BartForConditionalGeneration fresh(model->config());
  ASSERT_TRUE(LoadBartWeights(base_model, "base", fresh).ok());
  EXPECT_EQ(fresh->final_logits_bias.abs().sum().item<float>(), 0.f);
  EXPECT_TRUE(at::equal(fresh->model->encoder->embed_positions->weight,
                        model->model->encoder->embed_positions->weight));
}

TEST(BartWeights, ListsMissingUnexpectedAndMisshapedTensors) {
  BartForConditionalGeneration model = LoadBartTiny();
  TensorMap state = BartStateDict(model);
  state.erase("model.encoder.layers.1.fc2.bias");
  state.erase("model.decoder.layers.0.self_attn.q_proj.weight");
  state["model.encoder.layers.0.extra"] = at::zeros({1});
  state["model.decoder.layers.1.fc1.weight"] = at::zeros({64, 31});
  BartForConditionalGeneration fresh(model->config());
  absl::Status status = LoadBartWeights(state, "bad.safetensors", fresh);
  ASSERT_FALSE(status.ok());
  const std::string message(status.message());
  for (const char* expected :
       {"bad.safetensors", "missing: ", "model.decoder.layers.0.self_attn.q_proj.weight",
        "model.encoder.layers.1.fc2.bias", "unexpected: model.encoder.layers.0.extra",
        "model.decoder.layers.1.fc1.weight has shape [64, 31], the config implies [64, 32]"}) {
    EXPECT_NE(message.find(expected), std::string::npos) << expected << " not in " << message;
  }
  TensorMap differing = BartStateDict(model);
  differing["lm_head.weight"] = differing.at("model.shared.weight") + 1;
  EXPECT_FALSE(LoadBartWeights(differing, "tied", fresh).ok());
}

TEST(BartWeights, ShapeThatDisagreesWithConfigIsAClearError) {
  const std::string dir = ::testing::TempDir() + "/wider_vocab";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(BartTinyDir() + "/model.safetensors", dir + "/model.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
  std::ifstream in(BartTinyDir() + "/config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  config["vocab_size"] = 100;
  std::ofstream(dir + "/config.json") << config.dump();
  absl::StatusOr<BartForConditionalGeneration> model = LoadBartDirectory(dir);
  ASSERT_FALSE(model.ok());
  const std::string message(model.status().message());
  EXPECT_NE(message.find("model.shared.weight has shape [96, 32], the config implies [100, 32]"),
            std::string::npos) << message;
  EXPECT_NE(message.find("config.json"), std::string::npos);
}

TEST(BartWeights, MissingDirectoryIsNotFound) {
  EXPECT_EQ(LoadBartDirectory("/nonexistent").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace taskmoe
