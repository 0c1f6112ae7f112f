// Runs of the trainer that fail: a checkpoint write that fails half-way, a NaN loss, config and
// length errors before training, files in the way of the run's directories, outputs over
// inputs, a second run on a locked output_dir, and a resume state outside the run. Each keeps
// what was already written.
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "moe/base/directory_lock.h"
#include "moe/base/file_io.h"
#include "moe/train/checkpoint.h"
#include "moe/train/experiment_config.h"
#include "moe/train/model_builder.h"
#include "moe/train/trainer.h"
#include "tests/tiny_trainer.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

TEST(Trainer, FailedCheckpointWriteKeepsThePreviousOne) {
  const std::string dir = testing::FreshTempDir("failed_write");
  TrainerOptions options;
  int commits = 0;
  options.before_checkpoint_commit = [&commits](const std::string& staging) -> absl::Status {
    // best@4 and last@4 succeed; the next write (best or last at step 8) fails half-way.
    if (++commits > 2) return absl::DataLossError("disk full (injected) in " + staging);
    return absl::OkStatus();
  };
  absl::StatusOr<RunSummary> run = RunExperiment(testing::TinyConfig(dir), options);
  ASSERT_FALSE(run.ok());
  EXPECT_TRUE(absl::StrContains(run.status().message(), "injected")) << run.status();
  absl::StatusOr<Checkpoint> last = LoadCheckpoint(dir + "/last");
  ASSERT_TRUE(last.ok()) << last.status();
  absl::StatusOr<std::string> state = ReadFileBytes(dir + "/last/trainer_state.json");
  ASSERT_TRUE(state.ok());
  absl::StatusOr<TrainerState> parsed = TrainerStateFromJson(*state, "trainer_state.json");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->step, 4);
  EXPECT_FALSE(fs::exists(dir + "/last.staging"));
  // The run continues from the intact checkpoint.
  TrainerOptions resume;
  resume.resume = true;
  absl::StatusOr<RunSummary> resumed = RunExperiment(testing::TinyConfig(dir), resume);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->steps, 8);
}

TEST(Trainer, NanLossStopsAndKeepsLastGoodCheckpoint) {
  const std::string dir = testing::FreshTempDir("nan");
  absl::StatusOr<RunSummary> run = RunExperiment(
      testing::TinyConfig(dir, {"optimizer.lr=1e30", "training.warmup_ratio=0", "evaluation.eval_period=1",
                       "optimizer.max_grad_norm=0", "training.gradient_accumulation_steps=1"}));
  ASSERT_FALSE(run.ok());
  EXPECT_TRUE(absl::StrContains(run.status().message(), "training loss is")) << run.status();
  EXPECT_TRUE(absl::StrContains(run.status().message(), dir + "/last")) << run.status();
  absl::StatusOr<Checkpoint> last = LoadCheckpoint(dir + "/last");
  ASSERT_TRUE(last.ok()) << last.status();
}

TEST(Trainer, ConfigErrorsFailBeforeTrainingWithTheFieldPath) {
  const std::string dir = testing::FreshTempDir("errors");
  absl::StatusOr<RunSummary> plugin = RunExperiment(testing::TinyConfig(dir, {"routing.plugin=magic"}));
  ASSERT_FALSE(plugin.ok());
  EXPECT_TRUE(absl::StrContains(plugin.status().message(), "config field routing")) << plugin.status();
  EXPECT_TRUE(absl::StrContains(plugin.status().message(), "learned")) << plugin.status();
  EXPECT_FALSE(fs::exists(dir + "/last"));
  absl::StatusOr<RunSummary> data =
      RunExperiment(testing::TinyConfig(dir, {"data.data_dir=" + dir + "/no_such_dir"}));
  ASSERT_FALSE(data.ok());
  EXPECT_TRUE(absl::StrContains(data.status().message(), "data.data_dir")) << data.status();
  auto negative = LoadExperimentConfig("", {"optimizer.lr=-1"});
  EXPECT_TRUE(absl::StrContains(negative.status().message(), "optimizer.lr"));
}

TEST(Trainer, LengthsBeyondTheModelsPositionsFailBeforeTraining) {
  const std::string dir = testing::FreshTempDir("too_long");
  absl::StatusOr<RunSummary> run = RunExperiment(testing::TinyConfig(dir, {"data.max_input_length=65"}));
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.status().message(),
            "config field data.max_input_length: 65 is more than the model's 64 positions "
            "(max_position_embeddings of model.random_init); must be in [2, 64]");
  EXPECT_FALSE(fs::exists(dir + "/last"));
}

TEST(Trainer, TooFewDevExamplesForACorrelationMetricFailBeforeTraining) {
  const std::string dir = testing::FreshTempDir("one_dev_example");
  absl::StatusOr<RunSummary> run =
      RunExperiment(testing::TinyConfig(dir, {"evaluation.max_dev_examples=1"}));
  ASSERT_FALSE(run.ok());
  EXPECT_THAT(std::string(run.status().message()),
              ::testing::MatchesRegex("config field evaluation.max_dev_examples: 1 leaves 1 dev "
                                      "example\\(s\\) of task task[0-9]+, whose metric "
                                      "Pearson-Correlation needs at least 2"));
  EXPECT_FALSE(fs::exists(dir + "/last"));
}

TEST(Trainer, AFileWhereTheRunKeepsADirectoryIsAnErrorAndKept) {
  for (const std::string name : {"best", "last", "evals", "predict"}) {
    const std::string dir = testing::FreshTempDir("file_named_" + name);
    ASSERT_TRUE(CreateDirectories(dir).ok());
    ASSERT_TRUE(WriteFileAtomically(dir + "/" + name, "someone's notes").ok());
    absl::StatusOr<RunSummary> run = RunExperiment(testing::TinyConfig(dir));
    ASSERT_FALSE(run.ok()) << name;
    EXPECT_EQ(run.status().message(),
              "output_dir " + dir + " holds a file named '" + name +
                  "' where the run keeps a directory; move it away (the run would replace it)");
    EXPECT_EQ(*ReadFileBytes(dir + "/" + name), "someone's notes");
  }
}

TEST(Trainer, ARunNeverReplacesWhatItReads) {
  const std::string dir = testing::FreshTempDir("reads_its_output");
  ASSERT_TRUE(CreateDirectories(dir + "/best").ok());
  absl::StatusOr<RunSummary> run =
      RunExperiment(testing::TinyConfig(dir, {"model.checkpoint=" + dir + "/best"}));
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.status().message(), "the output " + dir + "/best would overwrite the input " +
                                        dir + "/best; write the output somewhere else");
  EXPECT_FALSE(fs::exists(dir + "/experiment.pbtxt"));
}

TEST(Trainer, ASecondRunOnTheSameOutputDirStopsAndAStaleLockIsTakenOver) {
  const std::string dir = testing::FreshTempDir("locked");
  ASSERT_TRUE(CreateDirectories(dir).ok());
  {
    absl::StatusOr<DirectoryLock> other_run = DirectoryLock::Acquire(dir);
    ASSERT_TRUE(other_run.ok()) << other_run.status();
    absl::StatusOr<RunSummary> run = RunExperiment(testing::TinyConfig(dir));
    ASSERT_FALSE(run.ok());
    EXPECT_TRUE(absl::StartsWith(run.status().message(),
                                 absl::StrCat(dir, " is in use by another run (pid ", getpid(),
                                              " on host ")))
        << run.status();
    EXPECT_FALSE(fs::exists(dir + "/experiment.pbtxt"));
  }
  // A lock file left by a run that was killed names it, but holds nothing.
  ASSERT_TRUE(WriteFileAtomically(dir + "/.lock", "pid 999999 on host gone\n").ok());
  absl::StatusOr<RunSummary> run = RunExperiment(testing::TinyConfig(dir));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(*ReadFileBytes(dir + "/.lock"), "");  // released at the end of the run
}

TEST(Trainer, ResumeRejectsATrainerStateOutsideTheRun) {
  const std::string dir = testing::FreshTempDir("bad_state");
  TrainerOptions first;
  first.stop_after_step = 4;
  ASSERT_TRUE(RunExperiment(testing::TinyConfig(dir), first).ok());
  const std::string path = dir + "/last/trainer_state.json";
  absl::StatusOr<TrainerState> state = TrainerStateFromJson(*ReadFileBytes(path), path);
  ASSERT_TRUE(state.ok()) << state.status();
  TrainerOptions resume;
  resume.resume = true;
  state->step = 1000000;
  ASSERT_TRUE(WriteFileAtomically(path, TrainerStateToJson(*state)).ok());
  absl::StatusOr<RunSummary> beyond = RunExperiment(testing::TinyConfig(dir), resume);
  ASSERT_FALSE(beyond.ok());
  EXPECT_EQ(beyond.status().message(), "--resume: " + dir + "/last/trainer_state.json is at " +
                                           "step 1000000, beyond training.total_steps 8");
  state->step = -3;
  ASSERT_TRUE(WriteFileAtomically(path, TrainerStateToJson(*state)).ok());
  absl::StatusOr<RunSummary> negative = RunExperiment(testing::TinyConfig(dir), resume);
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.status().message(),
            path + ": field 'step' must be an integer in [0, 2147483647], got -3");
}

}  // namespace
}  // namespace taskmoe
