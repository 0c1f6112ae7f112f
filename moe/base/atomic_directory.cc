#include "moe/base/atomic_directory.h"

#include <fcntl.h>
#include <stdio.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace taskmoe {

namespace fs = std::filesystem;

namespace {
std::string StagingPath(const std::string& target) { return target + ".staging"; }
}  // namespace

absl::StatusOr<AtomicDirectory> AtomicDirectory::Begin(const std::string& target) {
  const std::string staging = StagingPath(target);
  std::error_code error;
  fs::remove_all(staging, error);  // left behind by a process that died mid-write
  if (error) {
    return absl::InternalError(absl::StrCat("cannot remove stale ", staging, ": ",
                                            error.message()));
  }
  fs::create_directories(staging, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot create ", staging, ": ", error.message()));
  }
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
      return absl::InternalError(absl::StrCat("cannot swap ", staging_, " into ", target_, ": ",
                                              std::strerror(errno)));
    }
    fs::remove_all(staging_, error);
    return absl::OkStatus();
  }
  if (std::rename(staging_.c_str(), target_.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", staging_, " to ", target_, ": ",
                                            std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace taskmoe
