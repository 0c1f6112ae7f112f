// Runs tools/generate on a small random BART with the bart-base tokenizer and checks that the
// tool's text equals tokenizer + Generate + Decode done through the library.

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/tokenizer.h"
#include "moe/model/bart.h"
#include "moe/model/bart_weights.h"
#include "moe/model/generation.h"
#include "gmock/gmock.h"
#include "tests/shared_data.h"
#include "tests/tool_runner.h"

namespace taskmoe {
namespace {

class GenerateToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/random_bart";
    std::filesystem::create_directories(dir_);
    const std::string tokenizer_dir = testing::SharedPath("fixtures/bart_tokenizer");
    for (const char* file : {"vocab.json", "merges.txt"}) {
      std::filesystem::copy_file(tokenizer_dir + "/" + file, dir_ + "/" + file,
                                 std::filesystem::copy_options::overwrite_existing);
    }
    nlohmann::json config = {{"vocab_size", 50265}, {"d_model", 16}, {"encoder_layers", 1},
                             {"decoder_layers", 1}, {"encoder_attention_heads", 2},
                             {"decoder_attention_heads", 2}, {"encoder_ffn_dim", 32},
                             {"decoder_ffn_dim", 32}, {"max_position_embeddings", 64},
                             {"activation_function", "gelu"}};
    std::ofstream(dir_ + "/config.json") << config.dump(2);
    absl::StatusOr<BartConfig> parsed = LoadBartConfig(dir_ + "/config.json");
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    at::manual_seed(7);
    BartForConditionalGeneration model(*parsed);
    ASSERT_TRUE(SaveBartWeights(model, dir_ + "/model.safetensors").ok());
  }

  std::vector<std::string> RunTool(const std::string& arguments) {
    const std::string output = ::testing::TempDir() + "/generated.txt";
    std::filesystem::remove(output);
    EXPECT_EQ(std::system(("tools/generate --threads=1 --model=" + dir_ + " --output=" +
                           output + " " + arguments)
                              .c_str()),
              0);
    std::ifstream in(output);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  std::string LibraryGenerate(const std::string& text, const GenerationOptions& options) {
    absl::StatusOr<BartTokenizer> tokenizer = BartTokenizer::LoadFromDirectory(dir_);
    absl::StatusOr<BartForConditionalGeneration> model = LoadBartDirectory(dir_);
    EXPECT_TRUE(tokenizer.ok() && model.ok());
    const std::vector<int64_t> ids = tokenizer->Encode(text);
    const at::Tensor input_ids = at::tensor(ids, at::kLong).unsqueeze(0);
    absl::StatusOr<GenerationOutput> out =
        Generate(*model, input_ids, at::ones_like(input_ids), options);
    EXPECT_TRUE(out.ok());
    const at::Tensor row = out->sequences[0].contiguous();
    return tokenizer->Decode(
        std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel()));
  }

  std::string dir_;
};

TEST_F(GenerateToolTest, TextFlagMatchesLibraryGreedy) {
  GenerationOptions options;
  options.max_length = 8;
  const std::vector<std::string> lines = RunTool("--max_length=8 --text='Hello world.'");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], LibraryGenerate("Hello world.", options));
}

TEST_F(GenerateToolTest, InputFileBatchedBeamSearchMatchesOneByOne) {
  const std::vector<std::string> texts = {"A short one.", "A noticeably longer input sentence, with commas.",
                                          "Third"};
  const std::string input = ::testing::TempDir() + "/inputs.txt";
  {
    std::ofstream out(input);
    for (const std::string& t : texts) out << t << "\n";
  }
  const std::vector<std::string> lines = RunTool(
      "--input=" + input + " --num_beams=3 --max_length=10 --decoder_start_token_id=0 --batch_size=2");
  ASSERT_EQ(lines.size(), texts.size());
  GenerationOptions options;
  options.num_beams = 3;
  options.max_length = 10;
  options.decoder_start_token_id = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(lines[i], LibraryGenerate(texts[i], options)) << texts[i];
  }
}

TEST_F(GenerateToolTest, BadFlagsFail) {
  EXPECT_NE(std::system(("tools/generate --model=" + dir_ + " 2>/dev/null").c_str()), 0);
  EXPECT_NE(std::system(("tools/generate --model=" + dir_ +
                         " --text=x --num_beams=0 2>/dev/null").c_str()),
            0);
}

TEST_F(GenerateToolTest, InputLengthsOutsideThePositionsAreOneLineErrors) {
  const std::string output = ::testing::TempDir() + "/not_written.txt";
  for (const char* length : {"0", "-1", "1", "65"}) {
    std::filesystem::remove(output);
    const testing::ToolResult result = testing::RunToolBinary(
        "generate", "--model=" + dir_ + " --text=x --output=" + output +
                        " --max_input_length=" + length);
    EXPECT_EQ(WEXITSTATUS(result.exit_code), 1) << result.output;
    EXPECT_THAT(result.output, ::testing::HasSubstr(
                                   "generate: --max_input_length=" + std::string(length) +
                                   ": must be in [2, 64] (max_position_embeddings of " + dir_ +
                                   "/config.json)\n"));
    EXPECT_FALSE(std::filesystem::exists(output));
  }
  // The whole range works, 2 included (<s> and </s> only).
  EXPECT_EQ(RunTool("--text='Hello world.' --max_length=4 --max_input_length=2").size(), 1u);
  EXPECT_EQ(RunTool("--text='Hello world.' --max_length=4 --max_input_length=64").size(), 1u);
}

}  // namespace
}  // namespace taskmoe
