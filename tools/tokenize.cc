// Tokenizes a JSON-lines file of {"text": ...} with a BART tokenizer and writes one JSON line
// per input: {"ids": [...], "tokens": [...], "decoded": "..."} (ids with <s> ... </s>, tokens
// without, decoded with skip_special_tokens and HF's clean-up). Blank input lines are skipped.
//
//   tokenize --model_dir=path/to/bart-base --input=texts.jsonl --output=tokens.jsonl
//   tokenize --vocab=vocab.json --merges=merges.txt --input=texts.jsonl

#include <fstream>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "data/tokenizer.h"
#include "nlohmann/json.hpp"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, model_dir, "", "Directory with vocab.json and merges.txt.");
ABSL_FLAG(std::string, vocab, "", "vocab.json (instead of --model_dir).");
ABSL_FLAG(std::string, merges, "", "merges.txt (instead of --model_dir).");
ABSL_FLAG(std::string, input, "", "JSON-lines file, one {\"text\": ...} object per line.");
ABSL_FLAG(std::string, output, "", "Output JSON-lines file; empty writes to stdout.");

namespace taskmoe {
namespace {

absl::StatusOr<BartTokenizer> LoadTokenizer() {
  const std::string model_dir = absl::GetFlag(FLAGS_model_dir);
  const std::string vocab = absl::GetFlag(FLAGS_vocab);
  const std::string merges = absl::GetFlag(FLAGS_merges);
  if (!model_dir.empty() && vocab.empty() && merges.empty()) {
    return BartTokenizer::LoadFromDirectory(model_dir);
  }
  if (model_dir.empty() && !vocab.empty() && !merges.empty()) {
    return BartTokenizer::Load(vocab, merges);
  }
  return absl::InvalidArgumentError("give either --model_dir, or both --vocab and --merges");
}

absl::Status Run() {
  absl::StatusOr<BartTokenizer> tokenizer = LoadTokenizer();
  if (!tokenizer.ok()) return tokenizer.status();
  const std::string input_path = absl::GetFlag(FLAGS_input);
  std::ifstream input(input_path);
  if (input_path.empty() || !input) {
    return absl::NotFoundError(absl::StrCat("cannot open --input '", input_path, "'"));
  }
  const std::string output_path = absl::GetFlag(FLAGS_output);
  std::ofstream output_file;
  if (!output_path.empty()) {
    output_file.open(output_path, std::ios::binary);
    if (!output_file) {
      return absl::PermissionDeniedError(absl::StrCat("cannot write --output '", output_path, "'"));
    }
  }
  std::ostream& output = output_path.empty() ? std::cout : output_file;

  int64_t line_number = 0;
  for (std::string line; std::getline(input, line);) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& error) {
      return absl::InvalidArgumentError(
          absl::StrCat(input_path, ":", line_number, ": malformed JSON: ", error.what()));
    }
    if (!record.is_object() || !record.contains("text") || !record["text"].is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(
          input_path, ":", line_number, ": expected an object with a string \"text\""));
    }
    const std::string text = record["text"];
    const std::vector<int64_t> ids = tokenizer->Encode(text);
    nlohmann::json result;
    result["ids"] = ids;
    result["tokens"] = tokenizer->Tokenize(text);
    result["decoded"] = tokenizer->Decode(ids);
    output << result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  }
  output.flush();
  if (!output) return absl::DataLossError(absl::StrCat("writing '", output_path, "' failed"));
  return absl::OkStatus();
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "tokenize";
  tool.usage =
      "Tokenizes a JSON-lines file of {\"text\": ...} with a BART tokenizer.";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
