#ifndef TASKMOE_DATA_FILE_IO_H_
#define TASKMOE_DATA_FILE_IO_H_

// Whole-file reads and crash-safe writes for the data library.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace taskmoe {

// The file's bytes; NotFound naming the path when it cannot be opened.
absl::StatusOr<std::string> ReadFileBytes(const std::string& path);

// Writes to a temporary name in the same directory, then renames it over `path`, so readers
// never see a partial file and a failed write leaves the old file intact.
absl::Status WriteFileAtomically(const std::string& path, const std::string& bytes);

}  // namespace taskmoe

#endif  // TASKMOE_DATA_FILE_IO_H_
