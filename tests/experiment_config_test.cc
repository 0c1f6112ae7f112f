#include "moe/train/experiment_config.h"

#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace taskmoe {
namespace {

TEST(ExperimentConfig, DefaultsFollowTheOriginal) {
  ExperimentConfig config;
  EXPECT_EQ(config.model().experts(), 3);
  EXPECT_FLOAT_EQ(config.model().init_eps(), 1e-8f);
  EXPECT_FLOAT_EQ(config.optimizer().lr(), 1e-5f);
  EXPECT_FLOAT_EQ(config.optimizer().router_lr(), 1e-3f);
  EXPECT_FLOAT_EQ(config.optimizer().max_grad_norm(), 0.1f);
  EXPECT_EQ(config.training().gradient_accumulation_steps(), 2);
  EXPECT_EQ(config.evaluation().generation_start(), EvaluationConfig::DECODER_START);
  // The plugin is the config's choice: none is implied.
  EXPECT_FALSE(config.routing().has_plugin());
}

TEST(ExperimentConfig, ParseErrorNamesFileLineAndField) {
  auto config = ParseExperimentConfig("optimizer {\n  lr: 1e-4\n  learning_rate: 2\n}\n",
                                      "my.pbtxt");
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(absl::StrContains(config.status().message(), "my.pbtxt:3:")) << config.status();
  EXPECT_TRUE(absl::StrContains(config.status().message(), "learning_rate")) << config.status();
}

TEST(ExperimentConfig, OverridesSetScalarsStringsEnumsListsAndMessages) {
  ExperimentConfig config;
  config.mutable_model()->add_encoder_vanilla_layers(5);
  ASSERT_TRUE(ApplyOverride("optimizer.lr=1e-4", &config).ok());
  ASSERT_TRUE(ApplyOverride("data.data_dir=/tmp/my data", &config).ok());
  ASSERT_TRUE(ApplyOverride("data.batching=TASK_GROUPED", &config).ok());
  ASSERT_TRUE(ApplyOverride("model.encoder_vanilla_layers=0,2", &config).ok());
  ASSERT_TRUE(ApplyOverride("model.random_init={d_model: 64 encoder_layers: 1}", &config).ok());
  ASSERT_TRUE(ApplyOverride("output_dir=\"runs/x\"", &config).ok());
  EXPECT_FLOAT_EQ(config.optimizer().lr(), 1e-4f);
  EXPECT_EQ(config.data().data_dir(), "/tmp/my data");
  EXPECT_EQ(config.data().batching(), DataConfig::TASK_GROUPED);
  ASSERT_EQ(config.model().encoder_vanilla_layers_size(), 2);  // replaced, not appended
  EXPECT_EQ(config.model().encoder_vanilla_layers(1), 2);
  EXPECT_EQ(config.model().random_init().d_model(), 64);
  EXPECT_EQ(config.model().random_init().encoder_layers(), 1);
  EXPECT_EQ(config.output_dir(), "runs/x");
}

TEST(ExperimentConfig, BadOverridesNameThePath) {
  ExperimentConfig config;
  absl::Status unknown = ApplyOverride("optimizer.learning_rate=1", &config);
  EXPECT_TRUE(absl::StrContains(unknown.message(), "learning_rate")) << unknown;
  absl::Status not_message = ApplyOverride("output_dir.x=1", &config);
  EXPECT_FALSE(not_message.ok());
  absl::Status bad_value = ApplyOverride("training.total_steps=many", &config);
  EXPECT_TRUE(absl::StrContains(bad_value.message(), "training.total_steps")) << bad_value;
  EXPECT_FALSE(ApplyOverride("no_equals_sign", &config).ok());
}

TEST(ExperimentConfig, ValidationNamesTheField) {
  auto negative_lr = LoadExperimentConfig("", {"optimizer.lr=-1"});
  ASSERT_FALSE(negative_lr.ok());
  EXPECT_TRUE(absl::StrContains(negative_lr.status().message(), "optimizer.lr"));
  auto zero_steps = LoadExperimentConfig("", {"training.total_steps=0"});
  EXPECT_TRUE(absl::StrContains(zero_steps.status().message(), "training.total_steps"));
  auto heads = LoadExperimentConfig("", {"model.random_init={d_model: 30 attention_heads: 4}"});
  EXPECT_TRUE(absl::StrContains(heads.status().message(), "attention_heads"));
  auto device = LoadExperimentConfig("", {"training.device=tpu"});
  EXPECT_TRUE(absl::StrContains(device.status().message(), "training.device"));
  EXPECT_TRUE(LoadExperimentConfig("", {}).ok());
  auto missing = LoadExperimentConfig("/nonexistent/config.pbtxt", {});
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "/nonexistent/config.pbtxt"));
}

// The first line of the validation error of the default config with `overrides`.
std::string ValidationError(const std::vector<std::string>& overrides) {
  absl::StatusOr<ExperimentConfig> config = LoadExperimentConfig("", overrides);
  return config.ok() ? "valid" : std::string(config.status().message());
}

TEST(ExperimentConfig, ValuesThatCannotWorkAreRejected) {
  EXPECT_EQ(ValidationError({"optimizer.lr=inf"}),
            "config field optimizer.lr: must be a finite number >= 0, got inf");
  EXPECT_EQ(ValidationError({"optimizer.router_lr=nan"}),
            "config field optimizer.router_lr: must be a finite number >= 0, got nan");
  EXPECT_EQ(ValidationError({"model.dropout=-inf"}),
            "config field model.dropout: must be a finite number in [0, 1), got -inf");
  EXPECT_EQ(ValidationError({"training.threads=-1"}),
            "config field training.threads: must be in [0, 1024] (0 = every core), got -1");
  EXPECT_EQ(ValidationError({"training.device=cuda:1"}),
            "config field training.device: must be cpu, cuda or auto, got 'cuda:1'");
}

TEST(ExperimentConfig, SizesHaveUpperBounds) {
  EXPECT_EQ(ValidationError({"model.random_init={d_model: 64 encoder_layers: 1000000000}"}),
            "config field model.random_init.encoder_layers: must be in [1, 256], got 1e+09");
  EXPECT_EQ(ValidationError({"model.random_init={d_model: 64 max_position_embeddings: 1000000}"}),
            "config field model.random_init.max_position_embeddings: must be in [2, 65536], "
            "got 1e+06");
  EXPECT_EQ(ValidationError({"model.experts=100000"}),
            "config field model.experts: must be in [1, 1024], got 100000");
  EXPECT_EQ(ValidationError({"task_vectors.dim=1000000000"}),
            "config field task_vectors.dim: must be in [1, 65536], got 1e+09");
  EXPECT_EQ(ValidationError({"evaluation.num_beams=5000"}),
            "config field evaluation.num_beams: must be in [1, 1024], got 5000");
}

TEST(ExperimentConfig, BaseConfigIsReadFirstAndOverridden) {
  const std::string dir = std::string(getenv("TEST_TMPDIR"));
  std::ofstream(dir + "/base.pbtxt") << "output_dir: \"runs/base\"\n"
                                     << "optimizer { lr: 0.5 router_lr: 0.25 }\n"
                                     << "model { experts: 4 }\n"
                                     << "routing { plugin: \"learned\" params { "
                                     << "[type.googleapis.com/google.protobuf.Duration] "
                                     << "{ seconds: 1 } } }\n";
  std::ofstream(dir + "/child.pbtxt") << "base: \"base.pbtxt\"\n"
                                      << "optimizer { lr: 0.125 }\n"
                                      << "routing { plugin: \"average\" }\n";
  auto config = LoadExperimentConfig(dir + "/child.pbtxt", {"model.experts=2"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->output_dir(), "runs/base");
  EXPECT_FLOAT_EQ(config->optimizer().lr(), 0.125f);
  EXPECT_FLOAT_EQ(config->optimizer().router_lr(), 0.25f);
  EXPECT_EQ(config->routing().plugin(), "average");
  EXPECT_FALSE(config->routing().has_params());  // the learned plugin's params went with it
  EXPECT_EQ(config->model().experts(), 2);
  EXPECT_FALSE(config->has_base());
  std::ofstream(dir + "/loop.pbtxt") << "base: \"loop.pbtxt\"\n";
  auto loop = LoadExperimentConfig(dir + "/loop.pbtxt", {});
  EXPECT_TRUE(absl::StrContains(loop.status().message(), "base")) << loop.status();
  std::ofstream(dir + "/missing.pbtxt") << "base: \"nope.pbtxt\"\n";
  auto missing = LoadExperimentConfig(dir + "/missing.pbtxt", {});
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "nope.pbtxt")) << missing.status();
  // Found while writing the fuzzers (tests/fuzz): the config's own directory was read as an empty base.
  std::ofstream(dir + "/directory.pbtxt") << "base: \"\"\n";
  auto directory = LoadExperimentConfig(dir + "/directory.pbtxt", {});
  EXPECT_TRUE(absl::StrContains(directory.status().message(), "is a directory"))
      << directory.status();
}

TEST(ExperimentConfig, TextRoundTrip) {
  ExperimentConfig config;
  ASSERT_TRUE(ApplyOverride("training.seed=7", &config).ok());
  ASSERT_TRUE(ApplyOverride("model.decoder_vanilla_layers=1", &config).ok());
  auto again = ParseExperimentConfig(ExperimentConfigToText(config), "resolved");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->SerializeAsString(), config.SerializeAsString());
}

}  // namespace
}  // namespace taskmoe
