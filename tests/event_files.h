#ifndef TASKMOE_TESTS_EVENT_FILES_H_
#define TASKMOE_TESTS_EVENT_FILES_H_

// Reading TensorBoard event files back in tests, with a TFRecord decoder written from the
// format's description alone (it shares no code with moe/formats/tfrecord), so that tests check
// the writer against the format rather than against itself: a bitwise CRC-32C, the mask, the
// framing. Also a small PNG fixture for image events.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "glog/logging.h"
#include "moe/base/file_io.h"
#include "moe/formats/tensorboard_event.pb.h"

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

struct EventFile {
  DecodedRecords decoded;
  std::vector<tensorboard::Event> events;  // the decoded records, parsed
};

// The event file at `path` (which must be readable, with records that parse as Events).
inline EventFile ReadEventFile(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFileBytes(path);
  CHECK(bytes.ok()) << bytes.status();
  EventFile file;
  file.decoded = DecodeTFRecords(*bytes);
  for (const std::string& record : file.decoded.records) {
    file.events.emplace_back();
    CHECK(file.events.back().ParseFromString(record)) << path << ": a record is not an Event";
  }
  return file;
}

// A 3 x 2 RGB PNG (red, green, blue columns), written by Python's zlib and struct modules.
inline const std::string& ThreeByTwoPng() {
  static const std::string* png = new std::string(
      "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x03\x00\x00"
      "\x00\x02\x08\x02\x00\x00\x00\x12\x16\xf1\x4d\x00\x00\x00\x10\x49\x44\x41\x54\x78\x9c\x63"
      "\xf8\xcf\xc0\xc0\x00\xc1\x70\x16\x00\x3b\xd8\x05\xfb\xde\x10\x37\x65\x00\x00\x00\x00\x49"
      "\x45\x4e\x44\xae\x42\x60\x82",
      73);
  return *png;
}

}  // namespace taskmoe::testing

#endif  // TASKMOE_TESTS_EVENT_FILES_H_
