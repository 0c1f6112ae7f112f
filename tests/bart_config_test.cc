#include "moe/formats/bart_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "tests/shared_data.h"

namespace taskmoe {
namespace {

std::string FixtureConfigText() {
  std::ifstream in(testing::SharedPath("fixtures/bart_tiny/config.json"));
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(BartConfig, LoadsFixture) {
  absl::StatusOr<BartConfig> config =
      LoadBartConfig(testing::SharedPath("fixtures/bart_tiny/config.json"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->vocab_size, 96);
  EXPECT_EQ(config->d_model, 32);
  EXPECT_EQ(config->encoder_layers, 2);
  EXPECT_EQ(config->decoder_layers, 2);
  EXPECT_EQ(config->encoder_attention_heads, 4);
  EXPECT_EQ(config->decoder_ffn_dim, 64);
  EXPECT_EQ(config->max_position_embeddings, 64);
  EXPECT_FALSE(config->scale_embedding);
  EXPECT_EQ(config->activation_function, Activation::kGelu);
  EXPECT_DOUBLE_EQ(config->dropout, 0.1);
  EXPECT_DOUBLE_EQ(config->attention_dropout, 0.1);
  EXPECT_DOUBLE_EQ(config->activation_dropout, 0.1);
  EXPECT_EQ(config->pad_token_id, 1);
  EXPECT_EQ(config->bos_token_id, 0);
  EXPECT_EQ(config->eos_token_id, 2);
  EXPECT_EQ(config->decoder_start_token_id, 2);
  EXPECT_EQ(config->forced_eos_token_id, 2);
}

TEST(BartConfig, MissingRequiredFieldNamesFileAndField) {
  nlohmann::json root = nlohmann::json::parse(FixtureConfigText());
  root.erase("encoder_ffn_dim");
  absl::StatusOr<BartConfig> config = ParseBartConfig(root.dump(), "dir/config.json");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("dir/config.json"), std::string::npos);
  EXPECT_NE(config.status().message().find("encoder_ffn_dim"), std::string::npos);
}

TEST(BartConfig, OptionalFieldsTakeHuggingFaceDefaults) {
  nlohmann::json root = nlohmann::json::parse(FixtureConfigText());
  for (const char* key : {"scale_embedding", "activation_function", "attention_dropout",
                          "activation_dropout", "forced_eos_token_id"}) {
    root.erase(key);
  }
  root["activation_function"] = "relu";
  root["forced_eos_token_id"] = nullptr;
  absl::StatusOr<BartConfig> config = ParseBartConfig(root.dump(), "c");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->activation_function, Activation::kRelu);
  EXPECT_DOUBLE_EQ(config->attention_dropout, 0.0);
  EXPECT_FALSE(config->forced_eos_token_id.has_value());
}

TEST(BartConfig, RejectsValuesThatChangeTheArchitecture) {
  const nlohmann::json base = nlohmann::json::parse(FixtureConfigText());
  struct Case {
    const char* key;
    nlohmann::json value;
  };
  for (const Case& c : {Case{"normalize_before", true}, Case{"add_final_layer_norm", true},
                        Case{"tie_word_embeddings", false}, Case{"activation_function", "swish"},
                        Case{"d_model", 30}, Case{"vocab_size", -1}, Case{"dropout", 1.5},
                        Case{"eos_token_id", 96}}) {
    nlohmann::json root = base;
    root[c.key] = c.value;
    absl::StatusOr<BartConfig> config = ParseBartConfig(root.dump(), "c.json");
    ASSERT_FALSE(config.ok()) << c.key;
    EXPECT_NE(config.status().message().find("c.json"), std::string::npos);
  }
  EXPECT_FALSE(ParseBartConfig("[1, 2]", "c.json").ok());
  EXPECT_EQ(LoadBartConfig("/nonexistent/config.json").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(BartConfig, SizesHaveUpperBoundsSoASmallFileCannotExhaustMemory) {
  const nlohmann::json base = nlohmann::json::parse(FixtureConfigText());
  struct Case {
    const char* key;
    nlohmann::json value;
    const char* expected;
  };
  for (const Case& c :
       {Case{"max_position_embeddings", 1e12,
             "c.json: field 'max_position_embeddings' must be an integer in [1, 65536], got "
             "1000000000000.0"},
        Case{"max_position_embeddings", int64_t{1} << 40,
             "c.json: field 'max_position_embeddings' must be an integer in [1, 65536], got "
             "1099511627776"},
        Case{"encoder_layers", 1000000000,
             "c.json: field 'encoder_layers' must be an integer in [1, 256], got 1000000000"},
        Case{"vocab_size", 1 << 21,
             "c.json: field 'vocab_size' must be an integer in [1, 1048576], got 2097152"}}) {
    nlohmann::json root = base;
    root[c.key] = c.value;
    absl::StatusOr<BartConfig> config = ParseBartConfig(root.dump(), "c.json");
    ASSERT_FALSE(config.ok()) << c.key;
    EXPECT_EQ(config.status().message(), c.expected);
  }
  // Each size within its bound, the whole beyond the parameter limit.
  nlohmann::json root = base;
  root["vocab_size"] = 1 << 20;
  root["d_model"] = 1 << 14;
  root["encoder_attention_heads"] = 16;
  root["decoder_attention_heads"] = 16;
  absl::StatusOr<BartConfig> config = ParseBartConfig(root.dump(), "c.json");
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(absl::StartsWith(config.status().message(), "c.json: the model would hold 2.36e+10 "
                                                          "parameters (vocab_size 1048576"))
      << config.status();
}

}  // namespace
}  // namespace taskmoe
