#ifndef TASKMOE_MOE_BASE_FILE_IO_H_
#define TASKMOE_MOE_BASE_FILE_IO_H_

// Whole-file reads and crash-safe writes: the one way TaskMoE reads and writes whole files.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace taskmoe {

// The file's bytes. Errors name the path and the reason (NotFound for a missing file,
// InvalidArgument for a directory).
absl::StatusOr<std::string> ReadFileBytes(const std::string& path);

// Writes to a unique temporary name in the same directory, then renames it over `path`, so
// readers never see a partial file, a failed write leaves the old file intact, and concurrent
// writers never collide. Errors name the path and the system's reason.
absl::Status WriteFileAtomically(const std::string& path, const std::string& bytes);

// A byte-for-byte copy of `from` at `to`, written as WriteFileAtomically does.
absl::Status CopyFileAtomically(const std::string& from, const std::string& to);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_BASE_FILE_IO_H_
