#include "moe/train/run_outputs.h"

#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "moe/base/file_io.h"
#include "moe/formats/npy.h"
#include "moe/formats/task_table.h"
#include "moe/train/evaluation.h"

namespace taskmoe {
namespace {

std::string EmptyDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(RouteTableTest, NamedRoutesReadBackWithTheirTasks) {
  const std::string dir = EmptyDir("named_routes");
  const at::Tensor routes = at::arange(12, at::kDouble).reshape({2, 3, 2}) / 12;
  ASSERT_TRUE(WriteNpy(dir + "/route.npy", routes).ok());
  ASSERT_TRUE(WriteFileAtomically(dir + "/route_tasks.json", R"({"0": "b", "1": "a"})").ok());
  absl::StatusOr<NamedRoutes> named =
      ReadNamedRoutes(dir + "/route.npy", dir + "/route_tasks.json");
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(named->tasks, (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(named->layers, 3);
  EXPECT_EQ(named->experts, 2);
  ASSERT_EQ(named->values.size(), 12u);
  EXPECT_FLOAT_EQ(named->values[11], 11.0f / 12);
  EXPECT_EQ(named->source, dir + "/route.npy");
  ASSERT_TRUE(WriteNpy(dir + "/flat.npy", at::zeros({4})).ok());
  const absl::Status flat = ReadRouteTable(dir + "/flat.npy").status();
  EXPECT_NE(flat.message().find(dir + "/flat.npy: routes tensor should be floating point [tasks, "
                                "layers, experts]"),
            std::string::npos)
      << flat;
}

TEST(ScoresCsvTest, ReadsBackWhatWasWritten) {
  const std::string dir = EmptyDir("scores_csv");
  std::vector<TaskScore> scores(2);
  scores[0].task = "t1";
  scores[0].metric = "ACC";
  scores[0].performance = 0.25;
  scores[1].task = "t2";
  scores[1].metric = "Pearson-Correlation";
  scores[1].performance = std::nan("");
  ASSERT_TRUE(WriteScoresCsv(scores, dir + "/dev_results.csv").ok());
  absl::StatusOr<std::vector<TaskScore>> read = ReadScoresCsv(dir + "/dev_results.csv");
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].task, "t1");
  EXPECT_EQ((*read)[0].metric, "ACC");
  EXPECT_DOUBLE_EQ((*read)[0].performance, 0.25);
  EXPECT_EQ((*read)[1].metric, "Pearson-Correlation");
  EXPECT_TRUE(std::isnan((*read)[1].performance));

  ASSERT_TRUE(WriteFileAtomically(dir + "/bad.csv",
                                  "task_prefix,metric,performance\nt1,ACC,high\n").ok());
  EXPECT_EQ(ReadScoresCsv(dir + "/bad.csv").status().message(),
            dir + "/bad.csv line 2: expected task_prefix,metric,performance, got \"t1,ACC,high\"");
  ASSERT_TRUE(WriteFileAtomically(dir + "/other.csv", "steps,loss\n").ok());
  EXPECT_EQ(ReadScoresCsv(dir + "/other.csv").status().message(),
            dir + "/other.csv: expected the header line \"task_prefix,metric,performance\"");
}

TEST(RouteTableTest, FromTensorKeepsShapeAndRowMajorOrder) {
  const at::Tensor routes = at::arange(24, at::kDouble).reshape({2, 3, 4}) / 24;
  absl::StatusOr<RouteTable> table = RouteTableFromTensor(routes.transpose(0, 1).transpose(0, 1));
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->tasks, 2);
  EXPECT_EQ(table->layers, 3);
  EXPECT_EQ(table->experts, 4);
  ASSERT_EQ(table->values.size(), 24u);
  // Element [1, 2, 3] is the last one.
  EXPECT_FLOAT_EQ(table->values[(1 * 3 + 2) * 4 + 3], 23.0f / 24);
  EXPECT_FLOAT_EQ(table->values[4], 4.0f / 24);  // [0, 1, 0]

  EXPECT_FALSE(RouteTableFromTensor(at::zeros({2, 3})).ok());
  EXPECT_FALSE(RouteTableFromTensor(at::zeros({2, 3, 4}, at::kLong)).ok());
  EXPECT_FALSE(RouteTableFromTensor(at::Tensor()).ok());
}

TEST(RouteCategoriesTest, OneGroupPerCategoryWithItsSubCategoriesInFileOrder) {
  Ontology ontology;
  ontology.categories = {
      {"qa", {{"multiple-choice qa", {"race-high", "swag"}}, {"closed-book qa", {"jeopardy"}}}},
      {"classification", {{"nli", {"anli"}}}}};
  const std::vector<RouteCategory> categories = RouteCategoriesOf(ontology);
  ASSERT_EQ(categories.size(), 2u);
  EXPECT_EQ(categories[0].name, "qa");
  EXPECT_TRUE(categories[0].tasks.empty());
  ASSERT_EQ(categories[0].subcategories.size(), 2u);
  EXPECT_EQ(categories[0].subcategories[0].name, "multiple-choice qa");
  EXPECT_EQ(categories[0].subcategories[0].tasks,
            (std::vector<std::string>{"race-high", "swag"}));
  EXPECT_EQ(categories[0].subcategories[1].name, "closed-book qa");
  EXPECT_EQ(categories[0].subcategories[1].tasks, (std::vector<std::string>{"jeopardy"}));
  EXPECT_EQ(categories[1].name, "classification");
  ASSERT_EQ(categories[1].subcategories.size(), 1u);
  EXPECT_EQ(categories[1].subcategories[0].name, "nli");
  EXPECT_EQ(categories[1].subcategories[0].tasks, (std::vector<std::string>{"anli"}));
}

TEST(RunOutputsTest, RouteFilesHoldTheThreeViewsTheirTasksAndMaps) {
  const std::string dir = EmptyDir("route_files");
  RouteViews views;
  views.soft = at::softmax(at::randn({2, 3, 2}), -1);
  views.soft_t1 = at::softmax(at::randn({2, 3, 2}), -1);
  views.argmax = at::one_hot(views.soft.argmax(-1), 2).to(at::kFloat);
  ModelShape shape;
  shape.encoder_layers = 2;
  shape.decoder_layers = 1;
  shape.experts = 2;
  ASSERT_TRUE(WriteRouteFiles(views, {"t0", "t1"}, std::nullopt, shape, 7, dir).ok());
  for (const auto& [file, routes] : std::vector<std::pair<std::string, at::Tensor>>{
           {kRoutesFile, views.soft}, {kRoutesT1File, views.soft_t1},
           {kRoutesArgmaxFile, views.argmax}}) {
    absl::StatusOr<at::Tensor> saved = ReadNpy(dir + "/" + file);
    ASSERT_TRUE(saved.ok()) << saved.status();
    EXPECT_TRUE(at::equal(*saved, routes)) << file;
  }
  absl::StatusOr<std::vector<std::string>> tasks = TaskTable::ReadNames(dir + "/" + kRouteTasksFile);
  ASSERT_TRUE(tasks.ok()) << tasks.status();
  EXPECT_EQ(*tasks, (std::vector<std::string>{"t0", "t1"}));
  for (const char* image : {kRoutesImageFile, kRoutesT1ImageFile, kRoutesArgmaxImageFile}) {
    absl::StatusOr<std::string> png = ReadFileBytes(dir + "/" + image);
    ASSERT_TRUE(png.ok()) << png.status();
    EXPECT_EQ(png->substr(1, 3), "PNG") << image;
  }
  // A route table that does not fit the model's layers is an error, not a wrong picture.
  ModelShape other = shape;
  other.decoder_layers = 2;
  EXPECT_FALSE(WriteRouteFiles(views, {"t0", "t1"}, std::nullopt, other, 7, dir).ok());
}

TEST(RunOutputsTest, PredictionsAndLosses) {
  const std::string dir = EmptyDir("predictions");
  TaskScore score;
  score.task = "t0";
  score.metric = "EM";
  score.performance = 0.5;
  score.predictions = {"yes", "no"};
  ASSERT_TRUE(WritePredictions({score}, "test", dir).ok());
  absl::StatusOr<std::string> lines = ReadFileBytes(dir + "/test/t0.txt");
  ASSERT_TRUE(lines.ok()) << lines.status();
  EXPECT_EQ(*lines, "yes\nno\n");
  EXPECT_TRUE(ReadFileBytes(dir + "/eval-test-performance.csv").ok());

  EvalRecord record;
  record.step = 100;
  record.train_loss = 2.5;
  record.dev_loss = 3;
  record.dev_performance = 0.25;
  EXPECT_EQ(LossesCsv({record}), "steps,train_loss,dev_loss,dev_performance\n100,2.5,3,0.25\n");
}

}  // namespace
}  // namespace taskmoe
