// Runs tools/score on the bart_tiny fixture, as a user would, and compares its output file.

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "moe/formats/safetensors.h"
#include "tests/bart_fixture.h"
#include "tests/tool_runner.h"

namespace taskmoe {
namespace {

using testing::BartTinyCase;
using testing::BartTinyDir;
using testing::MaxAbsDiff;
using ::testing::HasSubstr;

int RunScore(const std::string& arguments) {
  return std::system(("tools/score --threads=1 " + arguments).c_str());
}

TEST(ScoreTool, ReproducesFixture) {
  const std::string output = ::testing::TempDir() + "/score_out.safetensors";
  // Plain greedy decoding: no forced eos.
  ASSERT_EQ(RunScore("--model=" + BartTinyDir() + " --input=" + BartTinyDir() +
                     "/case.safetensors --output=" + output +
                     " --greedy_max_length=12 --forced_eos_token_id=-1"),
            0);
  absl::StatusOr<TensorMap> out = ReadSafetensors(output);
  ASSERT_TRUE(out.ok()) << out.status();
  TensorMap c = BartTinyCase();
  EXPECT_LT(MaxAbsDiff(out->at("logits"), c.at("logits")), 1e-4);
  EXPECT_LT(MaxAbsDiff(out->at("encoder_last_hidden_state"), c.at("encoder_last_hidden_state")),
            1e-4);
  EXPECT_TRUE(at::equal(out->at("greedy_ids"), c.at("greedy_ids")));

  // By default the config's forced_eos_token_id (2) applies, as in generate(); the flag's old
  // name --model_dir still works.
  ASSERT_EQ(RunScore("--model_dir=" + BartTinyDir() + " --input=" + BartTinyDir() +
                     "/case.safetensors --output=" + output + " --greedy_max_length=12"),
            0);
  out = ReadSafetensors(output);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(at::equal(out->at("greedy_ids"), c.at("greedy_ids_forced_eos")));
  EXPECT_EQ(out->count("greedy_ids"), 1u);
}

TEST(ScoreTool, FailsCleanlyOnBadInput) {
  const std::string output = ::testing::TempDir() + "/score_bad.safetensors";
  // The model file is not an input file: it lacks input_ids.
  EXPECT_NE(RunScore("--model=" + BartTinyDir() + " --input=" + BartTinyDir() +
                     "/model.safetensors --output=" + output + " 2>/dev/null"),
            0);
  EXPECT_NE(RunScore("--model=/nonexistent --input=" + BartTinyDir() +
                     "/case.safetensors --output=" + output + " 2>/dev/null"),
            0);
  // The new and the old name of one flag together, and an unknown device.
  EXPECT_NE(RunScore("--model=" + BartTinyDir() + " --model_dir=" + BartTinyDir() +
                     " --input=" + BartTinyDir() + "/case.safetensors --output=" + output +
                     " 2>/dev/null"),
            0);
  EXPECT_NE(RunScore("--model=" + BartTinyDir() + " --device=tpu --input=" + BartTinyDir() +
                     "/case.safetensors --output=" + output + " 2>/dev/null"),
            0);
  EXPECT_FALSE(ReadSafetensors(output).ok());
}

// Runs tools/score on the fixture case with `flags`; the output of a failed run must not appear.
testing::ToolResult ScoreFailure(const std::string& input, const std::string& flags) {
  const std::string output = ::testing::TempDir() + "/score_failure.safetensors";
  std::remove(output.c_str());
  testing::ToolResult result = testing::RunToolBinary(
      "score", "--model=" + BartTinyDir() + " --input=" + input + " --output=" + output + " " +
                   flags);
  EXPECT_NE(result.exit_code, 0) << flags;
  EXPECT_FALSE(ReadSafetensors(output).ok()) << flags;
  return result;
}

TEST(ScoreTool, BadSettingsAreOneLineErrorsNamingThem) {
  const std::string input = BartTinyDir() + "/case.safetensors";
  EXPECT_THAT(ScoreFailure(input, "--threads=-1").output,
              HasSubstr("score: --threads: must be in [0, 1024] (0 = every core), got -1\n"));
  EXPECT_THAT(ScoreFailure(input, "--device=tpu").output,
              HasSubstr("score: --device: 'tpu' is not a device; expected auto, cpu, cuda or "
                        "cuda:<index>\n"));
  EXPECT_THAT(ScoreFailure(input, "--device=cuda:64").output,
              HasSubstr("score: --device: cuda:64 needs CUDA device 64 but LibTorch sees"));
  // --threads=0 means every core.
  const std::string output = ::testing::TempDir() + "/score_all_cores.safetensors";
  EXPECT_EQ(RunScore("--threads=0 --model=" + BartTinyDir() + " --input=" + input +
                     " --output=" + output),
            0);
}

TEST(ScoreTool, NonFiniteWeightsAreAnErrorNamingTheTensor) {
  const std::string model = ::testing::TempDir() + "/nan_bart";
  std::filesystem::create_directories(model);
  std::filesystem::copy_file(BartTinyDir() + "/config.json", model + "/config.json",
                             std::filesystem::copy_options::overwrite_existing);
  absl::StatusOr<TensorMap> weights = ReadSafetensors(BartTinyDir() + "/model.safetensors");
  ASSERT_TRUE(weights.ok()) << weights.status();
  const std::string name = "model.encoder.layers.1.fc2.weight";
  ASSERT_EQ(weights->count(name), 1u);
  weights->at(name)[0][3] = std::numeric_limits<float>::quiet_NaN();
  weights->at(name)[1][0] = -std::numeric_limits<float>::infinity();
  ASSERT_TRUE(WriteSafetensors(model + "/model.safetensors", *weights).ok());
  const testing::ToolResult result = testing::RunToolBinary(
      "score", "--model=" + model + " --input=" + BartTinyDir() + "/case.safetensors --output=" +
                   ::testing::TempDir() + "/nan_scores.safetensors");
  EXPECT_EQ(WEXITSTATUS(result.exit_code), 1) << result.output;
  EXPECT_THAT(result.output,
              HasSubstr("score: " + model + "/model.safetensors: tensor '" + name +
                        "' holds 2 NaN or infinite values (of 2048)"));
}

TEST(ScoreTool, AnEmptyBatchIsAnError) {
  const std::string input = ::testing::TempDir() + "/empty_batch.safetensors";
  ASSERT_TRUE(WriteSafetensors(input, {{"input_ids", at::zeros({0, 4}, at::kLong)},
                                       {"attention_mask", at::zeros({0, 4}, at::kLong)},
                                       {"decoder_input_ids", at::zeros({0, 3}, at::kLong)}})
                  .ok());
  EXPECT_THAT(ScoreFailure(input, "").output,
              HasSubstr("empty_batch.safetensors: an empty batch (input_ids [0, 4], "
                        "decoder_input_ids [0, 3]); expected at least one example"));
}

}  // namespace
}  // namespace taskmoe
