#include "moe/model/generation.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>
#include <set>
#include <utility>

#include "tests/bart_fixture.h"

namespace taskmoe {
namespace {

using testing::BartTinyCase;
using testing::LoadBartTiny;
using testing::MaxAbsDiff;

class GenerationTest : public ::testing::Test {
 protected:
  GenerationOptions FixtureOptions() const {
    GenerationOptions options;
    options.max_length = c_.at("greedy_max_length").item<int64_t>();
    options.forced_eos_token_id = -1;  // the plain greedy runs use no logits processor
    return options;
  }

  GenerationOutput Run(const GenerationOptions& options) {
    absl::StatusOr<GenerationOutput> out =
        Generate(model_, c_.at("input_ids"), c_.at("attention_mask"), options);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : GenerationOutput();
  }

  // Hugging Face's beam score of each sequence (start token, tokens, eos, pad...): the summed
  // log-probability of the tokens after the start up to eos, divided by the length without eos
  // raised to length_penalty; computed by a teacher-forced pass.
  at::Tensor SequenceScores(const at::Tensor& sequences, double length_penalty) {
    torch::NoGradGuard no_grad;
    const at::Tensor logits = model_->Forward(c_.at("input_ids"), c_.at("attention_mask"),
                                              sequences.slice(1, 0, -1)).logits;
    const at::Tensor targets = sequences.slice(1, 1);
    const at::Tensor token_log_probs =
        at::log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1);
    at::Tensor scores = at::zeros({sequences.size(0)}, at::kDouble);
    for (int64_t b = 0; b < sequences.size(0); ++b) {
      double sum = 0;
      int64_t length = 1;
      for (int64_t t = 0; t < targets.size(1); ++t) {
        sum += token_log_probs[b][t].item<double>();
        if (targets[b][t].item<int64_t>() == model_->config().eos_token_id) break;
        ++length;
      }
      scores[b] = sum / std::pow(static_cast<double>(length), length_penalty);
    }
    return scores;
  }

  BartForConditionalGeneration model_ = LoadBartTiny();
  TensorMap c_ = BartTinyCase();
};

TEST_F(GenerationTest, GreedyMatchesHuggingFace) {
  GenerationOptions options = FixtureOptions();
  options.output_step_logits = true;
  GenerationOutput out = Run(options);
  EXPECT_TRUE(at::equal(out.sequences, c_.at("greedy_ids"))) << out.sequences;
  EXPECT_LT(MaxAbsDiff(out.step_logits, c_.at("greedy_step_logits")), 1e-4);
}

TEST_F(GenerationTest, ForcedEosAtMaxLength) {
  GenerationOptions options = FixtureOptions();
  options.forced_eos_token_id.reset();  // the config's forced_eos_token_id = 2
  GenerationOutput out = Run(options);
  EXPECT_TRUE(at::equal(out.sequences, c_.at("greedy_ids_forced_eos"))) << out.sequences;
}

TEST_F(GenerationTest, StartFromBosAsTheOriginalEvaluates) {
  GenerationOptions options = FixtureOptions();
  options.decoder_start_token_id = 0;
  options.output_step_logits = true;
  GenerationOutput out = Run(options);
  EXPECT_TRUE(at::equal(out.sequences, c_.at("greedy_ids_start_bos"))) << out.sequences;
  EXPECT_LT(MaxAbsDiff(out.step_logits, c_.at("greedy_step_logits_start_bos")), 1e-4);
}

TEST_F(GenerationTest, BeamSearchWithOneBeamEqualsGreedy) {
  GenerationOptions options = FixtureOptions();
  options.early_stopping = true;
  absl::StatusOr<GenerationOutput> beam =
      BeamSearch(model_, c_.at("input_ids"), c_.at("attention_mask"), options);
  ASSERT_TRUE(beam.ok()) << beam.status();
  EXPECT_TRUE(at::equal(beam->sequences, c_.at("greedy_ids"))) << beam->sequences;
}

TEST_F(GenerationTest, BeamSearchScoresAtLeastGreedyAndReportsItsScores) {
  // Not for length_penalty < 1: there Hugging Face's stopping rule (the best open beam's score at
  // the current length) can stop before a longer, better-normalised sequence, and greedy may win.
  for (double length_penalty : {1.0, 2.0}) {
    SCOPED_TRACE(length_penalty);
    GenerationOptions options = FixtureOptions();
    options.num_beams = 4;
    options.length_penalty = length_penalty;
    GenerationOutput beam = Run(options);
    ASSERT_EQ(beam.sequences.size(0), 3);
    const at::Tensor beam_scores = SequenceScores(beam.sequences, length_penalty);
    const at::Tensor greedy_scores = SequenceScores(c_.at("greedy_ids"), length_penalty);
    EXPECT_LT(MaxAbsDiff(beam_scores, beam.sequence_scores), 1e-4);
    for (int64_t b = 0; b < 3; ++b) {
      EXPECT_GE(beam_scores[b].item<double>(), greedy_scores[b].item<double>() - 1e-5) << b;
    }
  }
}

TEST_F(GenerationTest, BeamSearchIsBatchIndependent) {
  GenerationOptions options = FixtureOptions();
  options.num_beams = 3;
  GenerationOutput batched = Run(options);
  for (int64_t b = 0; b < 3; ++b) {
    const int64_t length = c_.at("attention_mask")[b].sum().item<int64_t>();
    absl::StatusOr<GenerationOutput> single =
        Generate(model_, c_.at("input_ids").slice(0, b, b + 1).slice(1, 0, length),
                 at::Tensor(), options);
    ASSERT_TRUE(single.ok());
    const int64_t width = single->sequences.size(1);
    EXPECT_TRUE(at::equal(single->sequences[0], batched.sequences[b].slice(0, 0, width))) << b;
    // Past its own width the batched row is only padding.
    EXPECT_TRUE(batched.sequences[b].slice(0, width).eq(1).all().item<bool>());
  }
}

TEST_F(GenerationTest, NoRepeatNgramAndMinLength) {
  GenerationOptions options = FixtureOptions();
  options.max_length = 30;
  options.no_repeat_ngram_size = 2;
  options.min_length = 6;
  GenerationOutput out = Run(options);
  for (int64_t b = 0; b < out.sequences.size(0); ++b) {
    std::set<std::pair<int64_t, int64_t>> bigrams;
    for (int64_t t = 0; t + 1 < out.sequences.size(1); ++t) {
      const int64_t first = out.sequences[b][t].item<int64_t>();
      const int64_t second = out.sequences[b][t + 1].item<int64_t>();
      if (first == 1 || second == 1) break;  // padding after eos
      EXPECT_TRUE(bigrams.insert({first, second}).second) << "row " << b << " repeats a bigram";
      if (second == 2) {
        EXPECT_GE(t + 1, 6) << "eos before min_length";
      }
    }
  }
}

TEST_F(GenerationTest, RejectsBadOptions) {
  GenerationOptions options;
  options.max_length = 65;
  EXPECT_FALSE(Generate(model_, c_.at("input_ids"), c_.at("attention_mask"), options).ok());
  options.max_length = 10;
  options.num_beams = 0;
  EXPECT_FALSE(Generate(model_, c_.at("input_ids"), c_.at("attention_mask"), options).ok());
  options.num_beams = 2;
  options.decoder_start_token_id = 96;
  EXPECT_FALSE(Generate(model_, c_.at("input_ids"), c_.at("attention_mask"), options).ok());
}

}  // namespace
}  // namespace taskmoe
