// GPT-2's byte <-> symbol alphabet, and UTF-8 decoding of the bytes that tokens stand for.

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer.h"
#include "data/tokenizer_internal.h"
#include "utf8proc.h"

namespace taskmoe {
namespace {

void AppendUtf8(char32_t code_point, std::string* out) {
  utf8proc_uint8_t buffer[4];
  const utf8proc_ssize_t length = utf8proc_encode_char(code_point, buffer);
  out->append(reinterpret_cast<const char*>(buffer), length);
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

namespace tokenizer_internal {

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

}  // namespace tokenizer_internal
}  // namespace taskmoe
