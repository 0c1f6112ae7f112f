#include "moe/train/run_outputs.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "moe/base/file_io.h"
#include "moe/formats/npy.h"
#include "moe/formats/task_table.h"

namespace taskmoe {
namespace {

std::string EmptyDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
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
