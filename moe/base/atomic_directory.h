#ifndef TASKMOE_MOE_BASE_ATOMIC_DIRECTORY_H_
#define TASKMOE_MOE_BASE_ATOMIC_DIRECTORY_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace taskmoe {

// Writes a directory (a checkpoint) so that readers only ever see the old or the new complete
// version: files go into a staging directory beside the target, and Commit() swaps it in with
// one atomic rename (renameat2 RENAME_EXCHANGE when the target exists). A crash or an error
// before Commit() leaves the target untouched; the staging directory is removed on
// destruction, or by the next Begin() if the process died.
class AtomicDirectory {
 public:
  static absl::StatusOr<AtomicDirectory> Begin(const std::string& target);

  AtomicDirectory(AtomicDirectory&& other) noexcept;
  AtomicDirectory& operator=(AtomicDirectory&&) = delete;
  ~AtomicDirectory();

  // Where to write the new version's files.
  const std::string& staging() const { return staging_; }
  const std::string& target() const { return target_; }

  absl::Status Commit();

 private:
  AtomicDirectory(std::string target, std::string staging)
      : target_(std::move(target)), staging_(std::move(staging)) {}

  std::string target_;
  std::string staging_;
  bool done_ = false;
};

}  // namespace taskmoe

#endif  // TASKMOE_MOE_BASE_ATOMIC_DIRECTORY_H_
