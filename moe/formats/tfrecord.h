#ifndef TASKMOE_MOE_FORMATS_TFRECORD_H_
#define TASKMOE_MOE_FORMATS_TFRECORD_H_

// TFRecord files, TensorFlow's record framing and the container of TensorBoard event files.
// Each record is
//   uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes |
//   data[length] | uint32 masked CRC-32C of the data
// where masking is ((crc >> 15) | (crc << 17)) + 0xa282ead8 (a CRC over data that holds CRCs
// stays informative).

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace taskmoe {

// CRC-32C (Castagnoli: reflected polynomial 0x82F63B78, initial value and final xor ~0), the CRC
// of iSCSI, ext4 and TFRecord.
uint32_t Crc32c(absl::string_view data);

// The masked form of a CRC that TFRecord stores.
uint32_t MaskCrc32c(uint32_t crc);

// The framed bytes of one record holding `data`.
std::string FrameTFRecord(absl::string_view data);

// Writes records to a new file. Records are buffered; Flush hands them to the operating system
// so that readers of the growing file (TensorBoard during a run) see them. Destruction flushes
// and closes the file.
class TFRecordWriter {
 public:
  // Creates `path`. An existing file is never overwritten: AlreadyExists.
  static absl::StatusOr<std::unique_ptr<TFRecordWriter>> Create(const std::string& path);

  absl::Status Write(absl::string_view data);
  absl::Status Flush();

  const std::string& path() const { return path_; }

 private:
  struct Closer {
    void operator()(std::FILE* file) const { std::fclose(file); }
  };

  TFRecordWriter(std::string path, std::FILE* file) : path_(std::move(path)), file_(file) {}

  std::string path_;
  std::unique_ptr<std::FILE, Closer> file_;
};

}  // namespace taskmoe

#endif  // TASKMOE_MOE_FORMATS_TFRECORD_H_
