// BartTokenizer's encoding (special tokens, BPE merges with a per-word cache) and decoding.

#include "data/tokenizer.h"

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "data/tokenizer_internal.h"
#include "glog/logging.h"

namespace taskmoe {
namespace {

using tokenizer_internal::DecodeChars;
using tokenizer_internal::DecodedChar;
using tokenizer_internal::DecodeUtf8WithReplacement;
using tokenizer_internal::PairKey;
using tokenizer_internal::PythonRstrip;
using tokenizer_internal::SymbolToByte;

// Debian's Abseil has its own string_view type, distinct from std::string_view.
absl::string_view AsAbsl(std::string_view text) { return {text.data(), text.size()}; }

}  // namespace

bool BartTokenizer::IsSpecialId(int64_t id) const {
  return id == bos_id_ || id == pad_id_ || id == eos_id_ || id == unk_id_ || id == mask_id_;
}

const std::string& BartTokenizer::IdToToken(int64_t id) const {
  CHECK(id >= 0 && id < vocab_size()) << "token id " << id << " outside 0.." << vocab_size() - 1;
  return id_to_token_[id];
}

int64_t BartTokenizer::TokenToId(std::string_view token) const {
  const auto it = token_to_id_.find(AsAbsl(token));
  return it == token_to_id_.end() ? -1 : it->second;
}

std::vector<std::pair<std::string_view, int64_t>> BartTokenizer::SplitOnSpecialTokens(
    std::string_view text) const {
  std::vector<std::pair<std::string_view, int64_t>> pieces;
  size_t piece_begin = 0;
  size_t position = 0;
  while (position < text.size()) {
    // The longest special token that starts here (HF's tokens trie).
    const std::pair<std::string, int64_t>* match = nullptr;
    if (text[position] == '<') {
      for (const auto& special : special_tokens_) {
        if (text.substr(position, special.first.size()) == special.first &&
            (match == nullptr || special.first.size() > match->first.size())) {
          match = &special;
        }
      }
    }
    if (match == nullptr) {
      ++position;
      continue;
    }
    std::string_view before = text.substr(piece_begin, position - piece_begin);
    // <mask> is lstrip=True: it swallows the whitespace before it.
    if (match->second == mask_id_) before = PythonRstrip(before);
    if (!before.empty()) pieces.emplace_back(before, -1);
    pieces.emplace_back(match->first, match->second);
    position += match->first.size();
    piece_begin = position;
  }
  if (piece_begin < text.size()) pieces.emplace_back(text.substr(piece_begin), -1);
  return pieces;
}

std::vector<int64_t> BartTokenizer::ApplyMerges(std::string_view pre_token) const {
  std::vector<int64_t> symbols;
  symbols.reserve(pre_token.size());
  for (const char byte : pre_token) symbols.push_back(byte_ids_[static_cast<unsigned char>(byte)]);
  // Merge the lowest-ranked adjacent pair everywhere (left to right, non-overlapping) until no
  // adjacent pair has a rank.
  while (symbols.size() > 1) {
    int32_t best_rank = std::numeric_limits<int32_t>::max();
    uint64_t best_key = 0;
    int64_t best_merged = -1;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      const uint64_t key = PairKey(symbols[i], symbols[i + 1]);
      const auto it = merges_.find(key);
      if (it != merges_.end() && it->second.first < best_rank) {
        best_rank = it->second.first;
        best_key = key;
        best_merged = it->second.second;
      }
    }
    if (best_merged < 0) break;
    std::vector<int64_t> merged;
    merged.reserve(symbols.size());
    for (size_t i = 0; i < symbols.size(); ++i) {
      if (i + 1 < symbols.size() && PairKey(symbols[i], symbols[i + 1]) == best_key) {
        merged.push_back(best_merged);
        ++i;
      } else {
        merged.push_back(symbols[i]);
      }
    }
    symbols = std::move(merged);
  }
  return symbols;
}

void BartTokenizer::AppendBpeIds(std::string_view pre_token, std::vector<int64_t>* ids) const {
  {
    absl::MutexLock lock(&cache_->mutex);
    const auto it = cache_->ids.find(AsAbsl(pre_token));
    if (it != cache_->ids.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int64_t> word_ids = ApplyMerges(pre_token);
  ids->insert(ids->end(), word_ids.begin(), word_ids.end());
  absl::MutexLock lock(&cache_->mutex);
  cache_->ids.emplace(std::string(pre_token), std::move(word_ids));
}

std::vector<int64_t> BartTokenizer::EncodeWithoutSpecialTokens(std::string_view text) const {
  std::vector<int64_t> ids;
  for (const auto& [piece, special_id] : SplitOnSpecialTokens(text)) {
    if (special_id >= 0) {
      ids.push_back(special_id);
      continue;
    }
    for (const std::string_view pre_token : SplitPreTokens(piece)) AppendBpeIds(pre_token, &ids);
  }
  return ids;
}

std::vector<std::string> BartTokenizer::Tokenize(std::string_view text) const {
  std::vector<std::string> tokens;
  for (const int64_t id : EncodeWithoutSpecialTokens(text)) tokens.push_back(id_to_token_[id]);
  return tokens;
}

std::vector<int64_t> BartTokenizer::Encode(std::string_view text) const {
  std::vector<int64_t> ids = {bos_id_};
  const std::vector<int64_t> body = EncodeWithoutSpecialTokens(text);
  ids.insert(ids.end(), body.begin(), body.end());
  ids.push_back(eos_id_);
  return ids;
}

std::string BartTokenizer::Decode(const std::vector<int64_t>& ids, bool skip_special_tokens,
                                  bool clean_up_tokenization_spaces) const {
  const std::vector<int>& symbol_to_byte = SymbolToByte();
  std::string bytes;
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size()) id = unk_id_;
    if (skip_special_tokens && IsSpecialId(id)) continue;
    const std::string& token = id_to_token_[id];
    // Symbols map back to their bytes; a character outside the byte alphabet keeps its UTF-8.
    const std::vector<DecodedChar> chars = DecodeChars(token);
    for (size_t i = 0; i + 1 < chars.size(); ++i) {
      const char32_t code_point = chars[i].code_point;
      if (code_point < symbol_to_byte.size() && symbol_to_byte[code_point] >= 0) {
        bytes.push_back(static_cast<char>(symbol_to_byte[code_point]));
      } else {
        bytes.append(token, chars[i].offset, chars[i + 1].offset - chars[i].offset);
      }
    }
  }
  std::string text = DecodeUtf8WithReplacement(bytes);
  if (!clean_up_tokenization_spaces) return text;
  // HF's clean_up_tokenization, one replacement after the other.
  for (const auto& [from, to] : std::vector<std::pair<absl::string_view, absl::string_view>>{
           {" .", "."},
           {" ?", "?"},
           {" !", "!"},
           {" ,", ","},
           {" ' ", "'"},
           {" n't", "n't"},
           {" 'm", "'m"},
           {" 's", "'s"},
           {" 've", "'ve"},
           {" 're", "'re"}}) {
    text = absl::StrReplaceAll(text, {{from, to}});
  }
  return text;
}

}  // namespace taskmoe
