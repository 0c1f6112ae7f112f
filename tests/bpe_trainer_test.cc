#include "data/bpe_trainer.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "data/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace taskmoe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Merge = std::pair<std::string, std::string>;

std::string ReadAll(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  std::stringstream contents;
  contents << stream.rdbuf();
  return contents.str();
}

std::string FreshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

// Lines with punctuation, digits, runs of spaces, tabs, newlines and non-ASCII text, each twice so
// that their pairs reach the default min_pair_frequency.
std::vector<std::string> MixedCorpus() {
  const std::vector<std::string> lines = {
      " [count_words] how many words: apple banana cherry",
      " 3",
      " [reverse] reverse: one two three",
      " three two one",
      "Hello , world . How are you ? I'm fine, isn't it?",
      "2022-05-25 costs $1,000.50 (approx.) -- 42%!",
      "tabs\tand  double  spaces   end   ",
      "line one\nline two\n\n",
      "café naïve Straße Ελληνικά Привет 日本語 😀 🍕",
      "key=value; other_key => [1, 2, 3] {x: y}",
      "CamelCaseWord mixedCASE iPhone 12345678901234567890",
      "  leading spaces and trailing\u00A0nbsp\u3000ideographic space",
  };
  std::vector<std::string> corpus;
  for (int copy = 0; copy < 2; ++copy) corpus.insert(corpus.end(), lines.begin(), lines.end());
  return corpus;
}

TEST(BpeTrainerTest, KnownMergesOnATinyCorpus) {
  // Pre-tokens "aaab" and " aaab". Counts: (a,a) 4, then (aa,a) 2 = (a,b) 2, a tie that the
  // smaller left id decides ('a' is a byte symbol, "aa" was just added): (a,b); then (aa,ab) 2.
  // (Ġ,aa) is seen once, below min_pair_frequency 2.
  BpeTrainerOptions options;
  options.vocab_size = 1000;
  absl::StatusOr<BpeModel> model = LearnBpe({"aaab aaab"}, options);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_THAT(model->merges, ElementsAre(Merge("a", "a"), Merge("a", "b"), Merge("aa", "ab")));
  ASSERT_EQ(model->vocab.size(), 4u + 256u + 3u + 1u);
  EXPECT_THAT(std::vector<std::string>(model->vocab.begin(), model->vocab.begin() + 4),
              ElementsAre("<s>", "<pad>", "</s>", "<unk>"));
  EXPECT_EQ(model->vocab[4 + ' '], "\xC4\xA0");
  EXPECT_THAT(std::vector<std::string>(model->vocab.end() - 4, model->vocab.end()),
              ElementsAre("aa", "ab", "aaab", "<mask>"));

  const std::string dir = FreshDir("tiny_bpe");
  ASSERT_TRUE(WriteBpeModel(*model, dir).ok());
  EXPECT_EQ(ReadAll(dir + "/merges.txt"), "#version: 0.2\na a\na b\naa ab\n");
  absl::StatusOr<BartTokenizer> tokenizer = BartTokenizer::LoadFromDirectory(dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_THAT(tokenizer->Tokenize("aaab aaab"), ElementsAre("aaab", "\xC4\xA0", "aaab"));
  EXPECT_EQ(tokenizer->mask_id(), 263);
}

TEST(BpeTrainerTest, HasTheRequestedSizeAndLayout) {
  BpeTrainerOptions options;
  options.vocab_size = 400;
  const std::string dir = FreshDir("sized_bpe");
  ASSERT_TRUE(TrainBpe(MixedCorpus(), options, dir).ok());
  const nlohmann::json vocab = nlohmann::json::parse(ReadAll(dir + "/vocab.json"));
  EXPECT_EQ(vocab.size(), 400u);
  EXPECT_EQ(vocab["<s>"], 0);
  EXPECT_EQ(vocab["<pad>"], 1);
  EXPECT_EQ(vocab["</s>"], 2);
  EXPECT_EQ(vocab["<unk>"], 3);
  EXPECT_EQ(vocab["<mask>"], 399);
  for (int byte = 0; byte < 256; ++byte) EXPECT_EQ(vocab[ByteSymbols()[byte]], 4 + byte);
  absl::StatusOr<BartTokenizer> tokenizer = BartTokenizer::LoadFromDirectory(dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ(tokenizer->vocab_size(), 400);
}

TEST(BpeTrainerTest, TrainedTokenizerRoundTripsEveryLine) {
  BpeTrainerOptions options;
  options.vocab_size = 500;
  const std::string dir = FreshDir("roundtrip_bpe");
  const std::vector<std::string> corpus = MixedCorpus();
  ASSERT_TRUE(TrainBpe(corpus, options, dir).ok());
  absl::StatusOr<BartTokenizer> tokenizer = BartTokenizer::LoadFromDirectory(dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  size_t bytes = 0, tokens = 0;
  for (const std::string& line : corpus) {
    const std::vector<int64_t> ids = tokenizer->Encode(line);
    EXPECT_EQ(tokenizer->Decode(ids, true, /*clean_up_tokenization_spaces=*/false), line);
    bytes += line.size();
    tokens += ids.size() - 2;
  }
  // The learned merges are used: far fewer tokens than bytes.
  EXPECT_LT(tokens * 2, bytes);
  // Text never seen in training still round-trips byte for byte.
  const std::string unseen = "Zebra #7 \u20AC \U0001F680\tq\n";
  EXPECT_EQ(tokenizer->Decode(tokenizer->Encode(unseen)), unseen);
}

TEST(BpeTrainerTest, DeterministicFiles) {
  BpeTrainerOptions options;
  options.vocab_size = 450;
  const std::string first = FreshDir("deterministic_1");
  const std::string second = FreshDir("deterministic_2");
  ASSERT_TRUE(TrainBpe(MixedCorpus(), options, first).ok());
  ASSERT_TRUE(TrainBpe(MixedCorpus(), options, second).ok());
  EXPECT_EQ(ReadAll(first + "/vocab.json"), ReadAll(second + "/vocab.json"));
  EXPECT_EQ(ReadAll(first + "/merges.txt"), ReadAll(second + "/merges.txt"));
  // Only the two files remain: the temporary names were renamed into place.
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(first)) {
    names.push_back(entry.path().filename().string());
  }
  EXPECT_THAT(names, ::testing::UnorderedElementsAre("vocab.json", "merges.txt"));
}

TEST(BpeTrainerTest, StopsWhenNoPairIsFrequentEnough) {
  BpeTrainerOptions options;
  options.vocab_size = 5000;
  absl::StatusOr<BpeModel> model = LearnBpe({"abc"}, options);
  ASSERT_TRUE(model.ok());
  EXPECT_TRUE(model->merges.empty());
  EXPECT_EQ(model->vocab.size(), 261u);
  options.min_pair_frequency = 1;
  model = LearnBpe({"abc"}, options);
  ASSERT_TRUE(model.ok());
  EXPECT_THAT(model->merges, ElementsAre(Merge("a", "b"), Merge("ab", "c")));
}

TEST(BpeTrainerTest, RejectsBadOptionsAndUnwritableDirectories) {
  BpeTrainerOptions options;
  options.vocab_size = 260;
  EXPECT_THAT(LearnBpe({"x"}, options).status().message(),
              HasSubstr("vocab_size 260 is too small: a byte-level BPE needs at least 261"));
  options.vocab_size = 300;
  options.min_pair_frequency = 0;
  EXPECT_THAT(LearnBpe({"x"}, options).status().message(),
              HasSubstr("min_pair_frequency must be at least 1"));
  options.min_pair_frequency = 2;
  const std::string file = ::testing::TempDir() + "/a_file";
  std::ofstream(file) << "x";
  EXPECT_THAT(TrainBpe({"x"}, options, file + "/sub").message(),
              HasSubstr("cannot create directory"));
}

TEST(BpeTrainerTest, ReadsTextAndCrossFitTsvCorpora) {
  const std::string text = ::testing::TempDir() + "/corpus.txt";
  const std::string tsv = ::testing::TempDir() + "/task_16_100_train.tsv";
  std::ofstream(text) << "first line\r\n\nsecond\tline\n";
  std::ofstream(tsv) << "question one\tanswer a\tanswer b\r\n";
  absl::StatusOr<std::vector<std::string>> corpus = ReadBpeCorpus({text, tsv});
  ASSERT_TRUE(corpus.ok()) << corpus.status();
  EXPECT_THAT(*corpus, ElementsAre("first line", "second\tline", " question one", " answer a",
                                   " answer b"));
  EXPECT_THAT(ReadBpeCorpus({"/nonexistent/corpus.txt"}).status().message(),
              HasSubstr("cannot open corpus file '/nonexistent/corpus.txt'"));
}

TEST(TrainTokenizerToolTest, TrainsFromFilesAndTheTokenizerLoadsTheResult) {
  const std::string corpus = ::testing::TempDir() + "/tool_corpus.txt";
  {
    std::ofstream stream(corpus);
    for (const std::string& line : MixedCorpus()) {
      if (line.find('\n') == std::string::npos) stream << line << "\n";
    }
  }
  const std::string dir = FreshDir("tool_bpe");
  const std::string command = "tools/train_tokenizer --corpus=" + corpus +
                              " --vocab_size=330 --output_dir=" + dir + " 2>/dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  absl::StatusOr<BartTokenizer> tokenizer = BartTokenizer::LoadFromDirectory(dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ(tokenizer->vocab_size(), 330);
  const std::string line = "café naïve Straße 12345";
  EXPECT_EQ(tokenizer->Decode(tokenizer->Encode(line)), line);
  // A missing corpus file is an error, and nothing is written.
  const std::string missing_dir = FreshDir("tool_bpe_missing");
  const std::string failing = "tools/train_tokenizer --corpus=/nonexistent.txt --output_dir=" +
                              missing_dir + " 2>/dev/null";
  EXPECT_NE(std::system(failing.c_str()), 0);
  EXPECT_FALSE(std::filesystem::exists(missing_dir));
}

}  // namespace
}  // namespace taskmoe
