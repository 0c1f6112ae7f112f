#ifndef TASKMOE_DATA_TOKENIZER_INTERNAL_H_
#define TASKMOE_DATA_TOKENIZER_INTERNAL_H_

// Shared between the tokenizer source files; not part of the public API (see data/tokenizer.h).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace taskmoe {
namespace tokenizer_internal {

enum class CharClass { kLetter, kNumber, kSpace, kOther };

// Code point given to a byte that starts no valid UTF-8 sequence (outside Unicode).
inline constexpr char32_t kInvalidByte = 0x110000;

// One decoded character of the input: its code point (kInvalidByte for a byte that is not
// valid UTF-8), where it starts, and its class for the pre-tokenization regex.
struct DecodedChar {
  char32_t code_point;
  size_t offset;
  CharClass char_class;
};

// Decodes text into characters; a byte that starts no valid UTF-8 sequence is one kOther
// character. The result ends with a sentinel whose offset is text.size().
std::vector<DecodedChar> DecodeChars(std::string_view text);

// Python's str.rstrip() without arguments.
std::string_view PythonRstrip(std::string_view text);

// Python's bytes.decode("utf-8", errors="replace"): each maximal invalid subpart becomes U+FFFD.
std::string DecodeUtf8WithReplacement(std::string_view bytes);

// Inverse of ByteSymbols(): code point -> byte, -1 for code points that stand for no byte.
const std::vector<int>& SymbolToByte();

// The key of a merge pair in BartTokenizer::merges_.
inline uint64_t PairKey(int64_t left, int64_t right) {
  return (static_cast<uint64_t>(left) << 32) | static_cast<uint64_t>(right);
}

}  // namespace tokenizer_internal
}  // namespace taskmoe

#endif  // TASKMOE_DATA_TOKENIZER_INTERNAL_H_
