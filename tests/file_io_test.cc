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
  EXPECT_EQ(status.message(), "cannot write " + missing_parent + ": directory " + dir +
                                  "/no_such_dir does not exist");

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

TEST(FileIoTest, CreateDirectoriesNamesTheFileInTheWay) {
  const std::string dir = FreshDir("create");
  ASSERT_TRUE(CreateDirectories(dir + "/a/b/c").ok());
  EXPECT_TRUE(fs::is_directory(dir + "/a/b/c"));
  EXPECT_TRUE(CreateDirectories(dir + "/a/b/c").ok());  // already there
  ASSERT_TRUE(WriteFileAtomically(dir + "/a/evals", "not a directory").ok());
  const absl::Status status = CreateDirectories(dir + "/a/evals/step_4");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), "cannot create directory " + dir + "/a/evals/step_4: " + dir +
                                  "/a/evals is a file, not a directory");
  EXPECT_EQ(*ReadFileBytes(dir + "/a/evals"), "not a directory");
}

TEST(FileIoTest, CheckDirectoryTellsMissingFromAFile) {
  const std::string dir = FreshDir("check");
  EXPECT_TRUE(CheckDirectory(dir, "results directory").ok());
  EXPECT_EQ(CheckDirectory(dir + "/absent", "results directory").message(),
            "results directory " + dir + "/absent does not exist");
  ASSERT_TRUE(WriteFileAtomically(dir + "/file.csv", "x").ok());
  const absl::Status file = CheckDirectory(dir + "/file.csv", "results directory");
  EXPECT_EQ(file.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(file.message(),
            "results directory " + dir + "/file.csv is a file, expected a directory");
  // A file where a new file's directory should be is named as such.
  const absl::Status write = WriteFileAtomically(dir + "/file.csv/out.txt", "x");
  EXPECT_EQ(write.message(), "cannot write " + dir + "/file.csv/out.txt: directory " + dir +
                                 "/file.csv is a file, expected a directory");
}

TEST(FileIoTest, AnOutputMayNotOverwriteAnInput) {
  const std::string dir = FreshDir("overwrite");
  ASSERT_TRUE(CreateDirectories(dir + "/checkpoint/sub").ok());
  ASSERT_TRUE(WriteFileAtomically(dir + "/in.txt", "x").ok());
  fs::create_symlink(dir + "/in.txt", dir + "/link.txt");
  // The same file, by another spelling or through a symbolic link.
  EXPECT_EQ(CheckOutputsSpareInputs({dir + "/./in.txt"}, {dir + "/in.txt"}).message(),
            "the output " + dir + "/./in.txt would overwrite the input " + dir +
                "/in.txt; write the output somewhere else");
  EXPECT_FALSE(CheckOutputsSpareInputs({dir + "/link.txt"}, {dir + "/in.txt"}).ok());
  EXPECT_FALSE(CheckOutputsSpareInputs({dir + "/checkpoint/../in.txt"}, {dir + "/in.txt"}).ok());
  // A directory output replaced whole may not hold an input, nor be one.
  EXPECT_FALSE(CheckOutputsSpareInputs({dir + "/checkpoint"}, {dir + "/checkpoint"}).ok());
  EXPECT_FALSE(CheckOutputsSpareInputs({dir}, {dir + "/checkpoint/sub"}).ok());
  // Beside or inside an input directory is fine, and so are inputs that do not exist.
  EXPECT_TRUE(CheckOutputsSpareInputs({dir + "/checkpoint/out.txt", dir + "/out"},
                                      {dir + "/checkpoint", dir + "/in.txt", dir + "/absent"})
                  .ok());
  EXPECT_TRUE(CheckOutputsSpareInputs({dir + "/check"}, {dir + "/checkpoint"}).ok());
}

}  // namespace
}  // namespace taskmoe
