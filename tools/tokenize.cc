// Tokenizes a JSON-lines file of {"text": ...} with a BART tokenizer and writes one JSON line
// per input: {"ids": [...], "tokens": [...], "decoded": "..."} (ids with <s> ... </s>, tokens
// without, decoded with skip_special_tokens and HF's clean-up). Blank input lines are skipped.
//
//   tokenize --model=path/to/bart-base --input=texts.jsonl --output=tokens.jsonl
//   tokenize --vocab=vocab.json --merges=merges.txt --input=texts.jsonl

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "data/tokenizer.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "nlohmann/json.hpp"
#include "tools/model_flags.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, model_dir, "", "Deprecated name of --model.");
ABSL_FLAG(std::string, vocab, "", "vocab.json (instead of --model).");
ABSL_FLAG(std::string, merges, "", "merges.txt (instead of --model).");
ABSL_FLAG(std::string, input, "", "JSON-lines file, one {\"text\": ...} object per line.");
ABSL_FLAG(std::string, output, "", "Output JSON-lines file; empty writes to stdout.");

namespace taskmoe {
namespace {

absl::StatusOr<BartTokenizer> LoadTokenizer() {
  TASKMOE_ASSIGN_OR_RETURN(
      const std::string model_dir,
      ModelFlag("model_dir", absl::GetFlag(FLAGS_model_dir), /*required=*/false));
  const std::string vocab = absl::GetFlag(FLAGS_vocab);
  const std::string merges = absl::GetFlag(FLAGS_merges);
  if (!model_dir.empty() && vocab.empty() && merges.empty()) {
    return BartTokenizer::LoadFromDirectory(model_dir);
  }
  if (model_dir.empty() && !vocab.empty() && !merges.empty()) {
    return BartTokenizer::Load(vocab, merges);
  }
  return absl::InvalidArgumentError("give either --model, or both --vocab and --merges");
}

// One output line of a {"text": ...} input line.
absl::StatusOr<std::string> TokenizeLine(const BartTokenizer& tokenizer, absl::string_view line,
                                         const std::string& where) {
  nlohmann::json record;
  try {
    record = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& error) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": malformed JSON: ", error.what()));
  }
  if (!record.is_object() || !record.contains("text") || !record["text"].is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": expected an object with a string \"text\""));
  }
  const std::string text = record["text"];
  const std::vector<int64_t> ids = tokenizer.Encode(text);
  nlohmann::json result;
  result["ids"] = ids;
  result["tokens"] = tokenizer.Tokenize(text);
  result["decoded"] = tokenizer.Decode(ids);
  return result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

absl::Status Run() {
  TASKMOE_ASSIGN_OR_RETURN(const BartTokenizer tokenizer, LoadTokenizer());
  const std::string input_path = absl::GetFlag(FLAGS_input);
  if (input_path.empty()) return absl::InvalidArgumentError("--input is required");
  TASKMOE_ASSIGN_OR_RETURN(const std::string input, ReadFileBytes(input_path));
  std::string output;
  int64_t line_number = 0;
  for (absl::string_view line : absl::StrSplit(input, '\n')) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == absl::string_view::npos) continue;
    TASKMOE_ASSIGN_OR_RETURN(
        const std::string tokenized,
        TokenizeLine(tokenizer, line, absl::StrCat(input_path, ":", line_number)));
    output += tokenized;
  }
  return WriteToolOutput(absl::GetFlag(FLAGS_output), output);
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "tokenize";
  tool.output_flags = {"output"};
  tool.usage =
      "Tokenizes a JSON-lines file of {\"text\": ...} with a BART tokenizer.";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
