#include "moe/base/atomic_directory.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

std::string Read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void Write(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

fs::path FreshDir(const std::string& name) {
  fs::path dir = fs::path(getenv("TEST_TMPDIR")) / name;
  fs::remove_all(dir);
  return dir;
}

TEST(AtomicDirectory, CreatesThenReplacesWholeDirectory) {
  const fs::path target = FreshDir("create") / "ckpt";
  fs::create_directories(target.parent_path());
  {
    auto dir = AtomicDirectory::Begin(target);
    ASSERT_TRUE(dir.ok()) << dir.status();
    Write(fs::path(dir->staging()) / "a.txt", "v1");
    Write(fs::path(dir->staging()) / "old_only.txt", "x");
    ASSERT_TRUE(dir->Commit().ok());
  }
  EXPECT_EQ(Read(target / "a.txt"), "v1");
  {
    auto dir = AtomicDirectory::Begin(target);
    ASSERT_TRUE(dir.ok());
    Write(fs::path(dir->staging()) / "a.txt", "v2");
    ASSERT_TRUE(dir->Commit().ok());
  }
  EXPECT_EQ(Read(target / "a.txt"), "v2");
  EXPECT_FALSE(fs::exists(target / "old_only.txt"));  // a version is replaced whole
  EXPECT_FALSE(fs::exists(target.string() + ".staging"));
}

TEST(AtomicDirectory, AbandonedWriteLeavesPreviousVersion) {
  const fs::path target = FreshDir("abandon") / "ckpt";
  fs::create_directories(target);
  Write(target / "a.txt", "good");
  {
    auto dir = AtomicDirectory::Begin(target);
    ASSERT_TRUE(dir.ok());
    Write(fs::path(dir->staging()) / "a.txt", "half");
    // No Commit(): an error happened while writing.
  }
  EXPECT_EQ(Read(target / "a.txt"), "good");
  EXPECT_FALSE(fs::exists(target.string() + ".staging"));
}

TEST(AtomicDirectory, ProcessKilledMidWriteLeavesPreviousVersion) {
  const fs::path target = FreshDir("killed") / "ckpt";
  fs::create_directories(target);
  Write(target / "a.txt", "good");
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto dir = AtomicDirectory::Begin(target);
    if (!dir.ok()) _exit(2);
    Write(fs::path(dir->staging()) / "a.txt", "partial");
    _exit(0);  // dies before Commit(), without running destructors
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(Read(target / "a.txt"), "good");
  // The next writer cleans the leftover staging directory and succeeds.
  auto dir = AtomicDirectory::Begin(target);
  ASSERT_TRUE(dir.ok());
  EXPECT_FALSE(fs::exists(fs::path(dir->staging()) / "a.txt"));
  Write(fs::path(dir->staging()) / "a.txt", "new");
  ASSERT_TRUE(dir->Commit().ok());
  EXPECT_EQ(Read(target / "a.txt"), "new");
}

}  // namespace
}  // namespace taskmoe
