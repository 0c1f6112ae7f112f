// Runs tools/score on the bart_tiny fixture, as a user would, and compares its output file.

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "moe/formats/safetensors.h"
#include "tests/bart_fixture.h"

namespace taskmoe {
namespace {

using testing::BartTinyCase;
using testing::BartTinyDir;
using testing::MaxAbsDiff;

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

}  // namespace
}  // namespace taskmoe
