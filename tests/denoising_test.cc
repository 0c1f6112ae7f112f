// Tests of BART's text-infilling noise (data/denoising) and the denoising corpus built with it.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "data/crossfit.h"
#include "data/denoising.h"
#include "data/denoising_corpus.h"
#include "data/gym/gym_random.h"
#include "data/tokenizer.h"
#include "tests/tiny_gym.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using taskmoe::testing::ReadFile;

constexpr int64_t kMask = -7;

std::vector<int64_t> Sequence(int64_t size) {
  std::vector<int64_t> tokens(size);
  std::iota(tokens.begin(), tokens.end(), 100);
  return tokens;
}

// The clean sequence back from the noised one: each mask replaced by its span's tokens.
std::vector<int64_t> Restore(const InfilledSequence& noised, const std::vector<int64_t>& clean) {
  std::vector<int64_t> restored;
  size_t span = 0;
  for (int64_t token : noised.tokens) {
    if (token != kMask) {
      restored.push_back(token);
      continue;
    }
    const MaskedSpan& masked = noised.spans.at(span++);
    restored.insert(restored.end(), clean.begin() + masked.start,
                    clean.begin() + masked.start + masked.length);
  }
  EXPECT_EQ(span, noised.spans.size());
  return restored;
}

TEST(TextInfilling, EachMaskStandsForItsSpanSoTheTargetIsRecoverable) {
  gym::GymRandom random(3);
  for (int64_t size : {1, 2, 5, 7, 16, 40, 200}) {
    const std::vector<int64_t> clean = Sequence(size);
    for (int trial = 0; trial < 50; ++trial) {
      const InfilledSequence noised = InfillSpans(clean, kMask, {}, random);
      ASSERT_EQ(Restore(noised, clean), clean) << size;
      // Exactly ceil(0.3 * size) tokens go, as BART's num_to_mask.
      int64_t removed = 0;
      for (const MaskedSpan& span : noised.spans) removed += span.length;
      EXPECT_EQ(removed, static_cast<int64_t>(std::ceil(0.3 * size))) << size;
      EXPECT_EQ(static_cast<int64_t>(noised.tokens.size()),
                size - removed + static_cast<int64_t>(noised.spans.size()));
    }
  }
}

TEST(TextInfilling, MaskedSpansAreSeparatedByUnmaskedTokens) {
  gym::GymRandom random(4);
  const std::vector<int64_t> clean = Sequence(60);
  for (int trial = 0; trial < 200; ++trial) {
    const InfilledSequence noised = InfillSpans(clean, kMask, {}, random);
    int64_t previous_end = -1;
    for (const MaskedSpan& span : noised.spans) {
      if (span.length == 0) continue;
      EXPECT_GT(span.start, previous_end) << "two spans touch: they would read as one";
      previous_end = span.start + span.length;
    }
  }
}

TEST(TextInfilling, SpanLengthsFollowThePoissonDistribution) {
  gym::GymRandom random(5);
  // Long sequences, so few spans are cut by the masking budget.
  const std::vector<int64_t> clean = Sequence(2000);
  int64_t spans = 0, insertions = 0, masked = 0;
  for (int trial = 0; trial < 100; ++trial) {
    for (const MaskedSpan& span : InfillSpans(clean, kMask, {}, random).spans) {
      ++(span.length == 0 ? insertions : spans);
      masked += span.length;
    }
  }
  // Poisson(3): P(0) = e^-3 = 0.0498, and the mean of the non-zero lengths is 3 / (1 - e^-3).
  const double zero_share = static_cast<double>(insertions) / (spans + insertions);
  EXPECT_NEAR(zero_share, std::exp(-3.0), 0.012);
  EXPECT_NEAR(static_cast<double>(masked) / spans, 3.0 / (1 - std::exp(-3.0)), 0.1);
}

TEST(TextInfilling, PoissonDrawsHaveTheRightMeanAndVariance) {
  gym::GymRandom random(6);
  for (double lambda : {0.5, 3.0, 10.0}) {
    constexpr int kDraws = 100000;
    double sum = 0, squares = 0;
    for (int i = 0; i < kDraws; ++i) {
      const double draw = static_cast<double>(PoissonDraw(lambda, random));
      sum += draw;
      squares += draw * draw;
    }
    const double mean = sum / kDraws;
    EXPECT_NEAR(mean, lambda, 0.03 * lambda + 0.01);
    EXPECT_NEAR(squares / kDraws - mean * mean, lambda, 0.06 * lambda + 0.02);
  }
}

TEST(TextInfilling, TheSameSeedGivesTheSameNoiseAndZeroRatioNone) {
  const std::vector<int64_t> clean = Sequence(30);
  gym::GymRandom first(9), second(9);
  EXPECT_EQ(InfillSpans(clean, kMask, {}, first).tokens,
            InfillSpans(clean, kMask, {}, second).tokens);
  TextInfillingOptions none;
  none.mask_ratio = 0;
  EXPECT_EQ(InfillSpans(clean, kMask, none, first).tokens, clean);
}

class DenoisingCorpusTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    gym::GymOptions gym;
    gym.train_examples = 40;
    gym.upstream_dev_examples = 8;
    gym.upstream_test_examples = 8;
    gym.fewshot_pool_examples = 40;
    gym.fewshot_test_examples = 16;
    gym_dir_ = new std::string(testing::MakeTinyGym("denoising_gym", gym));
  }
  static std::string* gym_dir_;
};
std::string* DenoisingCorpusTest::gym_dir_ = nullptr;

TEST_F(DenoisingCorpusTest, WritesNoisedInputsWithTheCleanInputAsTarget) {
  DenoisingCorpusOptions options;
  options.data_dir = *gym_dir_;
  options.output_dir = testing::FreshTempDir("denoise_corpus");
  options.copies = 3;
  absl::StatusOr<DenoisingCorpusSummary> summary = WriteDenoisingCorpus(options);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->train_lines, 3 * summary->texts);
  EXPECT_NEAR(summary->masked_fraction, 0.35, 0.07);  // ceil() on short texts: above 0.3

  // The trainer's reader takes it as one ordinary task.
  absl::StatusOr<TaskSplit> split = ReadTaskSplit(options.output_dir + "/split.json");
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(split->train, std::vector<std::string>{kDenoisingTask});
  absl::StatusOr<std::vector<TaskFile>> files =
      ReadTaskFiles(options.output_dir, kDenoisingTask, "train");
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ(static_cast<int64_t>(files->front().examples.size()), summary->train_lines);

  // Targets are exactly the unlabeled inputs of the train tasks; no task output is read.
  std::set<std::string> inputs;
  absl::StatusOr<TaskSplit> gym_split = ReadTaskSplit(*gym_dir_ + "/split.json");
  ASSERT_TRUE(gym_split.ok());
  for (const std::string& task : gym_split->train) {
    absl::StatusOr<std::vector<TaskFile>> task_files = ReadTaskFiles(*gym_dir_, task, "train");
    ASSERT_TRUE(task_files.ok()) << task_files.status();
    for (const TaskFile& file : *task_files) {
      for (const Example& example : file.examples) inputs.insert(example.input);
    }
  }
  absl::StatusOr<BartTokenizer> tokenizer =
      BartTokenizer::LoadFromDirectory(options.output_dir + "/tokenizer");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  std::set<std::string> targets;
  for (const Example& example : files->front().examples) {
    ASSERT_EQ(example.outputs.size(), 1u);
    targets.insert(example.outputs[0]);
    EXPECT_TRUE(inputs.count(example.outputs[0])) << example.outputs[0];
    // The noised text reads back as <mask> tokens, never as the literal characters.
    const std::vector<int64_t> ids = tokenizer->EncodeWithoutSpecialTokens(" " + example.input);
    int64_t written_masks = 0;
    for (size_t at = example.input.find("<mask>"); at != std::string::npos;
         at = example.input.find("<mask>", at + 1)) {
      ++written_masks;
    }
    EXPECT_GE(written_masks, 1) << example.input;
    EXPECT_EQ(std::count(ids.begin(), ids.end(), tokenizer->mask_id()), written_masks)
        << example.input;
  }
  EXPECT_EQ(targets, inputs);
  EXPECT_EQ(ReadFile(options.output_dir + "/metrics.json"), "{\"denoise\": \"EM\"}\n");
}

TEST_F(DenoisingCorpusTest, BadOptionsFailAndLeaveTheOutputUntouched) {
  DenoisingCorpusOptions options;
  options.data_dir = *gym_dir_;
  options.output_dir = testing::FreshTempDir("denoise_kept");
  fs::create_directories(options.output_dir);
  std::ofstream(options.output_dir + "/keep.txt") << "kept";
  options.copies = 0;
  EXPECT_THAT(WriteDenoisingCorpus(options).status().message(), HasSubstr("copies"));
  options.copies = 1;
  options.split_list = "nonsense";
  EXPECT_FALSE(WriteDenoisingCorpus(options).ok());
  options.split_list = "train";
  options.tokenizer_dir = *gym_dir_ + "/missing";
  EXPECT_THAT(WriteDenoisingCorpus(options).status().message(), HasSubstr("missing"));
  EXPECT_EQ(ReadFile(options.output_dir + "/keep.txt"), "kept");
}

}  // namespace
}  // namespace taskmoe
