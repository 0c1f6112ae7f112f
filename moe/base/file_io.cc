#include "moe/base/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"

namespace taskmoe {
namespace {

// An error for `what` on `path` from the errno of the call that just failed (read before any
// other call can overwrite it).
absl::Status ErrnoError(int error_number, const std::string& what, const std::string& path) {
  const std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(error_number));
  switch (error_number) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

// Writes all of `bytes` to `fd`; false with errno set on failure.
bool WriteAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> ReadFileBytes(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is a directory, expected a file"));
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) return ErrnoError(errno, "cannot open", path);
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& bytes) {
  // A name no other writer uses (this process's id and a counter), created exclusively.
  static std::atomic<uint64_t> counter{0};
  std::string temporary;
  int fd = -1;
  while (fd < 0) {
    temporary = absl::StrCat(path, ".tmp.", ::getpid(), ".", counter++);
    fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) return ErrnoError(errno, "cannot create", temporary);
  }
  const bool written = WriteAll(fd, bytes) && ::fsync(fd) == 0;
  const int write_errno = errno;
  if (::close(fd) != 0 || !written) {
    const int error_number = written ? errno : write_errno;
    std::remove(temporary.c_str());
    return ErrnoError(error_number, "cannot write", path);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error_number = errno;
    std::remove(temporary.c_str());
    return ErrnoError(error_number, absl::StrCat("cannot rename ", temporary, " to"), path);
  }
  return absl::OkStatus();
}

absl::Status CopyFileAtomically(const std::string& from, const std::string& to) {
  absl::StatusOr<std::string> bytes = ReadFileBytes(from);
  if (!bytes.ok()) return bytes.status();
  return WriteFileAtomically(to, *bytes);
}

}  // namespace taskmoe
