#ifndef TASKMOE_DATA_PYTHON_STR_H_
#define TASKMOE_DATA_PYTHON_STR_H_

// The few Python `str` operations that CrossFit's reader and metrics rely on, with Python 3's
// Unicode semantics (the originals run on Python 3.11), over UTF-8 std::strings. Reproducing them
// exactly is what makes the metric values match the original code.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace taskmoe::python_str {

// Decodes UTF-8 into code points; rejects what Python's strict utf-8 codec rejects (malformed
// bytes, overlong forms, surrogates). The error names the byte offset.
absl::StatusOr<std::u32string> DecodeUtf8(std::string_view text);
std::string EncodeUtf8(std::u32string_view text);
bool IsValidUtf8(std::string_view text);

// Py_UNICODE_ISSPACE: what str.split() and str.strip() treat as whitespace (includes U+00A0,
// U+3000, U+0085, U+2028, U+001C..U+001F).
bool IsSpace(char32_t c);
// What `re`'s \w matches on str patterns: letters, numbers (any Unicode L*/N* category) and '_'.
bool IsWordChar(char32_t c);
// A character of ASCII string.punctuation.
bool IsAsciiPunctuation(char32_t c);

// str.strip() with no arguments.
std::u32string_view Strip(std::u32string_view text);
// str.split() with no arguments: runs of whitespace separate, empty fields are dropped.
std::vector<std::u32string> SplitWhitespace(std::u32string_view text);
// str.lower(): full lowercasing as CPython does it (U+0130 becomes "i\u0307", capital sigma
// becomes final sigma at the end of a word).
std::u32string Lower(std::u32string_view text);

// Convenience wrappers on UTF-8; the input must be valid UTF-8 (callers validate it first).
std::string LowerUtf8(std::string_view text);
std::string StripUtf8(std::string_view text);

// float(text) as Python evaluates it: surrounding Unicode whitespace, sign, "inf"/"infinity"/
// "nan" in any case, exponents, "1." and ".5", single underscores between digits, and any
// Unicode decimal digit. Returns nullopt where Python raises ValueError.
std::optional<double> ParseFloat(std::string_view text);

}  // namespace taskmoe::python_str

#endif  // TASKMOE_DATA_PYTHON_STR_H_
