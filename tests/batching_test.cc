#include "data/batching.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "data/sha256.h"
#include "data/token_cache.h"
#include "data/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/shared_data.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

std::string TempDir(const std::string& name) {
  const char* root = std::getenv("TEST_TMPDIR");
  const fs::path dir = fs::path(root != nullptr ? root : "/tmp") / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

const TokenizerFiles& FixtureTokenizerFiles() {
  static const TokenizerFiles kFiles = {
      testing::SharedPath("fixtures/bart_tokenizer/vocab.json"),
      testing::SharedPath("fixtures/bart_tokenizer/merges.txt")};
  return kFiles;
}

const BartTokenizer& FixtureTokenizer() {
  static const BartTokenizer* const kTokenizer = [] {
    absl::StatusOr<BartTokenizer> tokenizer =
        BartTokenizer::Load(FixtureTokenizerFiles().vocab_json, FixtureTokenizerFiles().merges_txt);
    EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
    return new BartTokenizer(*std::move(tokenizer));
  }();
  return *kTokenizer;
}

// Two tasks, eleven examples, one with two outputs and one with a long input.
std::vector<TaskFile> SmallGym() {
  TaskFile cola{"glue-cola", "glue-cola_16_100", "", {}};
  for (int i = 0; i < 6; ++i) {
    cola.examples.push_back({"Sentence number " + std::to_string(i) + ".",
                             {i % 2 == 0 ? "acceptable" : "unacceptable"}});
  }
  TaskFile squad{"squad-no_context", "squad-no_context_32_100", "", {}};
  squad.examples.push_back({"Who wrote Hamlet?", {"Shakespeare", "William Shakespeare"}});
  squad.examples.push_back({"What is the capital of France? " + std::string(40, 'x'), {"Paris"}});
  for (int i = 0; i < 3; ++i) {
    squad.examples.push_back({"Question " + std::to_string(i), {"answer " + std::to_string(i)}});
  }
  return {cola, squad};
}

TEST(Sha256Test, KnownDigests) {
  EXPECT_EQ(Sha256::Hex(Sha256::Of("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256::Hex(Sha256::Of("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(Sha256::Hex(Sha256::Of(two_blocks)),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 pieces;
  for (char c : two_blocks) pieces.Update(std::string(1, c));
  EXPECT_EQ(pieces.Finish(), Sha256::Of(two_blocks));
}

TEST(TokenizeTest, EncodesTheOriginalsFormattingAndCountsTruncation) {
  const BartTokenizer& tokenizer = FixtureTokenizer();
  const std::vector<TaskFile> files = SmallGym();
  TokenizeOptions options;
  const TokenizedDataset full = TokenizeTaskFiles(files, tokenizer, options);
  ASSERT_EQ(full.examples.size(), 11u);
  EXPECT_EQ(full.tasks, (std::vector<std::string>{"glue-cola", "squad-no_context"}));
  EXPECT_EQ(full.examples[0].task_id, 0);
  EXPECT_EQ(full.examples[6].task_id, 1);
  EXPECT_EQ(full.examples[0].input_ids, tokenizer.Encode(" [glue-cola] Sentence number 0."));
  EXPECT_EQ(full.examples[0].output_ids[0], tokenizer.Encode(" acceptable"));
  EXPECT_EQ(full.examples[6].output_ids.size(), 2u);
  EXPECT_EQ(full.examples[6].output_ids[1], tokenizer.Encode(" William Shakespeare"));
  EXPECT_EQ(full.truncation.truncated_inputs, 0);
  EXPECT_EQ(full.truncation.inputs, 11);
  EXPECT_EQ(full.truncation.outputs, 12);

  options.max_input_length = 12;
  options.max_output_length = 3;
  const TokenizedDataset cut = TokenizeTaskFiles(files, tokenizer, options);
  int64_t expected_inputs_cut = 0, expected_outputs_cut = 0;
  for (size_t i = 0; i < cut.examples.size(); ++i) {
    const std::vector<int64_t>& whole = full.examples[i].input_ids;
    const std::vector<int64_t>& kept = cut.examples[i].input_ids;
    if (whole.size() > 12) {
      ++expected_inputs_cut;
      ASSERT_EQ(kept.size(), 12u);
      // Hugging Face truncation: the first max-1 ids, then </s>.
      EXPECT_TRUE(std::equal(kept.begin(), kept.end() - 1, whole.begin()));
      EXPECT_EQ(kept.back(), tokenizer.eos_id());
    } else {
      EXPECT_EQ(kept, whole);
    }
    for (const std::vector<int64_t>& output : full.examples[i].output_ids) {
      if (output.size() > 3) ++expected_outputs_cut;
    }
  }
  EXPECT_GT(expected_inputs_cut, 0);
  EXPECT_EQ(cut.truncation.truncated_inputs, expected_inputs_cut);
  EXPECT_EQ(cut.truncation.truncated_outputs, expected_outputs_cut);
  EXPECT_EQ(cut.truncation.Summary(12, 3),
            "truncated " + std::to_string(expected_inputs_cut) + " of 11 inputs (max 12 tokens), " +
                std::to_string(expected_outputs_cut) + " of 12 outputs (max 3 tokens)");
}

// Checks shape, padding and masks of a batch against the dataset.
void ExpectWellFormed(const Batch& batch, const TokenizedDataset& dataset, int64_t pad_id) {
  ASSERT_EQ(batch.input_ids.size(), static_cast<size_t>(batch.size * batch.input_length));
  ASSERT_EQ(batch.output_ids.size(), static_cast<size_t>(batch.size * batch.output_length));
  size_t longest_input = 0, longest_output = 0;
  for (int64_t row = 0; row < batch.size; ++row) {
    const TokenizedExample& example = dataset.examples[batch.example_indices[row]];
    EXPECT_EQ(batch.task_ids[row], example.task_id);
    const std::vector<int64_t>& input = example.input_ids;
    longest_input = std::max(longest_input, input.size());
    for (int64_t col = 0; col < batch.input_length; ++col) {
      const size_t at = row * batch.input_length + col;
      const bool token = col < static_cast<int64_t>(input.size());
      EXPECT_EQ(batch.input_ids[at], token ? input[col] : pad_id);
      EXPECT_EQ(batch.attention_mask[at], token ? 1 : 0);
    }
    // The target is one of the example's outputs, padded.
    std::vector<int64_t> target;
    for (int64_t col = 0; col < batch.output_length; ++col) {
      const size_t at = row * batch.output_length + col;
      if (batch.output_mask[at] == 1) target.push_back(batch.output_ids[at]);
      else EXPECT_EQ(batch.output_ids[at], pad_id);
    }
    EXPECT_NE(std::find(example.output_ids.begin(), example.output_ids.end(), target),
              example.output_ids.end());
    longest_output = std::max(longest_output, target.size());
  }
  // Padding trimmed to the batch's longest sequence.
  EXPECT_EQ(batch.input_length, static_cast<int64_t>(longest_input));
  EXPECT_EQ(batch.output_length, static_cast<int64_t>(longest_output));
}

std::vector<int64_t> Order(const std::vector<Batch>& batches) {
  std::vector<int64_t> order;
  for (const Batch& batch : batches) {
    order.insert(order.end(), batch.example_indices.begin(), batch.example_indices.end());
  }
  return order;
}

TEST(BatchingTest, MixedBatchesCoverEveryExampleOncePerEpochInASeededOrder) {
  const TokenizedDataset dataset = TokenizeTaskFiles(SmallGym(), FixtureTokenizer(), {});
  BatchOptions options;
  options.batch_size = 4;
  options.pad_id = FixtureTokenizer().pad_id();
  const std::vector<Batch> epoch0 = MakeEpochBatches(dataset, options, 0);
  ASSERT_EQ(epoch0.size(), 3u);  // 4 + 4 + 3
  EXPECT_EQ(epoch0[2].size, 3);
  for (const Batch& batch : epoch0) ExpectWellFormed(batch, dataset, options.pad_id);
  std::vector<int64_t> order = Order(epoch0);
  EXPECT_EQ(std::set<int64_t>(order.begin(), order.end()).size(), 11u);

  EXPECT_EQ(Order(MakeEpochBatches(dataset, options, 0)), order);  // reproducible
  EXPECT_NE(Order(MakeEpochBatches(dataset, options, 1)), order);  // reshuffled per epoch
  options.seed = 7;
  EXPECT_NE(Order(MakeEpochBatches(dataset, options, 0)), order);

  options.shuffle = false;
  std::vector<int64_t> in_order(11);
  for (int64_t i = 0; i < 11; ++i) in_order[i] = i;
  EXPECT_EQ(Order(MakeEpochBatches(dataset, options, 3)), in_order);
}

TEST(BatchingTest, TaskGroupedBatchesHoldOneTaskEach) {
  const TokenizedDataset dataset = TokenizeTaskFiles(SmallGym(), FixtureTokenizer(), {});
  BatchOptions options;
  options.batch_size = 4;
  options.grouping = BatchGrouping::kTaskGrouped;
  options.pad_id = FixtureTokenizer().pad_id();
  const std::vector<Batch> batches = MakeEpochBatches(dataset, options, 2);
  ASSERT_EQ(batches.size(), 4u);  // cola: 4 + 2, squad: 4 + 1
  std::vector<int64_t> order = Order(batches);
  EXPECT_EQ(std::set<int64_t>(order.begin(), order.end()).size(), 11u);
  for (const Batch& batch : batches) {
    ExpectWellFormed(batch, dataset, options.pad_id);
    EXPECT_EQ(std::set<int32_t>(batch.task_ids.begin(), batch.task_ids.end()).size(), 1u);
  }
}

TEST(BatchingTest, SeveralOutputsGiveAUniformlyDrawnTargetPerEpoch) {
  const TokenizedDataset dataset = TokenizeTaskFiles(SmallGym(), FixtureTokenizer(), {});
  BatchOptions options;
  options.batch_size = 11;
  options.pad_id = FixtureTokenizer().pad_id();
  const int64_t two_outputs = 6;  // "Who wrote Hamlet?"
  std::map<size_t, int> target_lengths;
  constexpr int kEpochs = 400;
  for (int epoch = 0; epoch < kEpochs; ++epoch) {
    const Batch batch = MakeEpochBatches(dataset, options, epoch)[0];
    for (int64_t row = 0; row < batch.size; ++row) {
      if (batch.example_indices[row] != two_outputs) continue;
      size_t length = 0;
      for (int64_t col = 0; col < batch.output_length; ++col) {
        length += batch.output_mask[row * batch.output_length + col];
      }
      ++target_lengths[length];
    }
  }
  const std::vector<std::vector<int64_t>>& outputs = dataset.examples[two_outputs].output_ids;
  ASSERT_NE(outputs[0].size(), outputs[1].size());
  // Binomial(400, 1/2) lies in [150, 250] except with probability below 1e-6.
  EXPECT_GE(target_lengths[outputs[0].size()], 150);
  EXPECT_LE(target_lengths[outputs[0].size()], 250);
  EXPECT_EQ(target_lengths[outputs[0].size()] + target_lengths[outputs[1].size()], kEpochs);
}

bool SameDataset(const TokenizedDataset& a, const TokenizedDataset& b) {
  if (a.tasks != b.tasks || a.examples.size() != b.examples.size()) return false;
  for (size_t i = 0; i < a.examples.size(); ++i) {
    if (a.examples[i].task_id != b.examples[i].task_id ||
        a.examples[i].input_ids != b.examples[i].input_ids ||
        a.examples[i].output_ids != b.examples[i].output_ids) {
      return false;
    }
  }
  return a.truncation.truncated_inputs == b.truncation.truncated_inputs &&
         a.truncation.outputs == b.truncation.outputs;
}

TEST(TokenCacheTest, SecondRunHitsAndAnyChangeInvalidates) {
  const std::string cache_dir = TempDir("token_cache") + "/cache";
  std::vector<TaskFile> files = SmallGym();
  TokenizeOptions options;
  options.max_input_length = 12;
  const TokenizedDataset expected = TokenizeTaskFiles(files, FixtureTokenizer(), options);

  TokenCacheOutcome outcome;
  absl::StatusOr<TokenizedDataset> first = LoadOrTokenize(
      files, FixtureTokenizer(), FixtureTokenizerFiles(), options, cache_dir, &outcome);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(outcome, TokenCacheOutcome::kCreated);
  EXPECT_TRUE(SameDataset(*first, expected));
  absl::StatusOr<TokenizedDataset> second = LoadOrTokenize(
      files, FixtureTokenizer(), FixtureTokenizerFiles(), options, cache_dir, &outcome);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(outcome, TokenCacheOutcome::kHit);
  EXPECT_TRUE(SameDataset(*second, expected));

  const std::string key = *TokenCacheKey(files, FixtureTokenizerFiles(), options);
  // Changed data, options or tokenizer files give another key.
  std::vector<TaskFile> edited = files;
  edited[1].examples[2].outputs[0] = "Paris.";
  EXPECT_NE(*TokenCacheKey(edited, FixtureTokenizerFiles(), options), key);
  TokenizeOptions lowercase = options;
  lowercase.format.lowercase = true;
  EXPECT_NE(*TokenCacheKey(files, FixtureTokenizerFiles(), lowercase), key);
  const std::string merges_copy = TempDir("token_cache_merges") + "/merges.txt";
  fs::copy_file(FixtureTokenizerFiles().merges_txt, merges_copy);
  EXPECT_EQ(*TokenCacheKey(files, {FixtureTokenizerFiles().vocab_json, merges_copy}, options), key);
  std::ofstream(merges_copy, std::ios::app) << "\n";
  EXPECT_NE(*TokenCacheKey(files, {FixtureTokenizerFiles().vocab_json, merges_copy}, options), key);
  EXPECT_FALSE(TokenCacheKey(files, {"/nonexistent/vocab.json", merges_copy}, options).ok());

  absl::StatusOr<TokenizedDataset> edited_run = LoadOrTokenize(
      edited, FixtureTokenizer(), FixtureTokenizerFiles(), options, cache_dir, &outcome);
  ASSERT_TRUE(edited_run.ok());
  EXPECT_EQ(outcome, TokenCacheOutcome::kCreated);
  EXPECT_EQ(edited_run->examples[8].output_ids[0], FixtureTokenizer().Encode(" Paris."));
}

TEST(TokenCacheTest, CorruptCacheFilesAreRebuiltNeverTrusted) {
  const std::string cache_dir = TempDir("token_cache_corrupt");
  const std::vector<TaskFile> files = SmallGym();
  const TokenizeOptions options;
  const TokenizedDataset expected = TokenizeTaskFiles(files, FixtureTokenizer(), options);
  const std::string path =
      TokenCachePath(cache_dir, *TokenCacheKey(files, FixtureTokenizerFiles(), options));
  TokenCacheOutcome outcome;
  ASSERT_TRUE(LoadOrTokenize(files, FixtureTokenizer(), FixtureTokenizerFiles(), options,
                             cache_dir, &outcome)
                  .ok());
  std::string good;
  {
    std::ifstream file(path, std::ios::binary);
    good.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  }
  ASSERT_GT(good.size(), 200u);

  std::string flipped = good;
  flipped[good.size() - 20] ^= 0x01;  // one bit of a token id
  const std::vector<std::string> corruptions = {
      flipped, good.substr(0, good.size() / 2), good + "extra", "garbage", ""};
  for (const std::string& bytes : corruptions) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    absl::StatusOr<TokenizedDataset> result = LoadOrTokenize(
        files, FixtureTokenizer(), FixtureTokenizerFiles(), options, cache_dir, &outcome);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(outcome, TokenCacheOutcome::kRebuilt) << bytes.size();
    EXPECT_TRUE(SameDataset(*result, expected));
    // The rebuilt file is good again.
    ASSERT_TRUE(LoadOrTokenize(files, FixtureTokenizer(), FixtureTokenizerFiles(), options,
                               cache_dir, &outcome)
                    .ok());
    EXPECT_EQ(outcome, TokenCacheOutcome::kHit);
  }
}

}  // namespace
}  // namespace taskmoe
