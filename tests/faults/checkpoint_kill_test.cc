// The trainer killed (SIGKILL) at moments drawn with a fixed seed while it writes its
// checkpoints: after each kill, the checkpoints it left load, and the run resumed after the last
// kill ends bit for bit where an uninterrupted run ends (the optimizer's tensors, not its file's
// bytes: see OptimizerTensors).
#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "moe/base/file_io.h"
#include "moe/train/checkpoint.h"
#include "moe/train/model_builder.h"
#include "tests/faults/child_process.h"
#include "tests/faults/trainer_child.h"
#include "tests/tiny_gym.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

// Ten evaluations, each writing best/ (when the dev score improves) and last/: enough that
// every one of the runs below is killed before it ends.
const std::vector<std::string> kRun = {"training.total_steps=20", "evaluation.eval_period=2"};
constexpr std::chrono::seconds kBound(120);
constexpr int kKills = 5;

std::string Bytes(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFileBytes(path);
  CHECK(bytes.ok()) << bytes.status();
  return *bytes;
}

// The tensors of an optimizer.pt, as sorted byte strings. LibTorch names each parameter's state
// by the parameter's address in memory, so the file's bytes differ between any two processes;
// the tensors it holds (the AdamW moments and step counts) do not.
std::vector<std::string> OptimizerTensors(const std::string& path) {
  caffe2::serialize::PyTorchStreamReader archive(path);
  std::vector<std::string> tensors;
  for (const std::string& record : archive.getAllRecords()) {
    if (record.rfind("data/", 0) != 0) continue;
    const auto [data, size] = archive.getRecord(record);
    tensors.emplace_back(static_cast<const char*>(data.get()), size);
  }
  std::sort(tensors.begin(), tensors.end());
  return tensors;
}

int64_t DirectoryBytes(const std::string& dir) {
  int64_t bytes = 0;
  for (const auto& entry : fs::directory_iterator(dir)) bytes += entry.file_size();
  return bytes;
}

// Whether a run can --resume: before the first last/ exists it starts again instead.
bool HasLast(const std::string& output_dir) {
  return fs::exists(output_dir + "/" + kLastCheckpoint + "/" + kTrainerStateFile);
}

// The step last/ holds, for the log; 0 when there is none yet.
int64_t LastStep(const std::string& output_dir) {
  if (!HasLast(output_dir)) return 0;
  const std::string path = output_dir + "/" + kLastCheckpoint + "/" + kTrainerStateFile;
  const absl::StatusOr<TrainerState> state = TrainerStateFromJson(Bytes(path), path);
  return state.ok() ? state->step : -1;
}

// What a killed run left: best/ and last/ (when written at all) load, last/ with its trainer
// state.
void ExpectCheckpointsLoad(const std::string& output_dir) {
  for (const char* name : {kBestCheckpoint, kLastCheckpoint}) {
    const std::string dir = output_dir + "/" + name;
    if (!fs::exists(dir)) continue;
    const absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(dir);
    EXPECT_TRUE(checkpoint.ok()) << checkpoint.status();
  }
  if (!fs::exists(output_dir + "/" + kLastCheckpoint)) return;
  ASSERT_TRUE(HasLast(output_dir));
  EXPECT_GT(LastStep(output_dir), 0);
}

testing::ChildResult RunTrainer(const testing::ChildOptions& options) {
  testing::ChildProcess child(options);
  return child.Wait(kBound);
}

TEST(CheckpointKills, CheckpointsSurviveAndTheResumedRunEqualsAnUninterruptedOne) {
  const std::string straight = testing::FreshTempDir("straight");
  const testing::ChildResult uninterrupted =
      RunTrainer(testing::ChildOptions{testing::TrainerArgv(straight, kRun)});
  ASSERT_EQ(uninterrupted.exit_code, 0) << uninterrupted.output;

  // A moment is a byte of the checkpoint files a run writes (best/ and last/, counted from the
  // run's start, so a resumed run is killed relative to its own writes); the span covers about
  // two evaluations' checkpoints, so some kills come after a last/ was committed.
  const int64_t span = 2 * (DirectoryBytes(straight + "/" + kBestCheckpoint) +
                            DirectoryBytes(straight + "/" + kLastCheckpoint));
  std::mt19937 moments(13);
  std::uniform_int_distribution<int64_t> byte(1, span);
  const std::string dir = testing::FreshTempDir("killed");
  for (int kill = 0; kill < kKills; ++kill) {
    const int64_t at = byte(moments);
    SCOPED_TRACE(absl::StrCat("kill ", kill, " at checkpoint byte ", at, " of ", span));
    const testing::ChildResult killed = RunTrainer(testing::TrainerWithFaults(
        testing::TrainerArgv(dir, kRun, HasLast(dir)),
        {"TASKMOE_FAULT_PATHS=/best.staging/|/last.staging/",
         absl::StrCat("TASKMOE_FAULT_KILL_AT_BYTE=", at)}));
    ASSERT_EQ(killed.signal, SIGKILL) << killed.output;
    ExpectCheckpointsLoad(dir);
    std::cout << "kill " << kill << " at checkpoint byte " << at << ": last/ at step "
              << LastStep(dir) << "\n";
  }
  const testing::ChildResult resumed =
      RunTrainer(testing::ChildOptions{testing::TrainerArgv(dir, kRun, HasLast(dir))});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  for (const char* file : {kModelWeightsFile, kRoutingStateFile, kTrainerStateFile,
                           kRngStateFile, "task_vecs.npy"}) {
    EXPECT_TRUE(Bytes(straight + "/last/" + file) == Bytes(dir + "/last/" + file)) << file;
  }
  EXPECT_TRUE(OptimizerTensors(straight + "/last/" + kOptimizerFile) ==
              OptimizerTensors(dir + "/last/" + kOptimizerFile));
  EXPECT_TRUE(Bytes(straight + "/best/" + kModelWeightsFile) ==
              Bytes(dir + "/best/" + kModelWeightsFile));
}

}  // namespace
}  // namespace taskmoe
