// BartTokenizer: loading vocab.json and merges.txt, and Encode on arbitrary bytes. An input of
// three parts (fuzz_input.h) is vocab.json, merges.txt and the text; any other input is text for
// a small built-in tokenizer. Whatever loads must encode every text to ids of its vocabulary
// between <s> and </s>, and decode valid UTF-8 without special tokens back to itself.

#include <string>
#include <vector>

#include <glog/logging.h>
#include <nlohmann/json.hpp>

#include "data/python_str.h"
#include "data/tokenizer.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using taskmoe::BartTokenizer;
using taskmoe::fuzzing::WriteScratchFile;

// Special tokens, the 256 byte symbols and a few merges, so the BPE loop has work to do.
const BartTokenizer& BuiltInTokenizer() {
  static const BartTokenizer* const tokenizer = [] {
    std::vector<std::string> tokens = {taskmoe::kBosToken, taskmoe::kPadToken,
                                       taskmoe::kEosToken, taskmoe::kUnkToken};
    for (const std::string& symbol : taskmoe::ByteSymbols()) tokens.push_back(symbol);
    const std::string merges = "#version: 0.2\nĠ t\nh e\nĠt he\ni n\ne r\nĠ a\n";
    for (const char* merged : {"Ġt", "he", "Ġthe", "in", "er", "Ġa"}) tokens.push_back(merged);
    tokens.push_back(taskmoe::kMaskToken);
    nlohmann::json vocab = nlohmann::json::object();
    for (size_t id = 0; id < tokens.size(); ++id) vocab[tokens[id]] = id;
    absl::StatusOr<BartTokenizer> loaded =
        BartTokenizer::Load(WriteScratchFile("builtin_vocab.json", vocab.dump()),
                            WriteScratchFile("builtin_merges.txt", merges));
    CHECK(loaded.ok()) << loaded.status();
    return new BartTokenizer(*std::move(loaded));
  }();
  return *tokenizer;
}

bool HoldsSpecialToken(std::string_view text) {
  for (const char* token : {taskmoe::kBosToken, taskmoe::kPadToken, taskmoe::kEosToken,
                            taskmoe::kUnkToken, taskmoe::kMaskToken}) {
    if (text.find(token) != std::string_view::npos) return true;
  }
  return false;
}

void CheckEncode(const BartTokenizer& tokenizer, std::string_view text) {
  const std::vector<int64_t> ids = tokenizer.Encode(text);
  CHECK_GE(ids.size(), 2u);
  CHECK_EQ(ids.front(), tokenizer.bos_id());
  CHECK_EQ(ids.back(), tokenizer.eos_id());
  for (int64_t id : ids) CHECK(id >= 0 && id < tokenizer.vocab_size()) << id;
  if (taskmoe::python_str::DecodeUtf8(text).ok() && !HoldsSpecialToken(text)) {
    CHECK_EQ(tokenizer.Decode(ids, /*skip_special_tokens=*/true,
                              /*clean_up_tokenization_spaces=*/false),
             text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string_view> parts =
      taskmoe::fuzzing::SplitParts(taskmoe::fuzzing::AsText(data, size), 3);
  if (parts.size() < 3) {
    CheckEncode(BuiltInTokenizer(), parts[0]);
    return 0;
  }
  const absl::StatusOr<BartTokenizer> tokenizer = BartTokenizer::Load(
      WriteScratchFile("vocab.json", parts[0]), WriteScratchFile("merges.txt", parts[1]));
  if (tokenizer.ok()) CheckEncode(*tokenizer, parts[2]);
  return 0;
}
