// Tests of the embedded synthetic skill gym (data/gym, tools/make_gym).
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "data/crossfit.h"
#include "data/gym/gym_random.h"
#include "data/gym/gym_writer.h"
#include "data/gym/lexicon.h"
#include "data/gym/skills.h"
#include "data/metrics.h"
#include "data/tokenizer.h"
#include "tests/tiny_gym.h"

namespace taskmoe::gym {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using Json = nlohmann::json;
using taskmoe::testing::FreshTempDir;
using taskmoe::testing::ReadFile;
using taskmoe::testing::ReadTree;

Json ReadJson(const fs::path& path) { return Json::parse(ReadFile(path)); }

// Runs tools/make_gym (a data dependency); returns its exit status.
int RunMakeGym(const fs::path& output_dir, const std::string& extra_flags = "") {
  const std::string command = absl::StrCat("tools/make_gym --output_dir=", output_dir.string(),
                                           " ", extra_flags, " 2>/dev/null");
  return std::system(command.c_str());
}

struct Line {
  std::string input;
  std::string output;
};

// Every line must be `input\toutput` with both fields non-empty.
std::vector<Line> ReadTsv(const fs::path& path) {
  std::vector<Line> lines;
  std::istringstream content(ReadFile(path));
  std::string text;
  int number = 0;
  while (std::getline(content, text)) {
    ++number;
    std::vector<std::string> fields = absl::StrSplit(text, '\t');
    EXPECT_EQ(fields.size(), 2u) << path << ":" << number << ": " << text;
    if (fields.size() != 2) continue;
    EXPECT_FALSE(fields[0].empty()) << path << ":" << number;
    EXPECT_FALSE(fields[1].empty()) << path << ":" << number;
    EXPECT_EQ(text.find('\r'), std::string::npos) << path << ":" << number;
    lines.push_back({fields[0], fields[1]});
  }
  return lines;
}

class GymTreeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(FreshTempDir("gym_seed1"));
    ASSERT_EQ(RunMakeGym(*root_, "--seed=1"), 0);
  }
  static void TearDownTestSuite() { delete root_; }
  static const fs::path& root() { return *root_; }

  static fs::path* root_;
};

fs::path* GymTreeTest::root_ = nullptr;

TEST_F(GymTreeTest, SameSeedGivesAByteIdenticalTreeAndAnotherSeedDoesNot) {
  const fs::path again = FreshTempDir("gym_seed1_again");
  ASSERT_EQ(RunMakeGym(again, "--seed=1"), 0);
  const std::map<std::string, std::string> first = ReadTree(root());
  const std::map<std::string, std::string> second = ReadTree(again);
  ASSERT_EQ(first.size(), second.size());
  for (const auto& [path, bytes] : first) {
    ASSERT_TRUE(second.count(path)) << path;
    EXPECT_TRUE(second.at(path) == bytes) << path << " differs between two runs with seed 1";
  }
  EXPECT_TRUE(first.count("tokenizer/vocab.json"));
  EXPECT_TRUE(first.count("tokenizer/merges.txt"));

  const fs::path other = FreshTempDir("gym_seed2");
  ASSERT_EQ(RunMakeGym(other, "--seed=2"), 0);
  const std::map<std::string, std::string> third = ReadTree(other);
  // Another seed draws other examples and other ids, for the same tasks in the same splits.
  std::map<std::string, std::string> first_split, third_split, first_file, third_file;
  for (auto [tree, split_of, file_of] : {std::tuple(&first, &first_split, &first_file),
                                         std::tuple(&third, &third_split, &third_file)}) {
    const Json skills = Json::parse(tree->at("skills.json"));
    for (const auto& task : skills["tasks"]) {
      const std::string id = task["name"].get<std::string>();
      const std::string readable = task["readable_name"].get<std::string>();
      (*split_of)[readable] = task["split"].get<std::string>();
      (*file_of)[readable] = tree->count(id + "/" + id + "_512_100_train.tsv")
                                 ? tree->at(id + "/" + id + "_512_100_train.tsv")
                                 : "";
    }
  }
  EXPECT_EQ(first_split, third_split);
  ASSERT_FALSE(first_file.at("polarity").empty());
  EXPECT_NE(third_file.at("polarity"), first_file.at("polarity"));
  EXPECT_NE(third.at("split.json"), first.at("split.json"));
}

TEST_F(GymTreeTest, SplitsAreDisjointAndCoverEveryTask) {
  const Json split = ReadJson(root() / "split.json");
  std::set<std::string> train, dev, test, all;
  for (const auto& name : split["train"]) train.insert(name.get<std::string>());
  for (const auto& name : split["dev"]) dev.insert(name.get<std::string>());
  for (const auto& name : split["test"]) test.insert(name.get<std::string>());
  for (const auto& name : split["all"]) all.insert(name.get<std::string>());
  EXPECT_GE(all.size(), 32u);
  EXPECT_FALSE(test.empty());
  EXPECT_FALSE(dev.empty());
  for (const std::string& task : train) {
    EXPECT_EQ(test.count(task), 0u) << task;
    EXPECT_EQ(dev.count(task), 0u) << task;
  }
  for (const std::string& task : dev) EXPECT_EQ(test.count(task), 0u) << task;
  EXPECT_EQ(train.size() + dev.size() + test.size(), all.size());
  for (const std::string& task : all) EXPECT_TRUE(fs::is_directory(root() / task)) << task;

  // Ontology: every task exactly once; at least four categories.
  const Json ontology = ReadJson(root() / "ontology.json");
  std::multiset<std::string> in_ontology;
  for (const auto& [category, subs] : ontology.items()) {
    for (const auto& [sub, tasks] : subs.items()) {
      for (const auto& task : tasks) in_ontology.insert(task.get<std::string>());
    }
  }
  EXPECT_GE(ontology.size(), 4u);
  EXPECT_EQ(in_ontology, std::multiset<std::string>(all.begin(), all.end()));

  // Metrics: every task has one of the CrossFit metrics.
  const std::set<std::string> known_metrics = {
      "EM", "ACC", "QA-F1", "Classification-F1", "Matthew-Correlation", "Pearson-Correlation",
      "Rouge-L"};
  const Json metrics = ReadJson(root() / "metrics.json");
  EXPECT_EQ(metrics.size(), all.size());
  for (const std::string& task : all) {
    ASSERT_TRUE(metrics.contains(task)) << task;
    EXPECT_TRUE(known_metrics.count(metrics[task].get<std::string>())) << task;
  }
}

TEST_F(GymTreeTest, SkillsFileDescribesACompositionalInventory) {
  const Json skills = ReadJson(root() / "skills.json");
  EXPECT_EQ(skills["generator"], kGymGenerator);
  EXPECT_GE(skills["skills"].size(), 8u);
  std::set<std::string> categories;
  std::map<std::string, std::set<std::set<std::string>>> compositions_by_split;
  std::set<std::string> train_skills, held_out_skills, controls;
  for (const auto& skill : skills["skills"]) {
    if (skill["control"].get<bool>()) controls.insert(skill["name"].get<std::string>());
  }
  const Json& matrix = skills["task_skill_matrix"];
  ASSERT_EQ(matrix["tasks"].size(), skills["tasks"].size());
  for (size_t t = 0; t < skills["tasks"].size(); ++t) {
    const Json& task = skills["tasks"][t];
    EXPECT_EQ(matrix["tasks"][t], task["name"]);
    categories.insert(task["category"].get<std::string>());
    std::set<std::string> used;
    for (const auto& skill : task["skills"]) used.insert(skill.get<std::string>());
    EXPECT_FALSE(used.empty()) << task["name"];
    // The matrix row marks exactly the task's skills.
    for (size_t s = 0; s < matrix["skills"].size(); ++s) {
      EXPECT_EQ(matrix["rows"][t][s].get<int>(),
                used.count(matrix["skills"][s].get<std::string>()) ? 1 : 0)
          << task["name"] << " x " << matrix["skills"][s];
    }
    const std::string split = task["split"].get<std::string>();
    compositions_by_split[split == "train" ? "train" : "held_out"].insert(used);
    (split == "train" ? train_skills : held_out_skills).insert(used.begin(), used.end());
  }
  EXPECT_GE(categories.size(), 4u);
  // Held-out tasks are new combinations; the controls appear in held-out tasks only.
  for (const auto& composition : compositions_by_split["held_out"]) {
    EXPECT_EQ(compositions_by_split["train"].count(composition), 0u)
        << "a held-out task repeats a train task's skills";
  }
  EXPECT_FALSE(controls.empty());
  for (const std::string& control : controls) {
    EXPECT_EQ(train_skills.count(control), 0u) << control;
    EXPECT_EQ(held_out_skills.count(control), 1u) << control;
  }
  for (const std::string& skill : held_out_skills) {
    EXPECT_TRUE(train_skills.count(skill) || controls.count(skill)) << skill;
  }
}

// Recomputes every output of every file from the input text and the skill list that
// skills.json gives for the task.
// The data names a task by an opaque id, so the model's input ("[id] ...") does not spell out
// the task's skills; skills.json keeps the readable name for reports.
TEST_F(GymTreeTest, TasksAreNamedByOpaqueIdsThatHideTheirSkills) {
  const Json skills = ReadJson(root() / "skills.json");
  std::set<std::string> ids, readable_names;
  for (const auto& task : skills["tasks"]) {
    const std::string id = task["name"].get<std::string>();
    EXPECT_THAT(id, ::testing::MatchesRegex("task[0-9][0-9]"));
    ids.insert(id);
    readable_names.insert(task["readable_name"].get<std::string>());
    for (const auto& skill : skills["skills"]) {
      EXPECT_EQ(id.find(skill["name"].get<std::string>()), std::string::npos) << id;
    }
  }
  EXPECT_EQ(ids.size(), skills["tasks"].size());
  EXPECT_EQ(readable_names.size(), skills["tasks"].size());
  EXPECT_TRUE(readable_names.count("sort-words"));
  EXPECT_FALSE(fs::exists(root() / "sort-words"));
  // Ids are shuffled: the table's order (train tasks first) does not show in them.
  const Json split = ReadJson(root() / "split.json");
  std::vector<std::string> train = split["train"].get<std::vector<std::string>>();
  std::vector<std::string> sorted = train;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_NE(train, sorted);
}

TEST_F(GymTreeTest, EveryOutputFollowsFromTheInputThroughTheListedSkills) {
  const Json skills = ReadJson(root() / "skills.json");
  int64_t checked = 0;
  for (const auto& task : skills["tasks"]) {
    const std::string name = task["name"].get<std::string>();
    std::vector<Skill> pipeline;
    for (const auto& skill_name : task["skills"]) {
      absl::StatusOr<Skill> skill = SkillFromName(skill_name.get<std::string>());
      ASSERT_TRUE(skill.ok()) << skill.status();
      pipeline.push_back(*skill);
    }
    for (const auto& entry : fs::directory_iterator(root() / name)) {
      for (const Line& line : ReadTsv(entry.path())) {
        absl::StatusOr<GymState> input = ParseGymInput(line.input);
        ASSERT_TRUE(input.ok()) << entry.path() << ": " << input.status();
        absl::StatusOr<GymState> output = ApplySkills(pipeline, *input);
        ASSERT_TRUE(output.ok()) << entry.path() << ": " << output.status();
        ASSERT_EQ(FormatGymOutput(*output), line.output) << entry.path() << ": " << line.input;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 30000);
}

TEST_F(GymTreeTest, FilesFollowTheCrossFitLayoutAndFewShotRecipe) {
  const Json skills = ReadJson(root() / "skills.json");
  const std::vector<int> seeds = {100, 13, 21, 42, 87};
  for (const auto& task : skills["tasks"]) {
    const std::string name = task["name"].get<std::string>();
    const fs::path dir = root() / name;
    std::set<std::string> files;
    for (const auto& entry : fs::directory_iterator(dir)) {
      files.insert(entry.path().filename().string());
    }
    if (task["split"] == "train") {
      EXPECT_EQ(files, (std::set<std::string>{name + "_512_100_train.tsv",
                                              name + "_512_100_dev.tsv",
                                              name + "_512_100_test.tsv"}));
      const std::vector<Line> train = ReadTsv(dir / (name + "_512_100_train.tsv"));
      const std::vector<Line> dev = ReadTsv(dir / (name + "_512_100_dev.tsv"));
      const std::vector<Line> test = ReadTsv(dir / (name + "_512_100_test.tsv"));
      EXPECT_EQ(train.size(), 512u) << name;
      EXPECT_EQ(dev.size(), 32u) << name;
      EXPECT_EQ(test.size(), 64u) << name;
      std::set<std::string> inputs;
      for (const auto* lines : {&train, &dev, &test}) {
        for (const Line& line : *lines) inputs.insert(line.input);
      }
      EXPECT_EQ(inputs.size(), 512u + 32u + 64u) << name << ": inputs repeat across files";
      continue;
    }
    const bool classification = task["category"] == "classification";
    const int k = classification ? 16 : 32;
    EXPECT_EQ(files.size(), 3 * seeds.size()) << name;
    std::string shared_test;
    std::set<std::string> first_train_inputs;
    for (int seed : seeds) {
      const std::string prefix = absl::StrCat(name, "_", k, "_", seed);
      ASSERT_TRUE(files.count(prefix + "_train.tsv")) << prefix;
      const std::vector<Line> train = ReadTsv(dir / (prefix + "_train.tsv"));
      const std::vector<Line> dev = ReadTsv(dir / (prefix + "_dev.tsv"));
      const std::vector<Line> test = ReadTsv(dir / (prefix + "_test.tsv"));
      EXPECT_EQ(test.size(), 256u);
      const std::string test_bytes = ReadFile(dir / (prefix + "_test.tsv"));
      if (shared_test.empty()) shared_test = test_bytes;
      EXPECT_EQ(test_bytes, shared_test) << prefix << ": the test set is shared by all seeds";
      if (classification) {
        std::map<std::string, int> train_labels, dev_labels;
        for (const Line& line : train) ++train_labels[line.output];
        for (const Line& line : dev) ++dev_labels[line.output];
        EXPECT_GE(train_labels.size(), 2u) << prefix;
        for (const auto& [label, count] : train_labels) EXPECT_EQ(count, k) << prefix << label;
        for (const auto& [label, count] : dev_labels) EXPECT_LE(count, k) << prefix << label;
      } else {
        EXPECT_EQ(train.size(), static_cast<size_t>(k)) << prefix;
        EXPECT_EQ(dev.size(), static_cast<size_t>(k)) << prefix;
      }
      std::set<std::string> seen;
      for (const auto* lines : {&train, &dev, &test}) {
        for (const Line& line : *lines) {
          EXPECT_TRUE(seen.insert(line.input).second) << prefix << ": repeated " << line.input;
        }
      }
      std::set<std::string> train_inputs;
      for (const Line& line : train) train_inputs.insert(line.input);
      if (first_train_inputs.empty()) {
        first_train_inputs = train_inputs;
      } else {
        EXPECT_NE(train_inputs, first_train_inputs) << prefix << ": seeds draw the same shots";
      }
    }
  }
}

TEST_F(GymTreeTest, GymTokenizerRoundTripsGymText) {
  absl::StatusOr<BartTokenizer> tokenizer =
      BartTokenizer::LoadFromDirectory((root() / kTokenizerDir).string());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_GT(tokenizer->vocab_size(), 261);
  EXPECT_LE(tokenizer->vocab_size(), 1024);
  EXPECT_EQ(ReadJson(root() / "skills.json")["options"]["vocab_size"], 1024);
  std::map<std::string, std::string> id_of;
  const Json skills = ReadJson(root() / "skills.json");
  for (const auto& task : skills["tasks"]) {
    id_of[task["readable_name"].get<std::string>()] = task["name"].get<std::string>();
  }
  for (const std::string readable : {"span-copy", "lookup-translate", "sum-digits"}) {
    ASSERT_TRUE(id_of.count(readable)) << readable;
    const std::string task = id_of[readable];
    for (const Line& line : ReadTsv(root() / task / (task + "_512_100_dev.tsv"))) {
      for (const std::string& text :
           {absl::StrCat(" [", task, "] ", line.input), absl::StrCat(" ", line.output)}) {
        const std::vector<int64_t> ids = tokenizer->EncodeWithoutSpecialTokens(text);
        EXPECT_EQ(tokenizer->Decode(ids), text);
        // The gym's words are whole tokens: no id is <unk>, and inputs stay short.
        for (int64_t id : ids) EXPECT_NE(id, tokenizer->unk_id());
        EXPECT_LE(ids.size(), 40u) << text;
      }
    }
  }
}

TEST_F(GymTreeTest, TheCrossFitReaderReadsTheGym) {
  absl::StatusOr<TaskSplit> split = ReadTaskSplit((root() / kSplitFile).string());
  ASSERT_TRUE(split.ok()) << split.status();
  // Upstream training reads every prefix of every train task: one per task here.
  absl::StatusOr<std::vector<TaskFile>> train =
      ReadSplitTaskFiles(*split, "train", root().string(), "train");
  ASSERT_TRUE(train.ok()) << train.status();
  ASSERT_EQ(train->size(), split->train.size());
  for (const TaskFile& file : *train) {
    EXPECT_EQ(file.prefix, file.task + "_512_100");
    EXPECT_EQ(file.examples.size(), 512u);
    // Upstream evaluation needs exactly one dev file per train task.
    EXPECT_TRUE(ReadSingleTaskFile(root().string(), file.task, "dev").ok()) << file.task;
  }
  // Held-out tasks: five prefixes (few-shot seeds), seed 100 first as the original lists them.
  for (const std::string& task : split->test) {
    absl::StatusOr<std::vector<std::string>> prefixes =
        ListPrefixes((root() / task).string());
    ASSERT_TRUE(prefixes.ok()) << prefixes.status();
    ASSERT_EQ(prefixes->size(), 5u) << task;
    EXPECT_THAT(prefixes->front(), ::testing::EndsWith("_100"));
  }
  absl::StatusOr<Ontology> ontology = ReadOntology((root() / kOntologyFile).string());
  ASSERT_TRUE(ontology.ok()) << ontology.status();
  EXPECT_EQ(ontology->TasksInOrder().size(), split->all.size());
  absl::StatusOr<MetricTable> metrics = MetricTable::Load((root() / kMetricsFile).string());
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  for (const std::string& task : split->all) {
    EXPECT_TRUE(metrics->MetricOf(task).ok()) << task;
  }
}

TEST(GymWriter, RefusesANonEmptyDirectoryThatIsNotAGym) {
  const fs::path dir = FreshTempDir("not_a_gym");
  fs::create_directories(dir);
  std::ofstream(dir / "notes.txt") << "keep me\n";
  absl::StatusOr<GymSummary> summary = WriteGym(GymOptions(), dir.string());
  ASSERT_FALSE(summary.ok());
  EXPECT_THAT(std::string(summary.status().message()),
              HasSubstr("is not a gym made by make_gym"));
  EXPECT_EQ(ReadFile(dir / "notes.txt"), "keep me\n");
  EXPECT_NE(RunMakeGym(dir), 0);
  EXPECT_EQ(ReadFile(dir / "notes.txt"), "keep me\n");
}

}  // namespace
}  // namespace taskmoe::gym
