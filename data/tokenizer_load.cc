// BartTokenizer::Load: reading and checking vocab.json and merges.txt.

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "data/tokenizer.h"
#include "data/tokenizer_internal.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "nlohmann/json.hpp"

namespace taskmoe {

using tokenizer_internal::PairKey;

absl::StatusOr<BartTokenizer> BartTokenizer::LoadFromDirectory(const std::string& model_dir) {
  return Load(model_dir + "/vocab.json", model_dir + "/merges.txt");
}

absl::StatusOr<BartTokenizer> BartTokenizer::Load(const std::string& vocab_json,
                                                  const std::string& merges_txt) {
  BartTokenizer tokenizer;
  TASKMOE_RETURN_IF_ERROR(tokenizer.ReadVocab(vocab_json));
  TASKMOE_RETURN_IF_ERROR(tokenizer.FindSpecialAndByteIds(vocab_json));
  TASKMOE_RETURN_IF_ERROR(tokenizer.ReadMerges(merges_txt, vocab_json));
  return tokenizer;
}

// vocab.json: one JSON object token -> id, ids exactly 0..N-1.
absl::Status BartTokenizer::ReadVocab(const std::string& vocab_json) {
  TASKMOE_ASSIGN_OR_RETURN(const std::string vocab_text, ReadFileBytes(vocab_json));
  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(vocab_text);
  } catch (const nlohmann::json::parse_error& error) {
    return absl::InvalidArgumentError(
        absl::StrCat(vocab_json, ": malformed JSON: ", error.what()));
  }
  if (!vocab.is_object() || vocab.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(vocab_json, ": expected a non-empty JSON object of token -> id"));
  }
  id_to_token_.assign(vocab.size(), std::string());
  std::vector<bool> id_seen(vocab.size(), false);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer()) {
      return absl::InvalidArgumentError(absl::StrCat(vocab_json, ": the id of token '", it.key(),
                                                     "' is ", it.value().dump(),
                                                     ", expected an integer"));
    }
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id >= static_cast<int64_t>(vocab.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat(vocab_json, ": token '", it.key(), "' has id ", id, ", expected ids 0..",
                       vocab.size() - 1, " (one per token)"));
    }
    if (id_seen[id]) {
      return absl::InvalidArgumentError(absl::StrCat(vocab_json, ": id ", id,
                                                     " is used by both '", id_to_token_[id],
                                                     "' and '", it.key(), "'"));
    }
    id_seen[id] = true;
    id_to_token_[id] = it.key();
    token_to_id_[it.key()] = id;
  }
  return absl::OkStatus();
}

absl::Status BartTokenizer::FindSpecialAndByteIds(const std::string& vocab_json) {
  for (auto [token, id] : {std::pair<const char*, int64_t*>{kBosToken, &bos_id_},
                           {kPadToken, &pad_id_},
                           {kEosToken, &eos_id_},
                           {kUnkToken, &unk_id_},
                           {kMaskToken, &mask_id_}}) {
    *id = TokenToId(token);
    if (*id < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(vocab_json, ": the special token '", token, "' is missing"));
    }
    special_tokens_.emplace_back(token, *id);
  }
  const std::array<std::string, 256>& symbols = ByteSymbols();
  for (int byte = 0; byte < 256; ++byte) {
    byte_ids_[byte] = TokenToId(symbols[byte]);
    if (byte_ids_[byte] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(vocab_json, ": the byte symbol '", symbols[byte], "' (byte ", byte,
                       ") is missing; a byte-level vocabulary needs all 256"));
    }
  }
  return absl::OkStatus();
}

// merges.txt: optional "#version" line, then "left right" per line in rank order.
absl::Status BartTokenizer::ReadMerges(const std::string& merges_txt,
                                       const std::string& vocab_json) {
  TASKMOE_ASSIGN_OR_RETURN(const std::string merges_text, ReadFileBytes(merges_txt));
  std::vector<absl::string_view> lines = absl::StrSplit(merges_text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();  // The final newline.
  absl::flat_hash_map<uint64_t, size_t> line_of_merge;
  int32_t rank = 0;
  for (size_t index = 0; index < lines.size(); ++index) {
    const size_t line_number = index + 1;
    absl::string_view line = absl::StripSuffix(lines[index], "\r");  // CRLF files.
    if (index == 0 && absl::StartsWith(line, "#version")) continue;
    const std::vector<absl::string_view> parts =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (parts.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(merges_txt, ":", line_number, ": expected 'left right', got '",
                       line, "'"));
    }
    const int64_t left = TokenToId({parts[0].data(), parts[0].size()});
    const int64_t right = TokenToId({parts[1].data(), parts[1].size()});
    const std::string merged = absl::StrCat(parts[0], parts[1]);
    const int64_t merged_id = TokenToId(merged);
    for (const auto& [name, id] : {std::pair<absl::string_view, int64_t>{parts[0], left},
                                   {parts[1], right},
                                   {merged, merged_id}}) {
      if (id < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            merges_txt, ":", line_number, ": merge '", line, "' needs the token '", name,
            "', which is not in ", vocab_json, " (the files do not belong together)"));
      }
    }
    const uint64_t key = PairKey(left, right);
    const auto [previous, inserted] = line_of_merge.emplace(key, line_number);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(merges_txt, ":", line_number, ": merge '",
                                                     line, "' repeats line ",
                                                     previous->second));
    }
    merges_[key] = {rank++, merged_id};
  }
  return absl::OkStatus();
}

}  // namespace taskmoe
