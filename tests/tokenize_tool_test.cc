// Runs the tools/tokenize binary on the BART tokenizer fixture cases and compares its output.

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/shared_data.h"

namespace taskmoe {
namespace {

using ::testing::HasSubstr;

const std::string kFixtures = taskmoe::testing::SharedPath("fixtures/bart_tokenizer");

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream stream(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

std::string ReadAll(const std::string& path) {
  std::ifstream stream(path);
  std::stringstream contents;
  contents << stream.rdbuf();
  return contents.str();
}

TEST(TokenizeToolTest, ReproducesTheFixtureCases) {
  const std::string output = ::testing::TempDir() + "/tokenized.jsonl";
  const std::string command = "tools/tokenize --model=" + kFixtures + " --input=" + kFixtures +
                              "/cases.jsonl --output=" + output;
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const std::vector<std::string> cases = ReadLines(kFixtures + "/cases.jsonl");
  const std::vector<std::string> results = ReadLines(output);
  ASSERT_EQ(cases.size(), 54u);
  ASSERT_EQ(results.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const nlohmann::json expected = nlohmann::json::parse(cases[i]);
    const nlohmann::json actual = nlohmann::json::parse(results[i]);
    SCOPED_TRACE(expected["text"].get<std::string>());
    EXPECT_EQ(actual["ids"], expected["ids"]);
    EXPECT_EQ(actual["tokens"], expected["tokens"]);
    EXPECT_EQ(actual["decoded"], expected["decoded"]);
  }
}

TEST(TokenizeToolTest, MalformedInputLineIsNamed) {
  const std::string input = ::testing::TempDir() + "/bad.jsonl";
  std::ofstream(input) << "{\"text\": \"fine\"}\n\n{\"txt\": \"no text key\"}\n";
  const std::string errors = ::testing::TempDir() + "/errors.txt";
  const std::string command = "tools/tokenize --vocab=" + kFixtures + "/vocab.json --merges=" +
                              kFixtures + "/merges.txt --input=" + input + " --output=" +
                              ::testing::TempDir() + "/out.jsonl 2>" + errors;
  EXPECT_NE(std::system(command.c_str()), 0);
  EXPECT_THAT(ReadAll(errors), HasSubstr("bad.jsonl:3: expected an object with a string \"text\""));
}

TEST(TokenizeToolTest, AFailedRunLeavesTheOutputAsItWas) {
  const std::string input = ::testing::TempDir() + "/half_bad.jsonl";
  std::ofstream(input) << "{\"text\": \"fine\"}\nnot json\n";
  const std::string output = ::testing::TempDir() + "/kept.jsonl";
  std::ofstream(output) << "an earlier run's output\n";
  const std::string tokenizer =
      " --vocab=" + kFixtures + "/vocab.json --merges=" + kFixtures + "/merges.txt";
  const std::string errors = ::testing::TempDir() + "/half_bad_errors.txt";
  EXPECT_NE(std::system(("tools/tokenize" + tokenizer + " --input=" + input + " --output=" +
                         output + " 2>" + errors)
                            .c_str()),
            0);
  EXPECT_THAT(ReadAll(errors), HasSubstr("half_bad.jsonl:2: malformed JSON"));
  EXPECT_EQ(ReadAll(output), "an earlier run's output\n");
  // Nor may the output be the input.
  EXPECT_NE(std::system(("tools/tokenize" + tokenizer + " --input=" + output + " --output=" +
                         output + " 2>" + errors)
                            .c_str()),
            0);
  EXPECT_THAT(ReadAll(errors), HasSubstr("tokenize: the output " + output +
                                         " would overwrite the input " + output));
  EXPECT_EQ(ReadAll(output), "an earlier run's output\n");
}

TEST(TokenizeToolTest, NeedsModelDirOrVocabAndMerges) {
  const std::string errors = ::testing::TempDir() + "/usage.txt";
  const std::string command = "tools/tokenize --vocab=" + kFixtures + "/vocab.json 2>" + errors;
  EXPECT_NE(std::system(command.c_str()), 0);
  EXPECT_THAT(ReadAll(errors), HasSubstr("give either --model, or both --vocab and --merges"));
}

}  // namespace
}  // namespace taskmoe
