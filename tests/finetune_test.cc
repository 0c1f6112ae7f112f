// Few-shot fine-tuning on a tiny generated gym with a tiny model: result.csv rows and _best rows,
// resume that skips finished prefixes and recorded grid points, routes of a new task from a
// learned checkpoint, explicit plugins, and bad input.
#include "moe/workflow/finetune.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "data/crossfit.h"
#include "data/metrics.h"
#include "data/results.h"
#include "glog/logging.h"
#include "moe/base/file_io.h"
#include "moe/formats/npy.h"
#include "moe/formats/task_table.h"
#include "moe/routing/routing.h"
#include "moe/train/experiment_config.h"
#include "moe/train/model_builder.h"
#include "moe/train/trainer.h"
#include "tests/tiny_gym.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

// A gym whose held-out tasks have two few-shot prefixes each.
const std::string& GymDir() {
  static const std::string* dir = [] {
    gym::GymOptions options;
    options.train_examples = 32;
    options.upstream_dev_examples = 4;
    options.upstream_test_examples = 4;
    options.fewshot_pool_examples = 48;
    options.fewshot_test_examples = 6;
    options.fewshot_seeds = {100, 13};
    return new std::string(testing::MakeTinyGym("gym", options));
  }();
  return *dir;
}

std::vector<std::string> SplitList(const std::string& list) {
  absl::StatusOr<TaskSplit> split = ReadTaskSplit(GymDir() + "/split.json");
  CHECK(split.ok()) << split.status();
  return list == "test" ? split->test : split->train;
}

std::vector<std::string> SharedOverrides() {
  return {
      "data.data_dir=" + GymDir(),
      "model.dropout=0.0",
      "training.total_steps=4",
      "training.warmup_ratio=0",
      "training.gradient_accumulation_steps=1",
      "training.threads=1",
      "evaluation.eval_period=2",
      "evaluation.num_beams=1",
      "evaluation.max_dev_examples=4",
      "evaluation.predict_batch_size=8",
      "data.max_input_length=40",
      "data.max_output_length=12",
  };
}

// A tiny stage-one run with learned routing: the MoE checkpoint fine-tuning starts from.
const std::string& LearnedCheckpoint() {
  static const std::string* dir = [] {
    const std::string run = testing::FreshTempDir("stage_one");
    std::vector<std::string> overrides = SharedOverrides();
    overrides.insert(overrides.end(), {
        "output_dir=" + run,
        "model.random_init={d_model: 16 encoder_layers: 1 decoder_layers: 1 attention_heads: 2 "
        "ffn_dim: 32 max_position_embeddings: 64}",
        "model.experts=2",
        "model.init_eps=0.01",
        "routing.plugin=learned",
        "task_vectors.random=true",
        "task_vectors.dim=8",
        "training.train_batch_size=8",
        "evaluation.do_predict=false",
    });
    absl::StatusOr<ExperimentConfig> config = LoadExperimentConfig("", overrides);
    CHECK(config.ok()) << config.status();
    absl::StatusOr<RunSummary> summary = RunExperiment(*config);
    CHECK(summary.ok()) << summary.status();
    return new std::string(run + "/last");
  }();
  return *dir;
}

FinetuneOptions Options(const std::string& output_dir, std::vector<std::string> tasks,
                        std::vector<std::string> extra = {}) {
  std::vector<std::string> overrides = SharedOverrides();
  overrides.push_back("model.checkpoint=" + LearnedCheckpoint());
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  absl::StatusOr<ExperimentConfig> base = LoadExperimentConfig("", overrides);
  CHECK(base.ok()) << base.status();
  FinetuneOptions options;
  options.base = *base;
  options.tasks = std::move(tasks);
  options.learning_rates = {1e-3};
  options.batch_sizes = {4};
  options.output_dir = output_dir;
  return options;
}

// A vector table holding the held-out tasks (as compute_task_embeddings would write it).
std::string HeldOutVectors() {
  const std::string dir = testing::FreshTempDir("held_out_vectors");
  fs::create_directories(dir);
  const std::vector<std::string> tasks = SplitList("test");
  absl::StatusOr<TaskTable> table =
      TaskTable::Create(tasks, at::randn({static_cast<int64_t>(tasks.size()), 8}));
  CHECK(table.ok()) << table.status();
  CHECK(table->Save(dir).ok());
  return dir;
}

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFileBytes(path);
  CHECK(bytes.ok()) << bytes.status();
  return *bytes;
}

TEST(PythonFloatReprTest, MatchesPython) {
  EXPECT_EQ(PythonFloatRepr(1e-5), "1e-05");
  EXPECT_EQ(PythonFloatRepr(2e-5), "2e-05");
  EXPECT_EQ(PythonFloatRepr(0.0001), "0.0001");
  EXPECT_EQ(PythonFloatRepr(0.5), "0.5");
  EXPECT_EQ(PythonFloatRepr(0.1), "0.1");
  EXPECT_EQ(PythonFloatRepr(100.0), "100.0");
  EXPECT_EQ(PythonFloatRepr(0.0), "0.0");
  EXPECT_EQ(PythonFloatRepr(-1.0), "-1.0");
  EXPECT_EQ(PythonFloatRepr(123.456), "123.456");
  EXPECT_EQ(PythonFloatRepr(1e16), "1e+16");
  EXPECT_EQ(PythonFloatRepr(1.5e-7), "1.5e-07");
  EXPECT_EQ(PythonFloatRepr(2.0 / 3.0), "0.6666666666666666");
}

TEST(FinetuneResultsCsvTest, WritesPandasLayoutThatTheResultsReaderReads) {
  const std::vector<FinetuneResult> rows = {{"t_16_100", 1e-5, 2, 0.5, 0.25},
                                            {"t_16_100_best", 1e-5, 2, 0.5, 0.25}};
  const std::string csv = FinetuneResultsCsv(rows);
  EXPECT_EQ(csv,
            ",prefix,lr,bsz,dev_performance,test_performance\n"
            "0,t_16_100,1e-05,2,0.5,0.25\n"
            "1,t_16_100_best,1e-05,2,0.5,0.25\n");
  absl::StatusOr<std::vector<ResultRow>> back = ParseResultCsv(csv, "r.csv");
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[1].prefix, "t_16_100_best");
  EXPECT_EQ((*back)[1].lr, "1e-05");
  EXPECT_EQ((*back)[1].bsz, "2");
  EXPECT_EQ((*back)[1].test_performance, 0.25);
}

TEST(FinetuneTest, WritesResultsAndResumesFinishedPrefixes) {
  const std::string task = SplitList("test")[0];
  const std::string out = testing::FreshTempDir("finetune");
  FinetuneOptions options = Options(out, {task});
  options.task_vectors_dir = HeldOutVectors();
  absl::StatusOr<std::vector<std::string>> prefixes = ListPrefixes(GymDir() + "/" + task);
  ASSERT_TRUE(prefixes.ok());
  ASSERT_EQ(prefixes->size(), 2u);

  absl::StatusOr<FinetuneReport> report = FinetuneTasks(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->runs_trained, 2);
  const std::string results_path = out + "/" + task + "/result.csv";
  const std::string csv = Read(results_path);
  const std::vector<std::string> lines = absl::StrSplit(csv, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u) << csv;
  EXPECT_EQ(lines[0], ",prefix,lr,bsz,dev_performance,test_performance");
  ASSERT_EQ(report->results.size(), 1u);
  const std::vector<FinetuneResult>* rows = &report->results[0];
  ASSERT_EQ(rows->size(), 4u);
  absl::StatusOr<std::vector<ResultRow>> parsed = ParseResultCsv(csv, results_path);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 4u);
  // Per prefix: its one grid point, then that point again as <prefix>_best.
  for (int p = 0; p < 2; ++p) {
    const FinetuneResult& run = (*rows)[2 * p];
    const FinetuneResult& best = (*rows)[2 * p + 1];
    EXPECT_EQ(run.prefix, (*prefixes)[p]);
    EXPECT_EQ(best.prefix, (*prefixes)[p] + "_best");
    EXPECT_EQ(run.lr, 1e-3);
    EXPECT_EQ(run.bsz, 4);
    EXPECT_EQ(best.dev_performance, run.dev_performance);
    EXPECT_EQ(best.test_performance, run.test_performance);
    EXPECT_EQ((*parsed)[2 * p + 1].prefix, best.prefix);
    EXPECT_EQ((*parsed)[2 * p + 1].test_performance, best.test_performance);
    EXPECT_GE(run.test_performance, 0.0);
    EXPECT_LE(run.test_performance, 1.0);
    // The row holds the trainer's own prediction scores of that run.
    const std::string run_dir =
        absl::StrCat(out, "/", task, "/runs/", (*prefixes)[p], "/lr_0.001_bsz_4");
    EXPECT_TRUE(absl::StrContains(Read(run_dir + "/predict/eval-test-performance.csv"),
                                  absl::StrCat(task, ",")));
    EXPECT_FALSE(fs::exists(run_dir + "/best")) << "checkpoints are dropped by default";
  }
  // The new task's route came from the learned router and its vector, fixed while fine-tuning.
  absl::StatusOr<at::Tensor> routes = ReadNpy(out + "/" + task + "/init/task_routes.npy");
  ASSERT_TRUE(routes.ok()) << routes.status();
  EXPECT_EQ(routes->sizes().vec(), (std::vector<int64_t>{1, 2, 2}));
  EXPECT_TRUE(at::allclose(routes->sum(-1), at::ones({1, 2})));

  // Rerun: nothing is trained, result.csv and the runs stay as they were.
  const auto first_run_time = fs::last_write_time(
      absl::StrCat(out, "/", task, "/runs/", (*prefixes)[0], "/lr_0.001_bsz_4/losses.csv"));
  absl::StatusOr<FinetuneReport> again = FinetuneTasks(options);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->runs_trained, 0);
  EXPECT_EQ(again->prefixes_skipped, 2);
  EXPECT_EQ(Read(results_path), csv);
  EXPECT_EQ(fs::last_write_time(absl::StrCat(out, "/", task, "/runs/", (*prefixes)[0],
                                             "/lr_0.001_bsz_4/losses.csv")),
            first_run_time);

  // An interrupted task: the second prefix lost its _best row, its grid point is recorded.
  ASSERT_TRUE(WriteFileAtomically(results_path, FinetuneResultsCsv({(*rows)[0], (*rows)[1],
                                                                     (*rows)[2]}))
                  .ok());
  absl::StatusOr<FinetuneReport> resumed = FinetuneTasks(options);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->runs_trained, 0);
  EXPECT_EQ(resumed->runs_reused, 1);
  EXPECT_EQ(resumed->prefixes_skipped, 1);
  EXPECT_EQ(Read(results_path), csv);

  // Without the second prefix's rows, exactly that prefix is trained again.
  ASSERT_TRUE(
      WriteFileAtomically(results_path, FinetuneResultsCsv({(*rows)[0], (*rows)[1]})).ok());
  absl::StatusOr<FinetuneReport> retrained = FinetuneTasks(options);
  ASSERT_TRUE(retrained.ok()) << retrained.status();
  EXPECT_EQ(retrained->runs_trained, 1);
  ASSERT_EQ(retrained->results[0].size(), 4u);
  EXPECT_EQ(retrained->results[0][3].prefix, (*prefixes)[1] + "_best");
}

TEST(FinetuneTest, ExplicitAveragePluginNeedsNoVectorNorTheRouter) {
  const std::string task = SplitList("test")[1];
  const std::string out = testing::FreshTempDir("finetune_average");
  FinetuneOptions options = Options(out, {task}, {"routing.plugin=average"});
  absl::StatusOr<FinetuneReport> report = FinetuneTasks(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->runs_trained, 2);
  ASSERT_EQ(report->results[0].size(), 4u);
  EXPECT_TRUE(absl::EndsWith(report->results[0][3].prefix, "_best"));
  // The data reaches the trainer in memory, the model straight from its source.
  EXPECT_FALSE(fs::exists(out + "/" + task + "/data"));
  EXPECT_FALSE(fs::exists(out + "/" + task + "/init/model.safetensors"));
}

// total_steps 0: the checkpoint predicts each prefix's dev and test files as it is (zero-shot
// routes from the held-out vectors); the rows' scores are those of its prediction files.
TEST(FinetuneTest, EvaluationOnlyScoresThePredictionsOfTheUntrainedCheckpoint) {
  const std::string task = SplitList("test")[0];
  const std::string out = testing::FreshTempDir("zero_shot");
  FinetuneOptions options = Options(out, {task}, {"training.total_steps=0"});
  options.task_vectors_dir = HeldOutVectors();
  {
    FinetuneOptions with_grid = options;
    EXPECT_EQ(FinetuneTasks(with_grid).status().code(), absl::StatusCode::kInvalidArgument)
        << "a grid means nothing without training";
  }
  options.learning_rates.clear();
  options.batch_sizes.clear();
  absl::StatusOr<FinetuneReport> report = FinetuneTasks(options);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->runs_trained, 2);
  absl::StatusOr<std::vector<std::string>> prefixes = ListPrefixes(GymDir() + "/" + task);
  ASSERT_TRUE(prefixes.ok());
  absl::StatusOr<MetricTable> metrics = MetricTable::Load(GymDir() + "/metrics.json");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  absl::StatusOr<Metric> metric = metrics->MetricOf(task);
  ASSERT_TRUE(metric.ok()) << metric.status();
  const std::vector<FinetuneResult>& rows = report->results[0];
  ASSERT_EQ(rows.size(), 4u);
  for (int p = 0; p < 2; ++p) {
    EXPECT_EQ(rows[2 * p].lr, 0.0);
    EXPECT_EQ(rows[2 * p].bsz, 0);
    EXPECT_EQ(rows[2 * p + 1].prefix, (*prefixes)[p] + "_best");
    const std::string run_dir =
        absl::StrCat(out, "/", task, "/runs/", (*prefixes)[p], "/lr_0.0_bsz_0");
    EXPECT_FALSE(fs::exists(run_dir + "/last")) << "nothing is trained or saved";
    EXPECT_FALSE(fs::exists(run_dir + "/best"));
    absl::StatusOr<std::vector<std::string>> predictions =
        ReadPredictionsFile(run_dir + "/predict/test/" + task + ".txt", /*strip=*/true);
    ASSERT_TRUE(predictions.ok()) << predictions.status();
    absl::StatusOr<std::vector<Example>> test =
        ReadTsv(absl::StrCat(GymDir(), "/", task, "/", (*prefixes)[p], "_test.tsv"));
    ASSERT_TRUE(test.ok()) << test.status();
    std::vector<std::vector<std::string>> references;
    for (const Example& example : *test) references.push_back(example.outputs);
    absl::StatusOr<double> score = Evaluate(*predictions, references, *metric);
    ASSERT_TRUE(score.ok()) << score.status();
    EXPECT_DOUBLE_EQ(rows[2 * p].test_performance, *score);
  }
  // Scores of the unchanged checkpoint do not depend on the (unused) learning rate.
  const std::string again_out = testing::FreshTempDir("zero_shot_again");
  FinetuneOptions again = options;
  again.output_dir = again_out;
  again.base.mutable_optimizer()->set_lr(0.5);
  absl::StatusOr<FinetuneReport> repeated = FinetuneTasks(again);
  ASSERT_TRUE(repeated.ok()) << repeated.status();
  EXPECT_EQ(repeated->results[0][1].test_performance, rows[1].test_performance);
}

TEST(FinetuneTest, BadInputIsAClearErrorBeforeAnyTraining) {
  const std::string task = SplitList("test")[0];
  {
    const std::string out = testing::FreshTempDir("unknown_task");
    absl::StatusOr<FinetuneReport> report = FinetuneTasks(Options(out, {task, "no-such-task"}));
    ASSERT_FALSE(report.ok());
    EXPECT_EQ(report.status().code(), absl::StatusCode::kNotFound);
    EXPECT_TRUE(absl::StrContains(report.status().message(), "unknown task 'no-such-task'"))
        << report.status();
    EXPECT_FALSE(fs::exists(out + "/" + task + "/result.csv"));
  }
  {
    // A copy of the gym task without one dev file.
    const std::string data = testing::FreshTempDir("broken_data");
    fs::create_directories(data);
    fs::copy(GymDir() + "/" + task, data + "/" + task);
    fs::copy(GymDir() + "/tokenizer", data + "/tokenizer");
    absl::StatusOr<std::vector<std::string>> prefixes = ListPrefixes(data + "/" + task);
    ASSERT_TRUE(prefixes.ok());
    const std::string missing = data + "/" + task + "/" + (*prefixes)[1] + "_dev.tsv";
    fs::remove(missing);
    const std::string out = testing::FreshTempDir("missing_file");
    absl::StatusOr<FinetuneReport> report =
        FinetuneTasks(Options(out, {task}, {"data.data_dir=" + data}));
    ASSERT_FALSE(report.ok());
    EXPECT_TRUE(absl::StrContains(report.status().message(), "missing file " + missing))
        << report.status();
    EXPECT_FALSE(fs::exists(out + "/" + task + "/result.csv"));
  }
  {
    // A new task, the checkpoint's learned router, and no vector for the task.
    const std::string out = testing::FreshTempDir("no_vector");
    absl::StatusOr<FinetuneReport> report = FinetuneTasks(Options(out, {task}));
    ASSERT_FALSE(report.ok());
    EXPECT_TRUE(absl::StrContains(report.status().message(), "routes from task vectors"))
        << report.status();
    EXPECT_FALSE(fs::exists(out + "/" + task + "/result.csv"));
  }
  {
    FinetuneOptions options = Options(testing::FreshTempDir("empty_grid"), {task});
    options.batch_sizes.clear();
    EXPECT_EQ(FinetuneTasks(options).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace taskmoe
