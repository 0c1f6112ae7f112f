#ifndef TASKMOE_MOE_BASE_FILE_IO_H_
#define TASKMOE_MOE_BASE_FILE_IO_H_

// Whole-file reads and crash-safe writes: the one way TaskMoE reads and writes whole files.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

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

// Creates the directory `path` and its missing parents. Errors name the path and the reason,
// and a component that exists as a file, e.g. "runs/a/evals is a file, not a directory".
absl::Status CreateDirectories(const std::string& path);

// OK when `path` is a directory; otherwise NotFound ("<what> <path> does not exist") or
// InvalidArgument ("<what> <path> is a file, expected a directory").
absl::Status CheckDirectory(const std::string& path, absl::string_view what);

// An error when writing the `outputs` (files, or directories replaced whole) would overwrite one
// of the `inputs` (files or directories that exist): the same path, or an input inside an
// output directory. Paths are compared after resolving symbolic links, "." and "..".
absl::Status CheckOutputsSpareInputs(const std::vector<std::string>& outputs,
                                     const std::vector<std::string>& inputs);

// An error for `what` (e.g. "cannot create") on `path` from the errno of the call that just
// failed, with a status code that matches the reason (NotFound, PermissionDenied, ...).
absl::Status ErrnoError(int error_number, absl::string_view what, const std::string& path);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_BASE_FILE_IO_H_
