// Characters of the input text: UTF-8 decoding, Unicode classes, GPT-2's pre-tokenization.

#include <string_view>
#include <vector>

#include "data/tokenizer.h"
#include "data/tokenizer_internal.h"
#include "utf8proc.h"

namespace taskmoe {
namespace tokenizer_internal {
namespace {

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

// Python's str.isspace(), which str.rstrip() uses: White_Space plus U+001C..U+001F.
bool IsPythonSpace(char32_t code_point) {
  return IsUnicodeWhitespace(code_point) || (code_point >= 0x1C && code_point <= 0x1F);
}

}  // namespace

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

std::string_view PythonRstrip(std::string_view text) {
  const std::vector<DecodedChar> chars = DecodeChars(text);
  size_t end = 0;
  for (size_t i = 0; i + 1 < chars.size(); ++i) {
    if (!IsPythonSpace(chars[i].code_point)) end = chars[i + 1].offset;
  }
  return text.substr(0, end);
}

}  // namespace tokenizer_internal

using tokenizer_internal::CharClass;
using tokenizer_internal::DecodeChars;
using tokenizer_internal::DecodedChar;

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

}  // namespace taskmoe
