#ifndef TASKMOE_TESTS_TFRECORD_DECODER_H_
#define TASKMOE_TESTS_TFRECORD_DECODER_H_

// A TFRecord decoder written from the format's description alone (it shares no code with
// moe/formats/tfrecord), so that tests check the writer against the format rather than against
// itself: a bitwise CRC-32C, the mask, and the framing.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace taskmoe::testing {

// CRC-32C one bit at a time: reflected polynomial 0x82F63B78, register starts at ~0, result
// inverted.
inline uint32_t BitwiseCrc32c(absl::string_view data) {
  uint32_t crc = 0xFFFFFFFF;
  for (const char c : data) {
    crc ^= static_cast<uint8_t>(c);
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0x82F63B78 & (0u - (crc & 1)));
  }
  return ~crc;
}

inline uint32_t MaskedCrc(absl::string_view data) {
  const uint32_t crc = BitwiseCrc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

inline uint64_t LittleEndian(absl::string_view bytes) {
  uint64_t value = 0;
  for (size_t i = bytes.size(); i-- > 0;) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return value;
}

struct DecodedRecords {
  std::vector<std::string> records;  // every complete record with both CRCs right, in order
  bool truncated = false;            // the file ends inside a record (a killed writer)
  std::string corruption;            // the first CRC mismatch, if any; decoding stops there
};

inline DecodedRecords DecodeTFRecords(absl::string_view file) {
  DecodedRecords decoded;
  size_t at = 0;
  while (at < file.size()) {
    if (file.size() - at < 12) {
      decoded.truncated = true;
      break;
    }
    const absl::string_view length_bytes = file.substr(at, 8);
    if (LittleEndian(file.substr(at + 8, 4)) != MaskedCrc(length_bytes)) {
      decoded.corruption = "length CRC of the record at byte " + std::to_string(at);
      break;
    }
    const uint64_t length = LittleEndian(length_bytes);
    if (file.size() - at - 12 < length + 4) {
      decoded.truncated = true;
      break;
    }
    const absl::string_view data = file.substr(at + 12, length);
    if (LittleEndian(file.substr(at + 12 + length, 4)) != MaskedCrc(data)) {
      decoded.corruption = "data CRC of the record at byte " + std::to_string(at);
      break;
    }
    decoded.records.emplace_back(data);
    at += 12 + length + 4;
  }
  return decoded;
}

}  // namespace taskmoe::testing

#endif  // TASKMOE_TESTS_TFRECORD_DECODER_H_
