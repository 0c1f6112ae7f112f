#include "moe/base/directory_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "glog/logging.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"

namespace taskmoe {
namespace {

// The lock file's text: who holds it, e.g. "pid 4242 on host node-3".
std::string HolderText() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat("pid ", getpid(), " on host ", host[0] != '\0' ? host : "(unknown)");
}

// What `fd` holds now, without a trailing newline ("" for an empty or unreadable file).
std::string ReadHolder(int fd) {
  std::string text;
  char buffer[512];
  ssize_t n = 0;
  off_t offset = 0;
  while ((n = pread(fd, buffer, sizeof(buffer), offset)) > 0 && text.size() < 4096) {
    text.append(buffer, n);
    offset += n;
  }
  return std::string(absl::StripTrailingAsciiWhitespace(text));
}

}  // namespace

absl::StatusOr<DirectoryLock> DirectoryLock::Acquire(const std::string& dir) {
  TASKMOE_RETURN_IF_ERROR(CheckDirectory(dir, "directory"));
  const std::string path = absl::StrCat(dir, "/", kFileName);
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) {
    const int error_number = errno;
    return ErrnoError(error_number, "cannot open the lock file", path);
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error_number = errno;
    const std::string holder = ReadHolder(fd);
    close(fd);
    if (error_number != EWOULDBLOCK) return ErrnoError(error_number, "cannot lock", path);
    return absl::FailedPreconditionError(absl::StrCat(
        dir, " is in use by another run (", holder.empty() ? "holder unknown" : holder, ", ",
        path, "); wait for it to end, or write to another directory"));
  }
  if (const std::string stale = ReadHolder(fd); !stale.empty()) {
    LOG(WARNING) << "taking over the stale lock of " << stale << " (" << path
                 << "): that run ended without releasing it";
  }
  const std::string holder = HolderText() + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, holder.data(), holder.size(), 0) < 0) {
    const int error_number = errno;
    close(fd);
    return ErrnoError(error_number, "cannot write the lock file", path);
  }
  return DirectoryLock(path, fd);
}

DirectoryLock::DirectoryLock(DirectoryLock&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

DirectoryLock& DirectoryLock::operator=(DirectoryLock&& other) noexcept {
  if (this != &other) {
    Release();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

DirectoryLock::~DirectoryLock() { Release(); }

void DirectoryLock::Release() {
  if (fd_ < 0) return;
  // The file stays (removing it would let a process that opened it before the removal lock a
  // file nobody else sees); empty, it names no holder.
  if (ftruncate(fd_, 0) != 0) PLOG(WARNING) << "cannot empty the lock file " << path_;
  close(fd_);
  fd_ = -1;
}

}  // namespace taskmoe
