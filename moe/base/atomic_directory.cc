#include "moe/base/atomic_directory.h"

#include <fcntl.h>
#include <stdio.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"

namespace taskmoe {

namespace fs = std::filesystem;

namespace {
std::string StagingPath(const std::string& target) { return target + ".staging"; }
}  // namespace

absl::StatusOr<AtomicDirectory> AtomicDirectory::Begin(const std::string& target) {
  const std::string staging = StagingPath(target);
  std::error_code error;
  if (fs::exists(target, error) && !fs::is_directory(target, error)) {
    // Committing would replace it, and it is not an earlier version of this directory.
    return absl::FailedPreconditionError(absl::StrCat(
        target, " exists and is not a directory; move it away (it would be replaced)"));
  }
  fs::remove_all(staging, error);  // left behind by a process that died mid-write
  if (error) {
    return absl::InternalError(absl::StrCat("cannot remove stale ", staging, ": ",
                                            error.message()));
  }
  TASKMOE_RETURN_IF_ERROR(CreateDirectories(staging));
  return AtomicDirectory(target, staging);
}

AtomicDirectory::AtomicDirectory(AtomicDirectory&& other) noexcept
    : target_(std::move(other.target_)), staging_(std::move(other.staging_)), done_(other.done_) {
  other.done_ = true;
}

AtomicDirectory::~AtomicDirectory() {
  if (done_) return;
  std::error_code ignored;
  fs::remove_all(staging_, ignored);
}

absl::Status AtomicDirectory::Commit() {
  if (done_) return absl::FailedPreconditionError("AtomicDirectory committed twice");
  done_ = true;
  std::error_code error;
  if (fs::exists(target_, error)) {
    // Swap old and new in one step; the old version ends up at the staging path.
    if (renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, target_.c_str(), RENAME_EXCHANGE) != 0) {
      const int error_number = errno;  // before anything else can overwrite it
      return ErrnoError(error_number, absl::StrCat("cannot swap ", staging_, " into"), target_);
    }
    fs::remove_all(staging_, error);
    return absl::OkStatus();
  }
  if (std::rename(staging_.c_str(), target_.c_str()) != 0) {
    const int error_number = errno;  // before anything else can overwrite it
    return ErrnoError(error_number, absl::StrCat("cannot rename ", staging_, " to"), target_);
  }
  return absl::OkStatus();
}

}  // namespace taskmoe
