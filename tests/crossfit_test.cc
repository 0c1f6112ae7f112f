#include "data/crossfit.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "data/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/shared_data.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A fresh directory under TEST_TMPDIR for one test.
std::string TempDir(const std::string& name) {
  const char* root = std::getenv("TEST_TMPDIR");
  const fs::path dir = fs::path(root != nullptr ? root : "/tmp") / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

void WriteFile(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

std::string ErrorOf(const absl::Status& status) { return std::string(status.message()); }

TEST(ParseTsvTest, ReadsLinesAsStripThenSplitOnTabs) {
  const absl::StatusOr<std::vector<Example>> examples = ParseTsv(
      "  in put \t a\t\tb \t\r\n"  // CRLF; leading spaces and trailing tab stripped
      "q2\tx\ty\n"                 // several outputs
      "q3\tonly\r"                 // a lone CR ends a line too (universal newlines)
      "q4\tlast",                  // no final newline
      "mem.tsv");
  ASSERT_TRUE(examples.ok()) << examples.status();
  ASSERT_EQ(examples->size(), 4u);
  EXPECT_EQ((*examples)[0].input, "in put ");
  EXPECT_THAT((*examples)[0].outputs, ElementsAre(" a", "", "b"));
  EXPECT_EQ((*examples)[1].input, "q2");
  EXPECT_THAT((*examples)[1].outputs, ElementsAre("x", "y"));
  EXPECT_THAT((*examples)[2].outputs, ElementsAre("only"));
  EXPECT_THAT((*examples)[3].outputs, ElementsAre("last"));
}

TEST(ParseTsvTest, BadLinesAreErrorsNamingFileAndLine) {
  struct BadCase {
    std::string content;
    std::string expected;
  };
  const BadCase cases[] = {
      {"a\tb\nno tab here\n", "bad.tsv:2: no tab-separated output"},
      {"a\tb\r\nonly input\t  \r\n", "bad.tsv:2: no tab-separated output"},
      {"a\tb\n\tb\tc\n", "bad.tsv:2: empty input"},
      {"a\tb\n   \tb\n", "bad.tsv:2: empty input"},
      {"a\tb\nc\td\n\xff\xfe\tx\n", "bad.tsv:3: invalid UTF-8"},
      {"a\tb\n\nc\td\n", "bad.tsv:2: empty line"},
      {"", "bad.tsv: no examples"},
  };
  for (const BadCase& c : cases) {
    const absl::StatusOr<std::vector<Example>> examples = ParseTsv(c.content, "bad.tsv");
    ASSERT_FALSE(examples.ok()) << c.content;
    EXPECT_THAT(ErrorOf(examples.status()), HasSubstr(c.expected));
  }
}

class TaskDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = TempDir("crossfit_" + std::string(::testing::UnitTest::GetInstance()
                                                      ->current_test_info()
                                                      ->name()));
    // Three prefixes written out of order; the original discovers seed 100 first.
    for (const char* seed : {"21", "100", "13"}) {
      const std::string prefix = data_dir_ + "/alpha/alpha_16_" + seed;
      WriteFile(prefix + "_train.tsv",
                std::string("in ") + seed + "\tout\r\nsecond\tyes\tno\r\n");
      WriteFile(prefix + "_dev.tsv", "d\te\r\n");
    }
    WriteFile(data_dir_ + "/alpha/README.txt", "not a tsv");
    WriteFile(data_dir_ + "/beta/beta_32_100_train.tsv", "x\ty\n");
    WriteFile(data_dir_ + "/beta/beta_32_100_test.tsv", "x\ty\n");
    WriteFile(data_dir_ + "/beta/beta_32_13_train.tsv", "x\ty\n");
    fs::create_directories(data_dir_ + "/empty");
  }

  std::string data_dir_;
};

TEST_F(TaskDirTest, ReadsEveryPrefixInDiscoveryOrder) {
  EXPECT_THAT(*ListPrefixes(data_dir_ + "/alpha"),
              ElementsAre("alpha_16_100", "alpha_16_13", "alpha_16_21"));
  const absl::StatusOr<std::vector<TaskFile>> files = ReadTaskFiles(data_dir_, "alpha", "train");
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 3u);
  EXPECT_EQ((*files)[0].prefix, "alpha_16_100");
  EXPECT_EQ((*files)[0].task, "alpha");
  EXPECT_EQ((*files)[0].examples[0].input, "in 100");
  EXPECT_EQ((*files)[2].examples[0].input, "in 21");
  EXPECT_THAT((*files)[1].examples[1].outputs, ElementsAre("yes", "no"));
  EXPECT_EQ(fs::path((*files)[1].path).filename(), "alpha_16_13_train.tsv");
}

TEST_F(TaskDirTest, AStrayPrefixFileIsAnErrorNotTrainingData) {
  // A train file of a prefix that has no dev file (a copy, a leftover) beside complete prefixes.
  WriteFile(data_dir_ + "/alpha/alpha_16_99_train.tsv", "stray\tdata\n");
  const absl::StatusOr<std::vector<TaskFile>> files = ReadTaskFiles(data_dir_, "alpha", "train");
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(ErrorOf(files.status()),
            "task directory " + data_dir_ + "/alpha has no alpha_16_99_dev.tsv, while prefix "
            "alpha_16_100 has alpha_16_100_dev.tsv: every prefix needs the same train, dev and "
            "test files (a stray file?)");
}

TEST_F(TaskDirTest, MissingFilesAndDirectoriesAreErrors) {
  const absl::StatusOr<std::vector<TaskFile>> no_dev = ReadTaskFiles(data_dir_, "beta", "dev");
  ASSERT_FALSE(no_dev.ok());
  EXPECT_THAT(ErrorOf(no_dev.status()), HasSubstr("no beta_32_100_dev.tsv"));

  const absl::StatusOr<std::vector<TaskFile>> no_test = ReadTaskFiles(data_dir_, "beta", "test");
  ASSERT_FALSE(no_test.ok());
  EXPECT_THAT(ErrorOf(no_test.status()), HasSubstr("no beta_32_13_test.tsv"));

  const absl::StatusOr<std::vector<TaskFile>> no_dir = ReadTaskFiles(data_dir_, "gamma", "train");
  ASSERT_FALSE(no_dir.ok());
  EXPECT_THAT(ErrorOf(no_dir.status()),
              HasSubstr("task \"gamma\": its directory " + data_dir_ + "/gamma does not exist"));
  WriteFile(data_dir_ + "/delta", "a file, not a task directory");
  const absl::StatusOr<std::vector<TaskFile>> file = ReadTaskFiles(data_dir_, "delta", "train");
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(ErrorOf(file.status()), HasSubstr("task \"delta\": its directory " + data_dir_ +
                                                "/delta is a file, expected a directory"));

  const absl::StatusOr<std::vector<TaskFile>> no_tsv = ReadTaskFiles(data_dir_, "empty", "train");
  ASSERT_FALSE(no_tsv.ok());
  EXPECT_THAT(ErrorOf(no_tsv.status()), HasSubstr("has no *.tsv files"));

  EXPECT_FALSE(ReadTaskFiles(data_dir_, "alpha", "validation").ok());

  WriteFile(data_dir_ + "/alpha/alpha_16_13_dev.tsv", "ok\tfine\nbroken line\n");
  const absl::StatusOr<std::vector<TaskFile>> bad_line = ReadTaskFiles(data_dir_, "alpha", "dev");
  ASSERT_FALSE(bad_line.ok());
  EXPECT_THAT(ErrorOf(bad_line.status()), HasSubstr("alpha_16_13_dev.tsv:2: no tab"));
}

TEST_F(TaskDirTest, OnePrefixFileAlone) {
  const absl::StatusOr<TaskFile> file =
      ReadPrefixTaskFile(data_dir_, "alpha", "alpha_16_21", "train");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->task, "alpha");
  EXPECT_EQ(file->prefix, "alpha_16_21");
  EXPECT_EQ(file->examples[0].input, "in 21");
  EXPECT_EQ(fs::path(file->path).filename(), "alpha_16_21_train.tsv");
  const absl::StatusOr<TaskFile> missing =
      ReadPrefixTaskFile(data_dir_, "beta", "beta_32_100", "dev");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(ErrorOf(missing.status()), HasSubstr("beta_32_100_dev.tsv"));
  EXPECT_FALSE(ReadPrefixTaskFile(data_dir_, "gamma", "gamma_16_1", "train").ok());
  EXPECT_FALSE(ReadPrefixTaskFile(data_dir_, "alpha", "alpha_16_21", "validation").ok());
}

TEST_F(TaskDirTest, SingleFileForEvaluation) {
  const absl::StatusOr<TaskFile> test = ReadSingleTaskFile(data_dir_, "beta", "test");
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->prefix, "beta_32_100");
  const absl::StatusOr<TaskFile> several = ReadSingleTaskFile(data_dir_, "alpha", "dev");
  ASSERT_FALSE(several.ok());
  EXPECT_THAT(ErrorOf(several.status()), HasSubstr("exactly one *_dev.tsv file, found 3"));
  EXPECT_FALSE(ReadSingleTaskFile(data_dir_, "beta", "dev").ok());
}

TEST_F(TaskDirTest, SplitTasksMustHaveDirectories) {
  const std::string split_path = data_dir_ + "/split.json";
  WriteFile(split_path,
            R"({"test": [], "dev": ["beta"], "train": ["alpha", "gamma"]})");
  const absl::StatusOr<TaskSplit> split = ReadTaskSplit(split_path);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_THAT(split->all, ElementsAre("alpha", "gamma", "beta"));
  EXPECT_THAT(*SplitTasks(*split, "dev", data_dir_), ElementsAre("beta"));
  const absl::StatusOr<std::vector<std::string>> train = SplitTasks(*split, "train", data_dir_);
  ASSERT_FALSE(train.ok());
  EXPECT_THAT(ErrorOf(train.status()), HasSubstr("split.json lists task \"gamma\" under \"train\""));

  WriteFile(split_path, R"({"train": ["alpha", 3], "dev": [], "test": []})");
  EXPECT_THAT(ErrorOf(ReadTaskSplit(split_path).status()), HasSubstr("\"train\"[1]"));
  WriteFile(split_path, R"({"train": []})");
  EXPECT_THAT(ErrorOf(ReadTaskSplit(split_path).status()), HasSubstr("missing the \"dev\" list"));
  WriteFile(split_path, "{not json");
  EXPECT_THAT(ErrorOf(ReadTaskSplit(split_path).status()), HasSubstr("not valid JSON"));
}

TEST_F(TaskDirTest, ReadsAllFilesOfASplitListInSortedTaskOrder) {
  WriteFile(data_dir_ + "/beta/beta_32_13_test.tsv", "x\ty\n");  // beta's prefixes alike
  const std::string split_path = data_dir_ + "/split.json";
  WriteFile(split_path, R"({"train": ["beta", "alpha"], "dev": ["alpha"], "test": []})");
  const absl::StatusOr<TaskSplit> split = ReadTaskSplit(split_path);
  ASSERT_TRUE(split.ok()) << split.status();
  const absl::StatusOr<std::vector<TaskFile>> files =
      ReadSplitTaskFiles(*split, "train", data_dir_, "train");
  ASSERT_TRUE(files.ok()) << files.status();
  std::vector<std::string> prefixes;
  for (const TaskFile& file : *files) prefixes.push_back(file.prefix);
  EXPECT_THAT(prefixes, ElementsAre("alpha_16_100", "alpha_16_13", "alpha_16_21", "beta_32_100",
                                    "beta_32_13"));
  // beta has no dev files.
  EXPECT_TRUE(ReadSplitTaskFiles(*split, "dev", data_dir_, "dev").ok());
  EXPECT_FALSE(ReadSplitTaskFiles(*split, "train", data_dir_, "dev").ok());
}

TEST(TaskNameTest, TaskOfAFileNameAsTheOriginal) {
  EXPECT_EQ(TaskNameOfFile("/d/glue-cola/glue-cola_16_100_test.tsv"), "glue-cola");
  EXPECT_EQ(TaskNameOfFile("squad-with_context_32_13_dev.tsv"), "squad-with_context");
  EXPECT_EQ(TaskNameOfFile("16_100_test.tsv"), "");
}

TEST(SplitFilesTest, ReadsCrossFitsSplitFilesWithTheirQuirks) {
  const absl::StatusOr<TaskSplit> random =
      ReadTaskSplit(testing::SharedPath("crossfit/splits/random.json"));
  ASSERT_TRUE(random.ok()) << random.status();
  EXPECT_EQ(random->train.size(), 120u);
  EXPECT_EQ(random->dev.size(), 20u);
  EXPECT_EQ(random->test.size(), 20u);
  EXPECT_EQ(random->all.size(), 160u);

  const absl::StatusOr<TaskSplit> nli =
      ReadTaskSplit(testing::SharedPath("crossfit/splits/train_non_nli_test_nli.json"));
  ASSERT_TRUE(nli.ok()) << nli.status();
  EXPECT_EQ(nli->train.size(), 57u);
  EXPECT_EQ(nli->dev.size(), 8u);
  EXPECT_TRUE(nli->test.empty());
  EXPECT_EQ(nli->all.size(), 57u + 8u - 1u);  // "sick" is in train and dev

  // Every task of every split has a metric.
  const MetricTable& table = MetricTable::CrossFit();
  for (const auto& entry : fs::directory_iterator(testing::SharedPath("crossfit/splits"))) {
    const absl::StatusOr<TaskSplit> split = ReadTaskSplit(entry.path().string());
    ASSERT_TRUE(split.ok()) << split.status();
    for (const std::string& task : split->all) EXPECT_TRUE(table.MetricOf(task).ok()) << task;
  }
}

TEST(OntologyTest, ReadsCrossTaskMoEsOntology) {
  const absl::StatusOr<Ontology> ontology =
      ReadOntology(testing::SharedPath("crossfit/ontology.json"));
  ASSERT_TRUE(ontology.ok()) << ontology.status();
  std::vector<std::string> category_names;
  size_t sub_categories = 0;
  for (const Ontology::Category& category : ontology->categories) {
    category_names.push_back(category.name);
    sub_categories += category.sub_categories.size();
  }
  EXPECT_THAT(category_names,
              ::testing::UnorderedElementsAre("classification", "conditional generation", "other",
                                              "qa"));
  EXPECT_EQ(sub_categories, 22u);
  const std::vector<std::string> tasks = ontology->TasksInOrder();
  EXPECT_EQ(tasks.size(), 160u);
  std::set<std::string> task_set(tasks.begin(), tasks.end());
  std::set<std::string> table_tasks;
  for (const auto& entry : MetricTable::CrossFit().entries()) table_tasks.insert(entry.first);
  EXPECT_EQ(task_set, table_tasks);
  EXPECT_EQ(ontology->CategoryOf("glue-cola"), "classification");
  EXPECT_EQ(ontology->CategoryOf("no-such-task"), "");

  const std::string bad = TempDir("ontology_bad") + "/ontology.json";
  WriteFile(bad, R"({"qa": {"mrc": ["squad", 7]}})");
  EXPECT_THAT(ErrorOf(ReadOntology(bad).status()), HasSubstr("\"qa\" -> \"mrc\"[1]"));
}

TEST(FormatTest, FormatsAsTheOriginal) {
  FormatOptions options;
  EXPECT_EQ(FormatInput("glue-cola", "The book was read by John.", options),
            " [glue-cola] The book was read by John.");
  EXPECT_EQ(FormatOutput("acceptable", options), " acceptable");
  options.lowercase = true;
  options.append_another_bos = true;
  EXPECT_EQ(FormatInput("Task", "\xc3\x89T\xc3\x89", options), "<s>  [task] \xc3\xa9t\xc3\xa9");
  EXPECT_EQ(FormatOutput("YES", options), "<s>  yes");
  FormatOptions single_task;
  single_task.output_leading_space = false;
  EXPECT_EQ(FormatOutput("YES", single_task), "YES");
}

}  // namespace
}  // namespace taskmoe
