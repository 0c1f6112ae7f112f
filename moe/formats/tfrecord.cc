#include "moe/formats/tfrecord.h"

#include <array>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace taskmoe {
namespace {

// table[b]: the CRC register after shifting in byte b, least significant bit first.
std::array<uint32_t, 256> MakeCrc32cTable() {
  constexpr uint32_t kPolynomial = 0x82F63B78;  // 0x1EDC6F41 bit-reversed
  std::array<uint32_t, 256> table{};
  for (uint32_t byte = 0; byte < 256; ++byte) {
    uint32_t crc = byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? kPolynomial : 0);
    table[byte] = crc;
  }
  return table;
}

void AppendLittleEndian(uint64_t value, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

absl::Status WriteError(const std::string& path, int error_number) {
  const std::string message =
      absl::StrCat("cannot write ", path, ": ", std::strerror(error_number));
  return error_number == ENOSPC ? absl::ResourceExhaustedError(message)
                                : absl::InternalError(message);
}

}  // namespace

uint32_t Crc32c(absl::string_view data) {
  static const std::array<uint32_t, 256> table = MakeCrc32cTable();
  uint32_t crc = 0xFFFFFFFF;
  for (const char c : data) crc = table[(crc ^ static_cast<uint8_t>(c)) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

uint32_t MaskCrc32c(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

std::string FrameTFRecord(absl::string_view data) {
  std::string record;
  record.reserve(data.size() + 16);
  AppendLittleEndian(data.size(), 8, &record);
  AppendLittleEndian(MaskCrc32c(Crc32c(record)), 4, &record);
  record.append(data.data(), data.size());
  AppendLittleEndian(MaskCrc32c(Crc32c(data)), 4, &record);
  return record;
}

absl::StatusOr<std::unique_ptr<TFRecordWriter>> TFRecordWriter::Create(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "wbx");  // "x": fail if the file exists
  if (file == nullptr) {
    const int error_number = errno;
    const std::string message =
        absl::StrCat("cannot create ", path, ": ", std::strerror(error_number));
    return error_number == EEXIST ? absl::AlreadyExistsError(message)
                                  : absl::InternalError(message);
  }
  return std::unique_ptr<TFRecordWriter>(new TFRecordWriter(path, file));
}

absl::Status TFRecordWriter::Write(absl::string_view data) {
  const std::string record = FrameTFRecord(data);
  if (std::fwrite(record.data(), 1, record.size(), file_.get()) != record.size()) {
    return WriteError(path_, errno);
  }
  return absl::OkStatus();
}

absl::Status TFRecordWriter::Flush() {
  if (std::fflush(file_.get()) != 0) return WriteError(path_, errno);
  return absl::OkStatus();
}

}  // namespace taskmoe
