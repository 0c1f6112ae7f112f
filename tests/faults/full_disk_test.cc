// A full disk at each file of a checkpoint: the resumed trainer's write of last/ fails half-way
// through that file (RLIMIT_FSIZE half its size, set when the file is opened, SIGXFSZ ignored
// so write() fails with EFBIG). A limit set for the whole run could only fail the files larger
// than every file written before them (2 of 16), hence the moment chosen in the process by
// tests/faults/fault_preload.cc. The run must end with one error line naming the file, and the
// previous last/ and best/ must stay byte for byte and load.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "moe/base/file_io.h"
#include "moe/train/checkpoint.h"
#include "moe/train/model_builder.h"
#include "tests/faults/child_process.h"
#include "tests/faults/trainer_child.h"
#include "tests/tiny_gym.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

constexpr std::chrono::seconds kBound(120);
// Four runs at a time, each in its own copy of the run: a run mostly waits (starting up,
// syncing files), so more runs than cores finish sooner.
constexpr int kParallel = 4;

// Every file of best/ and last/ by path relative to `output_dir`, with its bytes.
std::map<std::string, std::string> Checkpoints(const std::string& output_dir) {
  std::map<std::string, std::string> files;
  for (const char* name : {kBestCheckpoint, kLastCheckpoint}) {
    for (const auto& entry : fs::directory_iterator(output_dir + "/" + name)) {
      const std::string relative = std::string(name) + "/" + entry.path().filename().string();
      files[relative] = *ReadFileBytes(entry.path().string());
    }
  }
  return files;
}

// The trainer resumed at step 4 into `output_dir`, with a full disk at `file` of last/.
testing::ChildOptions FullDiskAt(const std::string& output_dir, const std::string& file,
                                 int64_t size) {
  testing::ChildOptions options = testing::TrainerWithFaults(
      testing::TrainerArgv(output_dir, {"training.total_steps=5", "evaluation.eval_period=2"},
                           /*resume=*/true),
      {"TASKMOE_FAULT_PATHS=/last.staging/" + file + ".tmp.",
       absl::StrCat("TASKMOE_FAULT_FSIZE=", size / 2)});
  options.ignore_sigxfsz = true;
  return options;
}

void ExpectCleanFailure(const testing::ChildResult& result, const std::string& file) {
  SCOPED_TRACE(result.output);
  ASSERT_FALSE(result.timed_out);
  EXPECT_EQ(result.signal, 0);
  EXPECT_EQ(result.exit_code, 1);
  std::vector<std::string> errors;
  for (absl::string_view line : absl::StrSplit(result.output, '\n')) {
    if (absl::StartsWith(line, "trainer: ")) errors.emplace_back(line);
  }
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_TRUE(absl::StrContains(errors[0], "/" + file + ": File too large")) << errors[0];
  for (const char* crash : {"Success", "Aborted", "core dumped", "terminate called",
                            "Check failed", "internal error", ".tmp."}) {
    EXPECT_FALSE(absl::StrContains(result.output, crash)) << crash;
  }
}

TEST(FullDisk, AtEachFileOfACheckpointIsOneErrorLineAndThePreviousCheckpointStays) {
  const std::string first = testing::FreshTempDir("full_disk_0");
  testing::ChildProcess setup(testing::ChildOptions{
      testing::TrainerArgv(first, {"training.total_steps=4", "evaluation.eval_period=2"})});
  const testing::ChildResult done = setup.Wait(kBound);
  ASSERT_EQ(done.exit_code, 0) << done.output;
  std::vector<std::string> runs = {first};
  for (int copy = 1; copy < kParallel; ++copy) {
    runs.push_back(testing::FreshTempDir(absl::StrCat("full_disk_", copy)));
    fs::copy(first, runs.back(), fs::copy_options::recursive);
  }
  const std::map<std::string, std::string> before = Checkpoints(first);
  std::vector<std::pair<std::string, int64_t>> files;  // last/'s files and their sizes
  for (const auto& [path, bytes] : before) {
    if (absl::StartsWith(path, std::string(kLastCheckpoint) + "/")) {
      files.emplace_back(path.substr(path.find('/') + 1), static_cast<int64_t>(bytes.size()));
    }
  }
  ASSERT_EQ(files.size(), 16u);
  for (size_t next = 0; next < files.size(); next += kParallel) {
    std::vector<std::unique_ptr<testing::ChildProcess>> children;
    for (size_t i = next; i < std::min(files.size(), next + kParallel); ++i) {
      children.push_back(std::make_unique<testing::ChildProcess>(
          FullDiskAt(runs[i - next], files[i].first, files[i].second)));
    }
    for (size_t i = next; i < std::min(files.size(), next + kParallel); ++i) {
      const std::string& run = runs[i - next];
      SCOPED_TRACE(absl::StrCat("full disk at ", files[i].first, " (", files[i].second,
                                " bytes)"));
      ExpectCleanFailure(children[i - next]->Wait(kBound), files[i].first);
      EXPECT_TRUE(Checkpoints(run) == before);
      EXPECT_FALSE(fs::exists(run + "/" + kLastCheckpoint + ".staging"));
      const absl::StatusOr<Checkpoint> last = LoadCheckpoint(run + "/" + kLastCheckpoint);
      EXPECT_TRUE(last.ok()) << last.status();
    }
  }
}

}  // namespace
}  // namespace taskmoe
