// The output-directory lock (moe/base/directory_lock.h): one holder at a time, the holder named
// in the error, and a lock of a killed process taken over.
#include "moe/base/directory_lock.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moe/base/file_io.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string FreshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string Host() {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  return host;
}

TEST(DirectoryLock, OneHolderAtATimeAndTheErrorNamesIt) {
  const std::string dir = FreshDir("held");
  absl::StatusOr<DirectoryLock> first = DirectoryLock::Acquire(dir);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string holder = absl::StrCat("pid ", getpid(), " on host ", Host());
  EXPECT_EQ(*ReadFileBytes(dir + "/.lock"), holder + "\n");
  const absl::StatusOr<DirectoryLock> second = DirectoryLock::Acquire(dir);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(second.status().message(),
            absl::StrCat(dir, " is in use by another run (", holder, ", ", dir,
                         "/.lock); wait for it to end, or write to another directory"));
  // Released when the holder goes: the file stays, naming no one.
  { const DirectoryLock released = *std::move(first); }
  EXPECT_EQ(*ReadFileBytes(dir + "/.lock"), "");
  EXPECT_TRUE(DirectoryLock::Acquire(dir).ok());
}

TEST(DirectoryLock, TheLockOfAKilledProcessIsTakenOver) {
  const std::string dir = FreshDir("stale");
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    absl::StatusOr<DirectoryLock> lock = DirectoryLock::Acquire(dir);
    if (!lock.ok()) _exit(1);
    raise(SIGKILL);  // dies holding the lock, as a killed trainer does
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_THAT(*ReadFileBytes(dir + "/.lock"), StartsWith(absl::StrCat("pid ", child, " ")));
  absl::StatusOr<DirectoryLock> lock = DirectoryLock::Acquire(dir);
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_THAT(*ReadFileBytes(dir + "/.lock"), HasSubstr(absl::StrCat("pid ", getpid(), " ")));
}

TEST(DirectoryLock, AMissingDirectoryIsNamed) {
  const absl::StatusOr<DirectoryLock> lock = DirectoryLock::Acquire("/nonexistent/run");
  ASSERT_FALSE(lock.ok());
  EXPECT_THAT(lock.status().message(),
              HasSubstr("directory /nonexistent/run does not exist"));
}

}  // namespace
}  // namespace taskmoe
