#ifndef TASKMOE_MOE_BASE_DIRECTORY_LOCK_H_
#define TASKMOE_MOE_BASE_DIRECTORY_LOCK_H_

#include <string>

#include "absl/status/statusor.h"

namespace taskmoe {

// An exclusive claim on a directory, so that two processes never write one output directory at
// once: an flock() on <dir>/.lock, which holds the holder's pid and host. The kernel releases the
// lock when its process ends, however it ends, so a lock left by a killed process is taken over
// (with a warning naming it) and never blocks a new run. Locks of network file systems that
// do not support flock() are only as good as that support.
class DirectoryLock {
 public:
  static constexpr char kFileName[] = ".lock";

  // Locks `dir` (which must exist). Errors: another process holds it (naming its pid, host and
  // the lock file), or the lock file cannot be opened.
  static absl::StatusOr<DirectoryLock> Acquire(const std::string& dir);

  DirectoryLock(DirectoryLock&& other) noexcept;
  DirectoryLock& operator=(DirectoryLock&& other) noexcept;
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;
  // Empties the lock file (no holder) and releases the lock.
  ~DirectoryLock();

 private:
  DirectoryLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  void Release();

  std::string path_;
  int fd_ = -1;
};

}  // namespace taskmoe

#endif  // TASKMOE_MOE_BASE_DIRECTORY_LOCK_H_
