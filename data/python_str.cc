#include "data/python_str.h"

#include <utf8proc.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace taskmoe::python_str {
namespace {

constexpr char32_t kCapitalSigma = 0x03A3;
constexpr char32_t kSmallSigma = 0x03C3;
constexpr char32_t kFinalSigma = 0x03C2;
constexpr char32_t kCapitalIWithDot = 0x0130;
constexpr char32_t kCombiningDotAbove = 0x0307;

utf8proc_category_t Category(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

// Unicode's "Cased" property (Lu, Ll, Lt, and letters/symbols with a case mapping such as the
// circled letters).
bool IsCased(char32_t c) {
  const utf8proc_category_t category = Category(c);
  if (category == UTF8PROC_CATEGORY_LU || category == UTF8PROC_CATEGORY_LL ||
      category == UTF8PROC_CATEGORY_LT) {
    return true;
  }
  const auto code = static_cast<utf8proc_int32_t>(c);
  return utf8proc_tolower(code) != code || utf8proc_toupper(code) != code;
}

// Unicode's "Case_Ignorable": Mn, Me, Cf, Lm, Sk, and the Word_Break classes MidLetter,
// MidNumLet and Single_Quote.
bool IsCaseIgnorable(char32_t c) {
  switch (Category(c)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK:
      return true;
    default:
      break;
  }
  switch (c) {
    case 0x0027: case 0x002E: case 0x003A: case 0x00B7: case 0x0387: case 0x055F:
    case 0x05F4: case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13:
    case 0xFE52: case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
      return true;
    default:
      return false;
  }
}

// CPython's handle_capital_sigma: final form after a cased letter (skipping case-ignorable
// characters) unless a cased letter follows (again skipping case-ignorable ones).
char32_t LowerSigma(std::u32string_view text, size_t i) {
  size_t j = i;
  char32_t before = 0;
  bool found_before = false;
  while (j > 0) {
    --j;
    if (!IsCaseIgnorable(text[j])) {
      before = text[j];
      found_before = true;
      break;
    }
  }
  if (!found_before || !IsCased(before)) return kSmallSigma;
  for (size_t k = i + 1; k < text.size(); ++k) {
    if (!IsCaseIgnorable(text[k])) return IsCased(text[k]) ? kSmallSigma : kFinalSigma;
  }
  return kFinalSigma;
}

// The value of a Unicode decimal digit (category Nd), or -1. Nd characters come in contiguous
// runs of ten starting at zero (a Unicode stability guarantee), so the value is the distance to
// the start of the run modulo 10.
int DecimalDigitValue(char32_t c) {
  if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
  if (Category(c) != UTF8PROC_CATEGORY_ND) return -1;
  char32_t first = c;
  while (first > 0 && Category(first - 1) == UTF8PROC_CATEGORY_ND) --first;
  return static_cast<int>((c - first) % 10);
}

bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

// Validates Python's float literal grammar on ASCII text (no surrounding spaces) and removes the
// underscores: digitpart := digit (["_"] digit)*; number := [sign] (digitpart ["." [digitpart]]
// | "." digitpart) [("e"|"E") [sign] digitpart].
std::optional<std::string> CanonicalDecimal(std::string_view s) {
  std::string out;
  size_t i = 0;
  auto sign = [&]() {
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) out.push_back(s[i++]);
  };
  auto digitpart = [&]() -> bool {
    if (i >= s.size() || !IsAsciiDigit(s[i])) return false;
    out.push_back(s[i++]);
    while (i < s.size()) {
      if (IsAsciiDigit(s[i])) {
        out.push_back(s[i++]);
      } else if (s[i] == '_' && i + 1 < s.size() && IsAsciiDigit(s[i + 1])) {
        ++i;
      } else {
        break;
      }
    }
    return true;
  };
  sign();
  const bool integer_digits = digitpart();
  if (i < s.size() && s[i] == '.') {
    out.push_back(s[i++]);
    const bool fraction_digits = digitpart();
    if (!integer_digits && !fraction_digits) return std::nullopt;
  } else if (!integer_digits) {
    return std::nullopt;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    out.push_back(s[i++]);
    sign();
    if (!digitpart()) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  return out;
}

bool EqualsIgnoringAsciiCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (x != b[i]) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::u32string> DecodeUtf8(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  size_t offset = 0;
  while (offset < text.size()) {
    utf8proc_int32_t code = 0;
    const utf8proc_ssize_t length =
        utf8proc_iterate(bytes + offset, static_cast<utf8proc_ssize_t>(text.size() - offset), &code);
    if (length <= 0 || code < 0) {
      return absl::InvalidArgumentError(absl::StrCat("invalid UTF-8 at byte ", offset));
    }
    out.push_back(static_cast<char32_t>(code));
    offset += static_cast<size_t>(length);
  }
  return out;
}

std::string EncodeUtf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  utf8proc_uint8_t buffer[4];
  for (char32_t c : text) {
    const utf8proc_ssize_t length = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buffer);
    out.append(reinterpret_cast<const char*>(buffer), static_cast<size_t>(length));
  }
  return out;
}

bool IsValidUtf8(std::string_view text) { return DecodeUtf8(text).ok(); }

bool IsSpace(char32_t c) {
  switch (c) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D:
    case 0x1C: case 0x1D: case 0x1E: case 0x1F: case 0x20:
    case 0x85: case 0xA0: case 0x1680:
    case 0x2000: case 0x2001: case 0x2002: case 0x2003: case 0x2004: case 0x2005:
    case 0x2006: case 0x2007: case 0x2008: case 0x2009: case 0x200A:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return false;
  }
}

bool IsWordChar(char32_t c) {
  if (c == '_') return true;
  switch (Category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return true;
    default:
      return false;
  }
}

bool IsAsciiPunctuation(char32_t c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
         (c >= 0x7B && c <= 0x7E);
}

std::u32string_view Strip(std::u32string_view text) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && IsSpace(text[begin])) ++begin;
  while (end > begin && IsSpace(text[end - 1])) --end;
  return text.substr(begin, end - begin);
}

std::vector<std::u32string> SplitWhitespace(std::u32string_view text) {
  std::vector<std::u32string> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && IsSpace(text[i])) ++i;
    const size_t start = i;
    while (i < text.size() && !IsSpace(text[i])) ++i;
    if (i > start) words.emplace_back(text.substr(start, i - start));
  }
  return words;
}

std::u32string Lower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c == kCapitalIWithDot) {
      out.push_back('i');
      out.push_back(kCombiningDotAbove);
    } else if (c == kCapitalSigma) {
      out.push_back(LowerSigma(text, i));
    } else {
      out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
    }
  }
  return out;
}

std::string LowerUtf8(std::string_view text) {
  absl::StatusOr<std::u32string> decoded = DecodeUtf8(text);
  CHECK(decoded.ok()) << decoded.status();
  return EncodeUtf8(Lower(*decoded));
}

std::string StripUtf8(std::string_view text) {
  absl::StatusOr<std::u32string> decoded = DecodeUtf8(text);
  CHECK(decoded.ok()) << decoded.status();
  return EncodeUtf8(Strip(*decoded));
}

std::optional<double> ParseFloat(std::string_view text) {
  absl::StatusOr<std::u32string> decoded = DecodeUtf8(text);
  if (!decoded.ok()) return std::nullopt;
  // As CPython does: Unicode digits become ASCII digits; any other non-ASCII character fails.
  std::string ascii;
  for (char32_t c : Strip(*decoded)) {
    if (c < 0x80) {
      ascii.push_back(static_cast<char>(c));
      continue;
    }
    const int digit = DecimalDigitValue(c);
    if (digit < 0) return std::nullopt;
    ascii.push_back(static_cast<char>('0' + digit));
  }
  std::string_view body = ascii;
  bool negative = false;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (EqualsIgnoringAsciiCase(body, "inf") || EqualsIgnoringAsciiCase(body, "infinity")) {
    return negative ? -HUGE_VAL : HUGE_VAL;
  }
  if (EqualsIgnoringAsciiCase(body, "nan")) return negative ? -NAN : NAN;
  std::optional<std::string> canonical = CanonicalDecimal(ascii);
  if (!canonical.has_value()) return std::nullopt;
  // strtod in the "C" locale (this library never changes the locale) rounds correctly and gives
  // inf / 0 on overflow / underflow, as Python does.
  return std::strtod(canonical->c_str(), nullptr);
}

}  // namespace taskmoe::python_str
