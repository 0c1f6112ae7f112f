// Whole-file reads and atomic writes (moe/base/file_io.h).
#include "moe/base/file_io.h"

#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/temporary_files.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string FreshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(FileIoTest, WriteReplacesTheFileWholeAndLeavesNoTemporary) {
  const std::string path = FreshDir("replace") + "/out.txt";
  ASSERT_TRUE(WriteFileAtomically(path, "first version, longer").ok());
  ASSERT_TRUE(WriteFileAtomically(path, std::string("second\0bytes", 12)).ok());
  absl::StatusOr<std::string> read = ReadFileBytes(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, std::string("second\0bytes", 12));
  EXPECT_TRUE(testing::TemporarySiblings(path).empty());
}

TEST(FileIoTest, CopyIsByteForByteAndAMissingSourceKeepsTheTarget) {
  const std::string dir = FreshDir("copy");
  const std::string bytes("binary\0\xff data", 13);
  ASSERT_TRUE(WriteFileAtomically(dir + "/from", bytes).ok());
  ASSERT_TRUE(CopyFileAtomically(dir + "/from", dir + "/to").ok());
  EXPECT_EQ(*ReadFileBytes(dir + "/to"), bytes);
  const absl::Status missing = CopyFileAtomically(dir + "/absent", dir + "/to");
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()), HasSubstr(dir + "/absent"));
  EXPECT_EQ(*ReadFileBytes(dir + "/to"), bytes);
}

TEST(FileIoTest, ConcurrentWritersOfOnePathNeverCollide) {
  const std::string path = FreshDir("concurrent") + "/out.txt";
  std::vector<std::string> contents;
  for (int i = 0; i < 8; ++i) contents.push_back(std::string(4096 * (i + 1), 'a' + i));
  std::vector<absl::Status> results(contents.size());
  std::vector<std::thread> writers;
  for (size_t i = 0; i < contents.size(); ++i) {
    writers.emplace_back([&, i] {
      for (int round = 0; round < 20 && results[i].ok(); ++round) {
        results[i] = WriteFileAtomically(path, contents[i]);
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  for (const absl::Status& result : results) EXPECT_TRUE(result.ok()) << result;
  absl::StatusOr<std::string> read = ReadFileBytes(path);
  ASSERT_TRUE(read.ok()) << read.status();
  // One writer's bytes, whole.
  EXPECT_EQ(std::set<std::string>(contents.begin(), contents.end()).count(*read), 1u);
  EXPECT_TRUE(testing::TemporarySiblings(path).empty());
}

TEST(FileIoTest, ErrorsNameThePathAndTheRealReason) {
  const std::string dir = FreshDir("errors");
  const std::string missing_parent = dir + "/no_such_dir/out.txt";
  absl::Status status = WriteFileAtomically(missing_parent, "x");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr(missing_parent));
  EXPECT_THAT(status.message(), HasSubstr("No such file or directory"));

  status = ReadFileBytes(dir + "/absent.txt").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("absent.txt: No such file or directory"));

  status = ReadFileBytes(dir).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("is a directory, expected a file"));

  // A directory where the file should be: the rename fails, the directory stays.
  fs::create_directories(dir + "/taken");
  status = WriteFileAtomically(dir + "/taken", "x");
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("cannot rename"));
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr("Success")));
  EXPECT_TRUE(fs::is_directory(dir + "/taken"));
  EXPECT_TRUE(testing::TemporarySiblings(dir + "/taken").empty());
}

}  // namespace
}  // namespace taskmoe
