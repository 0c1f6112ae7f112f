// End-to-end checks of the trainer on a tiny generated gym and a tiny model: exact resume,
// evaluations and their route views, TensorBoard events, prediction without training, task
// vectors from an embedding method, and two-process data parallelism equal to one process with
// the combined batch. Runs that fail are in trainer_errors_test.cc.
#include "moe/train/trainer.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "moe/base/file_io.h"
#include "moe/formats/npy.h"
#include "moe/formats/safetensors.h"
#include "moe/formats/task_table.h"
#include "moe/train/checkpoint.h"
#include "moe/train/experiment_config.h"
#include "moe/train/model_builder.h"
#include "moe/train/run_outputs.h"
#include "moe/train/tensorboard_log.h"
#include "moe/workflow/task_export.h"
#include "tests/event_files.h"
#include "tests/free_port.h"
#include "tests/tiny_trainer.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

TEST(Trainer, ResumedRunEqualsStraightRunBitwise) {
  const std::string straight = testing::FreshTempDir("straight");
  absl::StatusOr<RunSummary> a = RunExperiment(testing::TinyConfig(straight));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->steps, 8);

  const std::string split = testing::FreshTempDir("split");
  TrainerOptions first;
  first.stop_after_step = 3;
  absl::StatusOr<RunSummary> b1 = RunExperiment(testing::TinyConfig(split), first);
  ASSERT_TRUE(b1.ok()) << b1.status();
  EXPECT_EQ(b1->steps, 3);
  TrainerOptions resume;
  resume.resume = true;
  absl::StatusOr<RunSummary> b2 = RunExperiment(testing::TinyConfig(split), resume);
  ASSERT_TRUE(b2.ok()) << b2.status();
  EXPECT_EQ(b2->steps, 8);

  testing::ExpectSameTensors(testing::ReadTensors(straight + "/last/model.safetensors"),
                    testing::ReadTensors(split + "/last/model.safetensors"), 0.0);
  testing::ExpectSameTensors(testing::ReadTensors(straight + "/last/routing_state.safetensors"),
                    testing::ReadTensors(split + "/last/routing_state.safetensors"), 0.0);
  absl::StatusOr<Checkpoint> ca = LoadCheckpoint(straight + "/last");
  absl::StatusOr<Checkpoint> cb = LoadCheckpoint(split + "/last");
  ASSERT_TRUE(ca.ok() && cb.ok());
  EXPECT_TRUE(at::equal(ca->tasks->vectors(), cb->tasks->vectors()));
  EXPECT_TRUE(at::equal(ca->routes, cb->routes));
  // Training moved the weights away from initialisation at all.
  EXPECT_TRUE(fs::exists(straight + "/losses.csv"));
  EXPECT_TRUE(fs::exists(straight + "/best/" + kRoutesImageFile));
  // The rows of the route files are named: the train tasks, sorted.
  absl::StatusOr<std::vector<std::string>> route_tasks =
      TaskTable::ReadNames(straight + "/last/" + kRouteTasksFile);
  ASSERT_TRUE(route_tasks.ok()) << route_tasks.status();
  EXPECT_EQ(static_cast<int64_t>(route_tasks->size()), ca->routes.size(0));
  EXPECT_TRUE(std::is_sorted(route_tasks->begin(), route_tasks->end()));
}

// Every evaluation keeps the three route views of the train tasks; the run ends with the
// route-evolution GIF, one frame per evaluation.
TEST(Trainer, EvaluationsKeepRouteViewsAndTheRunAnimatesThem) {
  const std::string dir = testing::FreshTempDir("route_views");
  absl::StatusOr<RunSummary> summary = RunExperiment(testing::TinyConfig(dir));
  ASSERT_TRUE(summary.ok()) << summary.status();
  // The run's time and the part of it spent evaluating (two evaluations and the prediction).
  EXPECT_GT(summary->evaluation_seconds, 0);
  EXPECT_LT(summary->evaluation_seconds, summary->seconds);
  EXPECT_NE(summary->text.find("of which evaluation and prediction"), std::string::npos)
      << summary->text;
  absl::StatusOr<Checkpoint> last = LoadCheckpoint(dir + "/last");
  ASSERT_TRUE(last.ok()) << last.status();
  for (int step : {4, 8}) {
    const std::string eval_dir = absl::StrCat(dir, "/evals/step_", step);
    absl::StatusOr<at::Tensor> soft = ReadNpy(eval_dir + "/" + kRoutesFile);
    absl::StatusOr<at::Tensor> soft_t1 = ReadNpy(eval_dir + "/" + kRoutesT1File);
    absl::StatusOr<at::Tensor> argmax = ReadNpy(eval_dir + "/" + kRoutesArgmaxFile);
    ASSERT_TRUE(soft.ok() && soft_t1.ok() && argmax.ok()) << eval_dir;
    EXPECT_TRUE(at::allclose(soft->sum(-1), at::ones({soft->size(0), soft->size(1)})));
    // The argmax view is the one-hot of the soft views' largest weight (tau does not move it).
    EXPECT_TRUE(at::equal(*argmax, at::one_hot(soft->argmax(-1), 2).to(at::kFloat)));
    EXPECT_TRUE(at::equal(soft->argmax(-1), soft_t1->argmax(-1)));
    EXPECT_TRUE(fs::exists(eval_dir + "/" + kRoutesImageFile));
  }
  // The last evaluation's soft view is what the last checkpoint's route.npy holds.
  absl::StatusOr<at::Tensor> final_soft = ReadNpy(dir + "/evals/step_8/" + kRoutesFile);
  ASSERT_TRUE(final_soft.ok());
  EXPECT_TRUE(at::equal(*final_soft, last->routes));
  absl::StatusOr<std::string> gif = ReadFileBytes(dir + "/" + kRouteGifFile);
  ASSERT_TRUE(gif.ok()) << gif.status();
  EXPECT_EQ(gif->substr(0, 6), "GIF89a");
  // One image descriptor (0x2C after a graphic control extension) per evaluation.
  int frames = 0;
  for (size_t i = 0; i + 8 < gif->size(); ++i) {
    if ((*gif)[i] == '\x21' && (*gif)[i + 1] == '\xF9' && (*gif)[i + 2] == '\x04' &&
        (*gif)[i + 7] == '\x00' && (*gif)[i + 8] == '\x2C') {
      ++frames;
    }
  }
  EXPECT_EQ(frames, 2);
}

// The event files of a run's output directory, oldest first (names hold the creation second).
std::vector<std::string> EventFiles(const std::string& output_dir) {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(output_dir + "/" + kTensorBoardDir)) {
    files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// A run writes TensorBoard events (training scalars every log_every steps, dev scalars and the
// route heatmap at each evaluation); its resumed continuation adds a file that continues the
// step axis.
TEST(Trainer, TensorBoardEventsOfARunAndItsResume) {
  const std::string dir = testing::FreshTempDir("tensorboard_run");
  TrainerOptions first;
  first.stop_after_step = 4;
  ASSERT_TRUE(RunExperiment(testing::TinyConfig(dir, {"training.log_every=2"}), first).ok());
  TrainerOptions resume;
  resume.resume = true;
  ASSERT_TRUE(RunExperiment(testing::TinyConfig(dir, {"training.log_every=2"}), resume).ok());
  const std::vector<std::string> files = EventFiles(dir);
  ASSERT_EQ(files.size(), 2u);
  // steps,train_loss,dev_loss,dev_performance per evaluation (steps 4 and 8).
  const std::vector<std::string> losses =
      absl::StrSplit(*ReadFileBytes(dir + "/losses.csv"), '\n', absl::SkipEmpty());
  ASSERT_EQ(losses.size(), 3u);
  // The schedule's factor at each logged step: 2 warm-up steps of 8, lr 1e-3 for every group.
  const std::map<int64_t, double> lr_factor = {{2, 0.5}, {4, 5.0 / 6}, {6, 0.5}, {8, 1.0 / 6}};
  for (int run = 0; run < 2; ++run) {
    const testing::EventFile file = testing::ReadEventFile(files[run]);
    EXPECT_FALSE(file.decoded.truncated);
    EXPECT_EQ(file.decoded.corruption, "");
    ASSERT_FALSE(file.events.empty());
    EXPECT_EQ(file.events[0].file_version(), "brain.Event:2");
    std::map<int64_t, std::map<std::string, float>> scalars;  // step -> tag -> value
    std::map<int64_t, std::string> images;                    // step -> PNG
    for (const tensorboard::Event& event : file.events) {
      for (const tensorboard::Summary::Value& value : event.summary().value()) {
        if (value.has_image()) {
          EXPECT_EQ(value.tag(), "routes/heatmap");
          images[event.step()] = value.image().encoded_image_string();
        } else {
          scalars[event.step()][value.tag()] = value.simple_value();
        }
      }
    }
    const std::vector<int64_t> steps =
        run == 0 ? std::vector<int64_t>{2, 4} : std::vector<int64_t>{6, 8};
    ASSERT_EQ(scalars.size(), 2u);
    for (const int64_t step : steps) {
      SCOPED_TRACE(absl::StrCat("step ", step));
      const std::map<std::string, float>& at_step = scalars[step];
      EXPECT_GT(at_step.at("train/loss"), 0);
      EXPECT_GT(at_step.at("train/grad_norm"), 0);
      EXPECT_GT(at_step.at("train/tokens_per_second"), 0);
      EXPECT_NEAR(at_step.at("train/lr/model"), 1e-3 * lr_factor.at(step), 1e-9);
      EXPECT_NEAR(at_step.at("train/lr/router"), 1e-3 * lr_factor.at(step), 1e-9);
      // The learned plugin's default Gumbel schedule: tau = 2 exp(-0.0003 step).
      EXPECT_NEAR(at_step.at("train/tau"), 2 * std::exp(-0.0003 * step), 1e-6);
      for (const char* layer : {"routes/entropy/enc0", "routes/entropy/dec0"}) {
        EXPECT_GE(at_step.at(layer), 0) << layer;
        EXPECT_LE(at_step.at(layer), std::log(2.0) + 1e-6) << layer;  // two experts
      }
    }
    // The evaluation's scalars are those of losses.csv; the image is the evaluation's heatmap.
    const int64_t eval_step = steps.back();
    const std::vector<std::string> row = absl::StrSplit(losses[run + 1], ',');
    ASSERT_EQ(row[0], absl::StrCat(eval_step));
    const std::map<std::string, float>& dev = scalars[eval_step];
    EXPECT_NEAR(dev.at("dev/loss"), std::stod(row[2]), 1e-5 * std::stod(row[2]));
    EXPECT_NEAR(dev.at("dev/performance"), std::stod(row[3]), 1e-5);
    // Per task: the rows "task,metric,performance" of the evaluation's dev_results.csv.
    const std::string eval_dir = absl::StrCat(dir, "/evals/step_", eval_step);
    const std::vector<std::string> task_rows =
        absl::StrSplit(*ReadFileBytes(eval_dir + "/dev_results.csv"), '\n', absl::SkipEmpty());
    ASSERT_GT(task_rows.size(), 2u);
    const auto dev_tags = std::count_if(dev.begin(), dev.end(), [](const auto& tag_value) {
      return absl::StartsWith(tag_value.first, "dev/");
    });
    EXPECT_EQ(static_cast<size_t>(dev_tags), 1 + task_rows.size());  // loss, mean, per task
    for (size_t i = 1; i < task_rows.size(); ++i) {
      const std::vector<std::string> cells = absl::StrSplit(task_rows[i], ',');
      const double performance = std::stod(cells[2]);
      const float logged = dev.at("dev/performance/" + cells[0]);
      if (std::isnan(performance)) {
        EXPECT_TRUE(std::isnan(logged)) << cells[0];
      } else {
        EXPECT_NEAR(logged, performance, 1e-5) << cells[0];
      }
    }
    ASSERT_EQ(images.size(), 1u);
    EXPECT_EQ(images[eval_step], *ReadFileBytes(eval_dir + "/" + kRoutesImageFile));
  }
}

// Noise-free evaluation routes, so two runs route alike whatever they drew before.
constexpr char kArgmaxRoutes[] =
    "routing.params={[type.googleapis.com/taskmoe.LearnedRoutingParams] "
    "{ selection { eval_route: ARGMAX } }}";

// training.total_steps 0 with a checkpoint: the checkpoint predicts as it is, as the trained
// run's own prediction with it did; nothing is trained or saved, and the routes it used are
// kept with the predictions.
TEST(Trainer, ZeroStepsPredictsWithTheCheckpointAsItIs) {
  const std::string trained = testing::FreshTempDir("to_predict_from");
  absl::StatusOr<RunSummary> trained_run =
      RunExperiment(testing::TinyConfig(trained, {kArgmaxRoutes, "evaluation.do_predict=true"}));
  ASSERT_TRUE(trained_run.ok()) << trained_run.status();

  const std::string dir = testing::FreshTempDir("predict_only");
  absl::StatusOr<RunSummary> summary = RunExperiment(
      testing::TinyConfig(dir, {kArgmaxRoutes, "training.total_steps=0",
                                "evaluation.do_predict=true",
                                "model.checkpoint=" + trained + "/best"}));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->steps, 0);
  EXPECT_FALSE(fs::exists(dir + "/last"));
  EXPECT_FALSE(fs::exists(dir + "/best"));
  EXPECT_TRUE(fs::exists(dir + "/" + kPredictDir + "/" + kRoutesFile));
  ASSERT_EQ(summary->test_scores.size(), trained_run->test_scores.size());
  for (size_t i = 0; i < summary->test_scores.size(); ++i) {
    EXPECT_EQ(summary->test_scores[i].predictions, trained_run->test_scores[i].predictions);
    EXPECT_THAT(summary->test_scores[i].performance,
                ::testing::NanSensitiveDoubleEq(trained_run->test_scores[i].performance));
  }

  // data.predict_data_dir: the final predictions read their files there (the original's
  // --predict_dir), here a copy whose first task's test file holds 2 examples.
  const std::string predict_data = testing::FreshTempDir("predict_data");
  fs::copy(testing::GymDir(), predict_data, fs::copy_options::recursive);
  const std::string first_task = summary->test_scores[0].task;
  std::string test_file;
  for (const auto& entry : fs::directory_iterator(predict_data + "/" + first_task)) {
    if (absl::EndsWith(entry.path().string(), "_test.tsv")) test_file = entry.path().string();
  }
  ASSERT_FALSE(test_file.empty());
  absl::StatusOr<std::string> lines = ReadFileBytes(test_file);
  ASSERT_TRUE(lines.ok()) << lines.status();
  const std::vector<std::string> rows = absl::StrSplit(*lines, '\n', absl::SkipEmpty());
  ASSERT_GT(rows.size(), 2u);
  ASSERT_TRUE(WriteFileAtomically(test_file, rows[0] + "\n" + rows[1] + "\n").ok());
  absl::StatusOr<RunSummary> elsewhere = RunExperiment(testing::TinyConfig(
      testing::FreshTempDir("predict_elsewhere"),
      {kArgmaxRoutes, "training.total_steps=0", "evaluation.do_predict=true",
       "model.checkpoint=" + trained + "/best", "data.predict_data_dir=" + predict_data}));
  ASSERT_TRUE(elsewhere.ok()) << elsewhere.status();
  EXPECT_EQ(elsewhere->test_scores[0].predictions.size(), 2u);
  EXPECT_EQ(elsewhere->test_scores[1].predictions, summary->test_scores[1].predictions);

  // Without trained weights there is nothing to predict with.
  absl::StatusOr<ExperimentConfig> untrained =
      LoadExperimentConfig("", {"training.total_steps=0", "evaluation.do_predict=true"});
  ASSERT_FALSE(untrained.ok());
  EXPECT_TRUE(absl::StrContains(untrained.status().message(), "training.total_steps"))
      << untrained.status();
}

// training.total_steps 0 from model.hf_dir saves nothing; with save_initial_model the model with
// its fresh router is saved as `last` (step 0), and predicting from that checkpoint repeats the
// run's predictions and routes.
TEST(Trainer, ZeroStepsFromAnHfDirSavesTheUntrainedModelWhenAsked) {
  const std::string trained = testing::FreshTempDir("hf_source");
  absl::StatusOr<RunSummary> trained_run =
      RunExperiment(testing::TinyConfig(trained, {"evaluation.do_predict=true"}));
  ASSERT_TRUE(trained_run.ok()) << trained_run.status();
  TaskExportOptions export_options;
  export_options.checkpoint_dir = trained + "/" + kLastCheckpoint;
  export_options.task = trained_run->test_scores.front().task;
  export_options.output_dir = testing::FreshTempDir("hf_dir") + "/model";
  export_options.allow_argmax = true;
  absl::StatusOr<TaskExport> exported = ExportTaskModel(export_options);
  ASSERT_TRUE(exported.ok()) << exported.status();

  const std::vector<std::string> from_hf_dir = {kArgmaxRoutes, "training.total_steps=0",
                                                "evaluation.do_predict=true",
                                                "model.hf_dir=" + export_options.output_dir};
  const std::string unsaved = testing::FreshTempDir("untrained_unsaved");
  ASSERT_TRUE(RunExperiment(testing::TinyConfig(unsaved, from_hf_dir)).ok());
  EXPECT_FALSE(fs::exists(unsaved + "/" + kLastCheckpoint));

  const std::string untrained = testing::FreshTempDir("untrained");
  TrainerOptions save;
  save.save_initial_model = true;
  absl::StatusOr<RunSummary> summary =
      RunExperiment(testing::TinyConfig(untrained, from_hf_dir), save);
  ASSERT_TRUE(summary.ok()) << summary.status();
  const std::string last = untrained + "/" + kLastCheckpoint;
  ASSERT_TRUE(fs::exists(last + "/" + kTrainerStateFile));
  EXPECT_FALSE(fs::exists(untrained + "/best"));

  const std::string again = testing::FreshTempDir("from_untrained");
  absl::StatusOr<RunSummary> repeated = RunExperiment(
      testing::TinyConfig(again, {kArgmaxRoutes, "training.total_steps=0",
                                  "evaluation.do_predict=true", "model.checkpoint=" + last,
                                  "task_vectors.dir=" + last}));
  ASSERT_TRUE(repeated.ok()) << repeated.status();
  EXPECT_FALSE(fs::exists(again + "/" + kLastCheckpoint));
  ASSERT_EQ(repeated->test_scores.size(), summary->test_scores.size());
  for (size_t i = 0; i < summary->test_scores.size(); ++i) {
    EXPECT_EQ(repeated->test_scores[i].predictions, summary->test_scores[i].predictions);
  }
  const std::string routes = std::string("/") + kPredictDir + "/" + kRoutesFile;
  absl::StatusOr<std::string> first_routes = ReadFileBytes(untrained + routes);
  absl::StatusOr<std::string> repeated_routes = ReadFileBytes(again + routes);
  ASSERT_TRUE(first_routes.ok() && repeated_routes.ok());
  EXPECT_EQ(*first_routes, *repeated_routes);

  // A training run saves its own checkpoints: asking it for the initial model is an error.
  absl::StatusOr<RunSummary> training = RunExperiment(
      testing::TinyConfig(testing::FreshTempDir("training_save_initial"), {}), save);
  ASSERT_FALSE(training.ok());
  EXPECT_TRUE(absl::StrContains(training.status().message(), "training.total_steps 0"))
      << training.status();
}

TEST(Trainer, TaskVectorsFromATaskEmbeddingMethod) {
  const std::string dir = testing::FreshTempDir("embedding_method");
  absl::StatusOr<RunSummary> run = RunExperiment(testing::TinyConfig(
      dir, {"task_vectors.method={name: \"random\"}", "training.total_steps=2",
            "evaluation.eval_period=2"}));
  ASSERT_TRUE(run.ok()) << run.status();
  absl::StatusOr<Checkpoint> last = LoadCheckpoint(dir + "/last");
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->tasks->dim(), 8);
  EXPECT_EQ(last->tasks->size(), 29);
  absl::StatusOr<RunSummary> unknown = RunExperiment(
      testing::TinyConfig(testing::FreshTempDir("embedding_unknown"), {"task_vectors.method={name: \"psychic\"}"}));
  ASSERT_FALSE(unknown.ok());
  EXPECT_TRUE(absl::StrContains(unknown.status().message(), "task_vectors.method"))
      << unknown.status();
}

TEST(Trainer, TwoProcessGlooRunEqualsOneProcessWithCombinedBatch) {
  // Deterministic math on both sides: no dropout, softmax routes (no Gumbel noise).
  const std::vector<std::string> common = {
      "model.dropout=0", "training.total_steps=3", "evaluation.eval_period=100",
      "training.gradient_accumulation_steps=1",
      "routing.params={[type.googleapis.com/taskmoe.LearnedRoutingParams] "
      "{selection {function: SOFTMAX}}}"};
  const std::string parallel = testing::FreshTempDir("parallel");
  const int port = testing::FreePort();
  std::vector<pid_t> children;
  for (int rank = 0; rank < 2; ++rank) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      alarm(120);  // never hang the test suite
      setenv("WORLD_SIZE", "2", 1);
      setenv("RANK", std::to_string(rank).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<std::string> overrides = common;
      overrides.push_back("training.train_batch_size=4");
      absl::StatusOr<RunSummary> run = RunExperiment(testing::TinyConfig(parallel, overrides));
      if (!run.ok()) LOG(ERROR) << run.status();
      _exit(run.ok() ? 0 : 1);
    }
    children.push_back(pid);
  }
  for (pid_t child : children) {
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "rank process failed";
  }
  const std::string single = testing::FreshTempDir("single");
  std::vector<std::string> overrides = common;
  overrides.push_back("training.train_batch_size=8");
  absl::StatusOr<RunSummary> run = RunExperiment(testing::TinyConfig(single, overrides));
  ASSERT_TRUE(run.ok()) << run.status();
  testing::ExpectSameTensors(testing::ReadTensors(parallel + "/last/model.safetensors"),
                    testing::ReadTensors(single + "/last/model.safetensors"), 1e-5);
  testing::ExpectSameTensors(testing::ReadTensors(parallel + "/last/routing_state.safetensors"),
                    testing::ReadTensors(single + "/last/routing_state.safetensors"), 1e-5);
  EXPECT_EQ(EventFiles(parallel).size(), 1u);  // only rank 0 writes TensorBoard events
}

}  // namespace
}  // namespace taskmoe
