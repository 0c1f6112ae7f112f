#include "moe/formats/task_table.h"

#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <sys/stat.h>

#include <ATen/ATen.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moe/formats/npy.h"

namespace taskmoe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string FreshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  mkdir(dir.c_str(), 0755);
  return dir;
}

void WriteText(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(TaskTableTest, SaveWritesTheOriginalFormatAndLoadRestoresIt) {
  const at::Tensor vectors = at::randn({3, 5});
  absl::StatusOr<TaskTable> table = TaskTable::Create({"glue-sst2", "ade_corpus_v2-classification", "wiki_qa"}, vectors);
  ASSERT_TRUE(table.ok()) << table.status();
  const std::string dir = FreshDir("round_trip");
  ASSERT_TRUE(table->Save(dir).ok());

  EXPECT_EQ(ReadText(dir + "/id2task.json"),
            R"({"0":"glue-sst2","1":"ade_corpus_v2-classification","2":"wiki_qa"})");
  EXPECT_TRUE(at::equal(*ReadNpy(dir + "/task_vecs.npy"), vectors));

  absl::StatusOr<TaskTable> loaded = TaskTable::Load(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_THAT(loaded->names(), ElementsAre("glue-sst2", "ade_corpus_v2-classification", "wiki_qa"));
  EXPECT_EQ(loaded->size(), 3);
  EXPECT_EQ(loaded->dim(), 5);
  EXPECT_EQ(*loaded->Id("wiki_qa"), 2);
  EXPECT_EQ(loaded->name(1), "ade_corpus_v2-classification");
  EXPECT_TRUE(at::equal(loaded->vectors(), vectors));
}

TEST(TaskTableTest, LoadsIdsInAnyOrderAndFloat64Vectors) {
  const std::string dir = FreshDir("unordered");
  WriteText(dir + "/id2task.json", R"({"1": "b", "0": "a"})");
  const at::Tensor vectors = at::randn({2, 3}, at::kDouble);
  ASSERT_TRUE(WriteNpy(dir + "/task_vecs.npy", vectors).ok());
  absl::StatusOr<TaskTable> table = TaskTable::Load(dir);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_THAT(table->names(), ElementsAre("a", "b"));
  EXPECT_EQ(table->vectors().scalar_type(), at::kFloat);
  EXPECT_TRUE(at::allclose(table->vectors(), vectors.to(at::kFloat)));
}

TEST(TaskTableTest, SaveWritesCurrentValuesOfSharedStorage) {
  absl::StatusOr<TaskTable> table = TaskTable::Create({"a"}, at::zeros({1, 2}));
  ASSERT_TRUE(table.ok());
  table->vectors().add_(1.0);  // what an optimizer step on the shared tensor does
  const std::string dir = FreshDir("shared_storage");
  ASSERT_TRUE(table->Save(dir).ok());
  EXPECT_TRUE(at::equal(*ReadNpy(dir + "/task_vecs.npy"), at::ones({1, 2})));
}

TEST(TaskTableTest, UnknownTaskIsNotFound) {
  absl::StatusOr<TaskTable> table = TaskTable::Create({"a"}, at::zeros({1, 2}));
  const absl::Status status = table->Id("b").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("'b'"));
}

TEST(TaskTableTest, CreateRejectsInconsistentInput) {
  EXPECT_THAT(TaskTable::Create({"a", "a"}, at::zeros({2, 2})).status().message(), HasSubstr("'a' appears twice"));
  EXPECT_THAT(TaskTable::Create({"a"}, at::zeros({2, 2})).status().message(), HasSubstr("2 rows for 1 task names"));
  EXPECT_THAT(TaskTable::Create({"a"}, at::zeros({2})).status().message(), HasSubstr("[tasks, dim]"));
  EXPECT_THAT(TaskTable::Create({""}, at::zeros({1, 2})).status().message(), HasSubstr("empty"));
}

TEST(TaskTableTest, LoadNamesTheBrokenFile) {
  const std::string dir = FreshDir("broken");
  ASSERT_TRUE(WriteNpy(dir + "/task_vecs.npy", at::zeros({2, 3})).ok());

  WriteText(dir + "/id2task.json", R"({"0": "a", "2": "b"})");
  absl::Status status = TaskTable::Load(dir).status();
  EXPECT_THAT(status.message(), HasSubstr("id2task.json"));
  EXPECT_THAT(status.message(), HasSubstr("\"2\" is not a task id in [0, 2)"));

  WriteText(dir + "/id2task.json", R"(["a", "b"])");
  EXPECT_THAT(TaskTable::Load(dir).status().message(), HasSubstr("expected a JSON object"));

  WriteText(dir + "/id2task.json", R"({"0": "a", "1": 7})");
  EXPECT_THAT(TaskTable::Load(dir).status().message(), HasSubstr("task 1 is not a string"));

  WriteText(dir + "/id2task.json", R"({"0": "a", "1": "b", "2": "c"})");
  status = TaskTable::Load(dir).status();
  EXPECT_THAT(status.message(), HasSubstr("task_vecs.npy"));
  EXPECT_THAT(status.message(), HasSubstr("expected a float [3, dim] array"));

  EXPECT_EQ(TaskTable::Load(dir + "/missing").status().code(), absl::StatusCode::kNotFound);
}

TEST(TaskTableTest, NonFiniteVectorsAreErrorsNamingTheTask) {
  at::Tensor vectors = at::zeros({2, 3});
  vectors[1][2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(TaskTable::Create({"a", "b"}, vectors).status().message(),
            "the vector of task 'b' (row 1) holds NaN or infinite values");
  const std::string dir = FreshDir("infinite");
  vectors[1][2] = 0;
  vectors[0][0] = std::numeric_limits<float>::infinity();
  ASSERT_TRUE(WriteNpy(dir + "/task_vecs.npy", vectors).ok());
  WriteText(dir + "/id2task.json", R"({"0": "a", "1": "b"})");
  EXPECT_EQ(TaskTable::Load(dir).status().message(),
            dir + "/task_vecs.npy with " + dir + "/id2task.json: the vector of task 'a' (row 0) "
                  "holds NaN or infinite values");
}

TEST(TaskTableTest, ReadNamesGivesIdOrderAndNamesTheFile) {
  const std::string dir = FreshDir("names");
  WriteText(dir + "/id2task.json", R"({"1": "squad", "0": "glue-sst2", "2": "race-high"})");
  absl::StatusOr<std::vector<std::string>> names = TaskTable::ReadNames(dir + "/id2task.json");
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_EQ(*names, (std::vector<std::string>{"glue-sst2", "squad", "race-high"}));
  for (const char* bad : {R"({"0": "a", "00": "b"})", R"({"x": "a"})", "[", R"({"0": ["a"]})"}) {
    WriteText(dir + "/id2task.json", bad);
    EXPECT_THAT(TaskTable::ReadNames(dir + "/id2task.json").status().message(),
                HasSubstr("id2task.json"))
        << bad;
  }
  EXPECT_EQ(TaskTable::ReadNames(dir + "/missing.json").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace taskmoe
