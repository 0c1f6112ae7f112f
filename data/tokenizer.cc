#include "data/tokenizer.h"

#include <limits>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "glog/logging.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "nlohmann/json.hpp"
#include "utf8proc.h"

namespace taskmoe {
namespace {

enum class CharClass { kLetter, kNumber, kSpace, kOther };

// Code point given to a byte that starts no valid UTF-8 sequence (outside Unicode).
constexpr char32_t kInvalidByte = 0x110000;

// One decoded character of the input: its code point (kInvalidByte for a byte that is not
// valid UTF-8), where it starts, and its class for the pre-tokenization regex.
struct DecodedChar {
  char32_t code_point;
  size_t offset;
  CharClass char_class;
};

void AppendUtf8(char32_t code_point, std::string* out) {
  utf8proc_uint8_t buffer[4];
  const utf8proc_ssize_t length = utf8proc_encode_char(code_point, buffer);
  out->append(reinterpret_cast<const char*>(buffer), length);
}

CharClass ClassOf(char32_t code_point) {
  if (IsUnicodeWhitespace(code_point)) return CharClass::kSpace;
  switch (utf8proc_category(code_point)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return CharClass::kLetter;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return CharClass::kNumber;
    default:
      return CharClass::kOther;
  }
}

// Decodes text into characters; a byte that starts no valid UTF-8 sequence is one kOther
// character. The result ends with a sentinel whose offset is text.size().
std::vector<DecodedChar> DecodeChars(std::string_view text) {
  std::vector<DecodedChar> chars;
  chars.reserve(text.size() + 1);
  size_t offset = 0;
  while (offset < text.size()) {
    utf8proc_int32_t code_point = 0;
    const utf8proc_ssize_t length = utf8proc_iterate(
        reinterpret_cast<const utf8proc_uint8_t*>(text.data() + offset),
        static_cast<utf8proc_ssize_t>(text.size() - offset), &code_point);
    if (length <= 0) {
      chars.push_back({kInvalidByte, offset, CharClass::kOther});
      offset += 1;
    } else {
      chars.push_back({static_cast<char32_t>(code_point), offset, ClassOf(code_point)});
      offset += length;
    }
  }
  chars.push_back({0, text.size(), CharClass::kOther});
  return chars;
}

// Python's str.isspace(), which str.rstrip() uses: White_Space plus U+001C..U+001F.
bool IsPythonSpace(char32_t code_point) {
  return IsUnicodeWhitespace(code_point) || (code_point >= 0x1C && code_point <= 0x1F);
}

std::string_view PythonRstrip(std::string_view text) {
  const std::vector<DecodedChar> chars = DecodeChars(text);
  size_t end = 0;
  for (size_t i = 0; i + 1 < chars.size(); ++i) {
    if (!IsPythonSpace(chars[i].code_point)) end = chars[i + 1].offset;
  }
  return text.substr(0, end);
}

// Python's bytes.decode("utf-8", errors="replace"): each maximal invalid subpart becomes U+FFFD.
std::string DecodeUtf8WithReplacement(std::string_view bytes) {
  std::string text;
  text.reserve(bytes.size());
  size_t i = 0;
  auto byte_at = [&](size_t k) { return static_cast<unsigned char>(bytes[k]); };
  while (i < bytes.size()) {
    const unsigned char lead = byte_at(i);
    int continuation_count = 0;
    unsigned char second_low = 0x80, second_high = 0xBF;
    if (lead < 0x80) {
      text.push_back(static_cast<char>(lead));
      ++i;
      continue;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      continuation_count = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      continuation_count = 2;
      if (lead == 0xE0) second_low = 0xA0;
      if (lead == 0xED) second_high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      continuation_count = 3;
      if (lead == 0xF0) second_low = 0x90;
      if (lead == 0xF4) second_high = 0x8F;
    } else {
      AppendUtf8(0xFFFD, &text);
      ++i;
      continue;
    }
    size_t end = i + 1;
    bool valid = true;
    for (int k = 0; k < continuation_count; ++k, ++end) {
      const unsigned char low = k == 0 ? second_low : 0x80;
      const unsigned char high = k == 0 ? second_high : 0xBF;
      if (end >= bytes.size() || byte_at(end) < low || byte_at(end) > high) {
        valid = false;
        break;
      }
    }
    if (valid) {
      text.append(bytes.substr(i, end - i));
    } else {
      AppendUtf8(0xFFFD, &text);
    }
    i = end;
  }
  return text;
}

// Inverse of ByteSymbols(): code point -> byte, -1 for code points that stand for no byte.
const std::vector<int>& SymbolToByte() {
  static const std::vector<int>* const table = [] {
    auto* result = new std::vector<int>(0x200, -1);
    const std::array<std::string, 256>& symbols = ByteSymbols();
    for (int byte = 0; byte < 256; ++byte) {
      utf8proc_int32_t code_point = 0;
      utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(symbols[byte].data()),
                       static_cast<utf8proc_ssize_t>(symbols[byte].size()), &code_point);
      (*result)[code_point] = byte;
    }
    return result;
  }();
  return *table;
}

// Debian's Abseil has its own string_view type, distinct from std::string_view.
absl::string_view AsAbsl(std::string_view text) { return {text.data(), text.size()}; }

uint64_t PairKey(int64_t left, int64_t right) {
  return (static_cast<uint64_t>(left) << 32) | static_cast<uint64_t>(right);
}

}  // namespace

const std::array<std::string, 256>& ByteSymbols() {
  // GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the other bytes
  // take code points 256, 257, ... in byte order.
  static const std::array<std::string, 256>* const symbols = [] {
    auto* result = new std::array<std::string, 256>();
    auto printable = [](int byte) {
      return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
             (byte >= 0xAE && byte <= 0xFF);
    };
    char32_t next_code_point = 256;
    for (int byte = 0; byte < 256; ++byte) {
      AppendUtf8(printable(byte) ? static_cast<char32_t>(byte) : next_code_point++,
                 &(*result)[byte]);
    }
    return result;
  }();
  return *symbols;
}

std::string BytesToSymbols(std::string_view bytes) {
  const std::array<std::string, 256>& symbols = ByteSymbols();
  std::string result;
  result.reserve(bytes.size() * 2);
  for (const char byte : bytes) result += symbols[static_cast<unsigned char>(byte)];
  return result;
}

bool IsUnicodeWhitespace(char32_t code_point) {
  // White_Space = Python's isspace() set (bidi class WS/B/S or category Zs) minus the
  // information separators U+001C..U+001F.
  if (code_point >= 0x1C && code_point <= 0x1F) return false;
  if (code_point > 0x10FFFF) return false;
  const utf8proc_property_t* property = utf8proc_get_property(code_point);
  return property->category == UTF8PROC_CATEGORY_ZS ||
         property->bidi_class == UTF8PROC_BIDI_CLASS_WS ||
         property->bidi_class == UTF8PROC_BIDI_CLASS_B ||
         property->bidi_class == UTF8PROC_BIDI_CLASS_S;
}

std::vector<std::string_view> SplitPreTokens(std::string_view text) {
  const std::vector<DecodedChar> chars = DecodeChars(text);
  const size_t count = chars.size() - 1;  // Without the sentinel.
  std::vector<std::string_view> pieces;
  auto emit = [&](size_t begin, size_t end) {
    pieces.push_back(text.substr(chars[begin].offset, chars[end].offset - chars[begin].offset));
  };
  size_t k = 0;
  while (k < count) {
    const char32_t c = chars[k].code_point;
    // 's|'t|'re|'ve|'m|'ll|'d
    if (c == '\'' && k + 1 < count) {
      const char32_t next = chars[k + 1].code_point;
      if (next == 's' || next == 't' || next == 'm' || next == 'd') {
        emit(k, k + 2);
        k += 2;
        continue;
      }
      if (k + 2 < count) {
        const char32_t after = chars[k + 2].code_point;
        if ((next == 'r' && after == 'e') || (next == 'v' && after == 'e') ||
            (next == 'l' && after == 'l')) {
          emit(k, k + 3);
          k += 3;
          continue;
        }
      }
    }
    // ' ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+': an optional space, then a run of one class.
    const size_t run_begin =
        (c == ' ' && k + 1 < count && chars[k + 1].char_class != CharClass::kSpace) ? k + 1 : k;
    const CharClass run_class = chars[run_begin].char_class;
    if (run_class != CharClass::kSpace) {
      size_t end = run_begin + 1;
      while (end < count && chars[end].char_class == run_class) ++end;
      emit(k, end);
      k = end;
      continue;
    }
    // '\s+(?!\S)|\s+': a whitespace run; before a non-space it leaves its last character,
    // which then starts the next piece, unless the run is one character long.
    size_t end = k + 1;
    while (end < count && chars[end].char_class == CharClass::kSpace) ++end;
    if (end < count && end - k >= 2) --end;
    emit(k, end);
    k = end;
  }
  return pieces;
}

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
