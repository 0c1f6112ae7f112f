// The trainer's TensorBoard scalars and images from known step results, learning rates and
// routes, read back with the independent decoder of tests/event_files.h.
#include "moe/train/tensorboard_log.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "moe/base/file_io.h"
#include "moe/train/checkpoint.h"
#include "tests/event_files.h"
#include "tests/tiny_gym.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

// tag -> value of every scalar in `event`.
std::map<std::string, float> Scalars(const tensorboard::Event& event) {
  std::map<std::string, float> scalars;
  for (const tensorboard::Summary::Value& value : event.summary().value()) {
    if (value.value_case() == tensorboard::Summary::Value::kSimpleValue) {
      scalars[value.tag()] = value.simple_value();
    }
  }
  return scalars;
}

StepResult Result(double loss_sum, int64_t tokens, double seconds, double grad_norm) {
  StepResult result;
  result.loss_sum = loss_sum;
  result.tokens = tokens;
  result.phases.forward = seconds / 2;
  result.phases.backward = seconds / 2;
  result.grad_norm = grad_norm;
  return result;
}

TEST(TensorBoardLogTest, TrainingScalarsEveryLogEverySteps) {
  TrainableParameters parameters;
  parameters.model = {{"fc.weight", at::ones({2}).set_requires_grad(true)},
                      {"fc.bias", at::ones({2}).set_requires_grad(true)}};
  parameters.router = {{"router.weight", at::ones({2}).set_requires_grad(true)}};
  OptimizerOptions options;
  options.lr = 1e-4;
  options.router_lr = 1e-2;
  GroupedAdamW optimizer = MakeGroupedAdamW(parameters, options);
  optimizer.SetLrFactor(0.5);

  // Routes of 2 tasks over 2 layers (enc0, dec0) and 4 experts. enc0: uniform (entropy ln 4)
  // and one-hot (0); dec0: half on two experts for both (ln 2).
  const at::Tensor soft = at::tensor({0.25f, 0.25f, 0.25f, 0.25f, 0.5f, 0.5f, 0.f, 0.f,  //
                                      0.f, 1.f, 0.f, 0.f, 0.f, 0.5f, 0.f, 0.5f})
                              .reshape({2, 2, 4});
  int view_calls = 0;
  const auto views = [&] {
    ++view_calls;
    RouteViews v;
    v.soft = soft;
    v.tau = 0.75;
    return v;
  };
  const std::string dir = testing::FreshTempDir("tensorboard_log_steps");
  absl::StatusOr<std::unique_ptr<TensorBoardLog>> log =
      TensorBoardLog::Open(dir, /*log_every=*/2, ModelShape{1, 1, 4}, optimizer, views);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(fs::path((*log)->path()).parent_path(), fs::path(dir + "/tensorboard"));
  const std::string path = (*log)->path();
  ASSERT_TRUE((*log)->AfterStep(1, Result(30.0, 10, 0.5, 7.0)).ok());
  EXPECT_EQ(view_calls, 0);  // nothing written at step 1
  ASSERT_TRUE((*log)->AfterStep(2, Result(10.0, 30, 1.5, 3.0)).ok());
  EXPECT_EQ(view_calls, 1);
  ASSERT_TRUE((*log)->AfterStep(3, Result(1.0, 1, 1.0, 1.0)).ok());
  log->reset();  // closes the file

  const testing::EventFile file = testing::ReadEventFile(path);
  EXPECT_FALSE(file.decoded.truncated);
  ASSERT_EQ(file.events.size(), 2u);  // file_version, step 2
  EXPECT_EQ(file.events[0].file_version(), "brain.Event:2");
  EXPECT_EQ(file.events[1].step(), 2);
  const std::map<std::string, float> scalars = Scalars(file.events[1]);
  const std::map<std::string, float> expected = {
      {"train/loss", 40.0f / 40},              // both steps' loss over both steps' tokens
      {"train/tokens_per_second", 40.0f / 2},  // 40 tokens in 2 s of steps
      {"train/grad_norm", 3.0f},               // the writing step's
      {"train/lr/model", 0.5e-4f},
      {"train/lr/model_no_decay", 0.5e-4f},
      {"train/lr/router", 0.5e-2f},
      {"train/tau", 0.75f},
      {"routes/entropy/enc0", static_cast<float>(std::log(4.0) / 2)},
      {"routes/entropy/dec0", static_cast<float>(std::log(2.0))},
  };
  ASSERT_EQ(scalars.size(), expected.size());
  for (const auto& [tag, value] : expected) {
    ASSERT_EQ(scalars.count(tag), 1u) << tag;
    EXPECT_NEAR(scalars.at(tag), value, 1e-6 * std::abs(value)) << tag;
  }
}

TEST(TensorBoardLogTest, EvaluationWritesDevScalarsAndTheRouteHeatmapAndFlushes) {
  GroupedAdamW optimizer = MakeGroupedAdamW(
      TrainableParameters{{{"fc.weight", at::ones({2}).set_requires_grad(true)}}, {}, {}},
      OptimizerOptions());
  const auto no_logits = [] {
    RouteViews v;
    v.soft = at::full({1, 2, 2}, 0.5);
    return v;
  };
  const std::string dir = testing::FreshTempDir("tensorboard_log_evaluation");
  const std::string eval_dir = dir + "/evals/step_6";
  fs::create_directories(eval_dir);
  ASSERT_TRUE(WriteFileAtomically(eval_dir + "/" + kRoutesImageFile, testing::ThreeByTwoPng()).ok());
  absl::StatusOr<std::unique_ptr<TensorBoardLog>> log =
      TensorBoardLog::Open(dir, /*log_every=*/0, ModelShape{1, 1, 2}, optimizer, no_logits);
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_TRUE((*log)->AfterStep(6, Result(8.0, 4, 1.0, 0.5)).ok());  // log_every 0: every step
  EvalRecord record;
  record.step = 6;
  record.dev_loss = 1.25;
  record.dev_performance = 0.5;
  std::vector<TaskScore> scores(2);
  scores[0].task = "task01";
  scores[0].performance = 0.25;
  scores[1].task = "task02";
  scores[1].performance = 0.75;
  ASSERT_TRUE((*log)->AfterEvaluation(record, scores, eval_dir).ok());

  // Read while the writer is still open: the evaluation flushed everything.
  const testing::EventFile file = testing::ReadEventFile((*log)->path());
  EXPECT_FALSE(file.decoded.truncated);
  ASSERT_EQ(file.events.size(), 4u);  // file_version, step scalars, dev scalars, image
  const std::map<std::string, float> train = Scalars(file.events[1]);
  EXPECT_EQ(train.count("train/tau"), 0u);  // a plugin without logits has no temperature
  EXPECT_EQ(train.at("train/loss"), 2.0f);
  EXPECT_EQ(train.at("routes/entropy/enc0"), static_cast<float>(std::log(2.0)));
  EXPECT_EQ(file.events[2].step(), 6);
  const std::map<std::string, float> dev = Scalars(file.events[2]);
  EXPECT_EQ(dev, (std::map<std::string, float>{{"dev/loss", 1.25f},
                                                {"dev/performance", 0.5f},
                                                {"dev/performance/task01", 0.25f},
                                                {"dev/performance/task02", 0.75f}}));
  EXPECT_EQ(file.events[3].step(), 6);
  ASSERT_EQ(file.events[3].summary().value_size(), 1);
  const tensorboard::Summary::Value& image = file.events[3].summary().value(0);
  EXPECT_EQ(image.tag(), "routes/heatmap");
  EXPECT_EQ(image.image().encoded_image_string(), testing::ThreeByTwoPng());
  EXPECT_EQ(image.image().width(), 3);
  EXPECT_EQ(image.image().height(), 2);

  // An evaluation without its heatmap is an error that names the file.
  const absl::Status missing = (*log)->AfterEvaluation(record, scores, dir + "/evals/step_7");
  EXPECT_TRUE(absl::IsNotFound(missing)) << missing;
  EXPECT_NE(missing.message().find(dir + "/evals/step_7/" + kRoutesImageFile), std::string::npos)
      << missing;
}

}  // namespace
}  // namespace taskmoe
