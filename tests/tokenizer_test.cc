#include "data/tokenizer.h"

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/shared_data.h"

namespace taskmoe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kVocab = taskmoe::testing::SharedPath("fixtures/bart_tokenizer/vocab.json");
const std::string kMerges = taskmoe::testing::SharedPath("fixtures/bart_tokenizer/merges.txt");

const BartTokenizer& FixtureTokenizer() {
  static const BartTokenizer* const tokenizer = [] {
    absl::StatusOr<BartTokenizer> loaded = BartTokenizer::Load(kVocab, kMerges);
    CHECK(loaded.ok()) << loaded.status();
    return new BartTokenizer(*std::move(loaded));
  }();
  return *tokenizer;
}

std::vector<nlohmann::json> ReadCases() {
  std::ifstream stream(taskmoe::testing::SharedPath("fixtures/bart_tokenizer/cases.jsonl"));
  std::vector<nlohmann::json> cases;
  for (std::string line; std::getline(stream, line);) cases.push_back(nlohmann::json::parse(line));
  return cases;
}

TEST(BartTokenizerTest, SpecialIdsAndSizeOfBartBase) {
  const BartTokenizer& tokenizer = FixtureTokenizer();
  EXPECT_EQ(tokenizer.bos_id(), 0);
  EXPECT_EQ(tokenizer.pad_id(), 1);
  EXPECT_EQ(tokenizer.eos_id(), 2);
  EXPECT_EQ(tokenizer.unk_id(), 3);
  EXPECT_EQ(tokenizer.mask_id(), 50264);
  EXPECT_EQ(tokenizer.vocab_size(), 50265);
  EXPECT_FALSE(tokenizer.IsSpecialId(tokenizer.TokenToId("<|endoftext|>")));
}

TEST(BartTokenizerTest, MatchesEveryFixtureCase) {
  const BartTokenizer& tokenizer = FixtureTokenizer();
  const std::vector<nlohmann::json> cases = ReadCases();
  ASSERT_EQ(cases.size(), 54u);
  for (const nlohmann::json& test_case : cases) {
    const std::string text = test_case["text"];
    SCOPED_TRACE(text);
    const std::vector<int64_t> ids = tokenizer.Encode(text);
    EXPECT_EQ(tokenizer.Tokenize(text), test_case["tokens"].get<std::vector<std::string>>());
    EXPECT_EQ(ids, test_case["ids"].get<std::vector<int64_t>>());
    EXPECT_EQ(tokenizer.Decode(ids), test_case["decoded"].get<std::string>());
  }
}

TEST(BartTokenizerTest, EncodingIsTheConcatenationOfItsWords) {
  const BartTokenizer& tokenizer = FixtureTokenizer();
  // The second and third occurrences come from the per-word cache.
  const std::vector<int64_t> first = tokenizer.EncodeWithoutSpecialTokens("unfathomable");
  const std::vector<int64_t> spaced = tokenizer.EncodeWithoutSpecialTokens(" unfathomable");
  std::vector<int64_t> expected = {tokenizer.bos_id()};
  for (const auto* part : {&first, &spaced, &spaced}) {
    expected.insert(expected.end(), part->begin(), part->end());
  }
  expected.push_back(tokenizer.eos_id());
  EXPECT_EQ(tokenizer.Encode("unfathomable unfathomable unfathomable"), expected);
  EXPECT_EQ(tokenizer.Decode(expected), "unfathomable unfathomable unfathomable");
}

TEST(BartTokenizerTest, DecodeKeepsSpecialTokensWhenAsked) {
  const BartTokenizer& tokenizer = FixtureTokenizer();
  const std::vector<int64_t> ids = tokenizer.Encode("hello");
  EXPECT_EQ(tokenizer.Decode(ids, /*skip_special_tokens=*/false), "<s>hello</s>");
  EXPECT_EQ(tokenizer.Decode(ids, /*skip_special_tokens=*/true), "hello");
}

TEST(BartTokenizerTest, CleanUpCanBeTurnedOff) {
  const BartTokenizer& tokenizer = FixtureTokenizer();
  const std::string text = "It 's a test , is n't it ?";
  const std::vector<int64_t> ids = tokenizer.Encode(text);
  EXPECT_EQ(tokenizer.Decode(ids, true, /*clean_up_tokenization_spaces=*/false), text);
  EXPECT_EQ(tokenizer.Decode(ids), "It's a test, isn't it?");
}

TEST(BartTokenizerTest, InvalidUtf8DecodesLikePythonReplace) {
  const BartTokenizer& tokenizer = FixtureTokenizer();
  auto byte_id = [&](unsigned char byte) { return tokenizer.TokenToId(ByteSymbols()[byte]); };
  // b"\xe2\x82a" -> "\ufffda": a truncated sequence is one maximal subpart.
  EXPECT_EQ(tokenizer.Decode({byte_id(0xE2), byte_id(0x82), byte_id('a')}), "\xEF\xBF\xBD" "a");
  // b"\xf0\x80" -> two replacements: 0x80 cannot follow 0xF0.
  EXPECT_EQ(tokenizer.Decode({byte_id(0xF0), byte_id(0x80)}), "\xEF\xBF\xBD\xEF\xBF\xBD");
  // Surrogate encodings are invalid: b"\xed\xa0\x80" -> three replacements.
  EXPECT_EQ(tokenizer.Decode({byte_id(0xED), byte_id(0xA0), byte_id(0x80)}),
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(BartTokenizerTest, InvalidUtf8InputRoundTripsByteForByte) {
  const BartTokenizer& tokenizer = FixtureTokenizer();
  const std::string text = "ab\xFF" "cd \xC3";
  EXPECT_EQ(tokenizer.Decode(tokenizer.Encode(text)), "ab\xEF\xBF\xBD" "cd \xEF\xBF\xBD");
  std::string joined;
  for (const std::string_view piece : SplitPreTokens(text)) joined += piece;
  EXPECT_EQ(joined, text);
}

TEST(BartTokenizerTest, OutOfRangeIdsDecodeAsUnknown) {
  const BartTokenizer& tokenizer = FixtureTokenizer();
  const int64_t hello = tokenizer.TokenToId("hello");
  EXPECT_EQ(tokenizer.Decode({hello, 99999999, -5}), "hello");
  EXPECT_EQ(tokenizer.Decode({hello, 99999999}, /*skip_special_tokens=*/false), "hello<unk>");
}

TEST(ByteSymbolsTest, Gpt2Table) {
  const std::array<std::string, 256>& symbols = ByteSymbols();
  EXPECT_EQ(symbols[' '], "\xC4\xA0");   // U+0120 'Ġ'
  EXPECT_EQ(symbols['\n'], "\xC4\x8A");  // U+010A 'Ċ'
  EXPECT_EQ(symbols[0], "\xC4\x80");     // U+0100 'Ā'
  EXPECT_EQ(symbols['a'], "a");
  EXPECT_EQ(symbols[0xE9], "\xC3\xA9");  // Printable Latin-1 stands for itself: 'é'.
  EXPECT_EQ(symbols[0xAD], "\xC5\x83");  // Soft hyphen is not printable: U+0143.
  EXPECT_EQ(std::set<std::string>(symbols.begin(), symbols.end()).size(), 256u);
  EXPECT_EQ(BytesToSymbols(" a\n"), "\xC4\xA0" "a\xC4\x8A");
}

TEST(PreTokenizerTest, WhitespaceIsTheTwentyFiveWhiteSpaceCodePoints) {
  std::vector<char32_t> found;
  for (char32_t c = 0; c <= 0x10FFFF; ++c) {
    if (IsUnicodeWhitespace(c)) found.push_back(c);
  }
  EXPECT_EQ(found, (std::vector<char32_t>{0x09,   0x0A,   0x0B,   0x0C,   0x0D,   0x20,   0x85,
                                          0xA0,   0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
                                          0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028,
                                          0x2029, 0x202F, 0x205F, 0x3000}));
}

TEST(PreTokenizerTest, SplitsLikeTheGpt2Regex) {
  EXPECT_THAT(SplitPreTokens("I'll  go, they've 42x"),
              ElementsAre("I", "'ll", " ", " go", ",", " they", "'ve", " 42", "x"));
  EXPECT_THAT(SplitPreTokens("a \n\n b  "), ElementsAre("a", " \n\n", " b", "  "));
  EXPECT_THAT(SplitPreTokens("x\u00A0y"), ElementsAre("x", "\u00A0", "y"));
  // U+001F is not whitespace for the regex: it is punctuation-like ("other").
  EXPECT_THAT(SplitPreTokens("a \x1F b"), ElementsAre("a", " \x1F", " b"));
  EXPECT_TRUE(SplitPreTokens("").empty());
}

TEST(BartTokenizerTest, MaskSwallowsPythonWhitespaceBeforeIt) {
  const BartTokenizer& tokenizer = FixtureTokenizer();
  // str.rstrip() also removes U+001F and U+00A0; other special tokens strip nothing.
  EXPECT_THAT(tokenizer.Tokenize("a \x1F\u00A0\t<mask>"), ElementsAre("a", "<mask>"));
  EXPECT_THAT(tokenizer.Tokenize("a <s>"), ElementsAre("a", "\xC4\xA0", "<s>"));
  EXPECT_THAT(tokenizer.Tokenize(" <mask> b"), ElementsAre("<mask>", "\xC4\xA0" "b"));
}

// A small consistent vocabulary: special tokens, the 256 byte symbols, and "ab" from merge a b.
class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* special : {"<s>", "<pad>", "</s>", "<unk>"}) tokens_.push_back(special);
    for (const std::string& symbol : ByteSymbols()) tokens_.push_back(symbol);
    tokens_.push_back("ab");
    tokens_.push_back("<mask>");
  }

  std::string Write(const std::string& name, const std::string& contents) {
    const std::string path = ::testing::TempDir() + "/" + name;
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  std::string VocabJson() const {
    nlohmann::json vocab = nlohmann::json::object();
    for (size_t id = 0; id < tokens_.size(); ++id) vocab[tokens_[id]] = id;
    return vocab.dump();
  }

  absl::Status LoadStatus(const std::string& vocab, const std::string& merges) {
    return BartTokenizer::Load(Write("vocab.json", vocab), Write("merges.txt", merges)).status();
  }

  std::vector<std::string> tokens_;
};

TEST_F(BadInputTest, ConsistentFilesLoadAndMerge) {
  absl::StatusOr<BartTokenizer> tokenizer = BartTokenizer::Load(
      Write("vocab.json", VocabJson()), Write("merges.txt", "#version: 0.2\na b\n"));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_THAT(tokenizer->Tokenize("abc"), ElementsAre("ab", "c"));
  EXPECT_EQ(tokenizer->mask_id(), 261);
}

TEST_F(BadInputTest, MissingFilesNameThePath) {
  const absl::Status status = BartTokenizer::Load("/nonexistent/vocab.json", "x").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("/nonexistent/vocab.json"));
  const absl::Status merges = BartTokenizer::Load(Write("vocab.json", VocabJson()),
                                                  "/nonexistent/merges.txt")
                                  .status();
  EXPECT_THAT(merges.message(), HasSubstr("/nonexistent/merges.txt"));
}

TEST_F(BadInputTest, MalformedJsonNamesFileAndLine) {
  const absl::Status status = LoadStatus("{\"<s>\": 0,\n\"a\": }", "");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("vocab.json: malformed JSON"));
  EXPECT_THAT(status.message(), HasSubstr("line 2"));
  EXPECT_THAT(LoadStatus("[1, 2]", "").message(), HasSubstr("expected a non-empty JSON object"));
  EXPECT_THAT(LoadStatus("{\"<s>\": \"zero\"}", "").message(),
              HasSubstr("the id of token '<s>' is \"zero\", expected an integer"));
}

TEST_F(BadInputTest, IdsMustBeUniqueAndDense) {
  nlohmann::json vocab = nlohmann::json::parse(VocabJson());
  vocab["<pad>"] = 0;
  EXPECT_THAT(LoadStatus(vocab.dump(), "").message(), HasSubstr("id 0 is used by both"));
  vocab["<pad>"] = 7000;
  EXPECT_THAT(LoadStatus(vocab.dump(), "").message(),
              HasSubstr("token '<pad>' has id 7000, expected ids 0..261"));
}

TEST_F(BadInputTest, MissingSpecialTokenOrByteSymbol) {
  tokens_.back() = "<masque>";
  EXPECT_THAT(LoadStatus(VocabJson(), "").message(),
              HasSubstr("the special token '<mask>' is missing"));
  tokens_.back() = "<mask>";
  tokens_[4 + 'q'] = "qq";
  EXPECT_THAT(LoadStatus(VocabJson(), "").message(),
              HasSubstr("the byte symbol 'q' (byte 113) is missing"));
}

TEST_F(BadInputTest, MergesThatDisagreeWithTheVocabulary) {
  const absl::Status missing_result = LoadStatus(VocabJson(), "#version: 0.2\na b\nb c\n");
  EXPECT_EQ(missing_result.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing_result.message(),
              HasSubstr("merges.txt:3: merge 'b c' needs the token 'bc', which is not in"));
  EXPECT_THAT(LoadStatus(VocabJson(), "#version: 0.2\nab zz\n").message(),
              HasSubstr("merges.txt:2: merge 'ab zz' needs the token 'zz'"));
  // The real BART merges against this small vocabulary: the first merge already fails.
  std::ifstream bart_merges(kMerges);
  std::string bart((std::istreambuf_iterator<char>(bart_merges)), {});
  EXPECT_THAT(LoadStatus(VocabJson(), bart).message(),
              HasSubstr("merges.txt:2: merge '\xC4\xA0 t' needs the token '\xC4\xA0t'"));
}

TEST_F(BadInputTest, MalformedOrRepeatedMergeLines) {
  EXPECT_THAT(LoadStatus(VocabJson(), "#version: 0.2\na b c\n").message(),
              HasSubstr("merges.txt:2: expected 'left right', got 'a b c'"));
  EXPECT_THAT(LoadStatus(VocabJson(), "#version: 0.2\na b\n\n").message(),
              HasSubstr("merges.txt:3: expected 'left right', got ''"));
  EXPECT_THAT(LoadStatus(VocabJson(), "a b\r\na b\r\n").message(),
              HasSubstr("merges.txt:2: merge 'a b' repeats line 1"));
}

}  // namespace
}  // namespace taskmoe
