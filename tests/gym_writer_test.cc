// Tests of WriteGym's handling of an existing output directory and of bad options
// (data/gym/gym_writer.h).
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "data/gym/gym_writer.h"
#include "tests/tiny_gym.h"

namespace taskmoe::gym {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using taskmoe::testing::FreshTempDir;
using taskmoe::testing::ReadFile;
using taskmoe::testing::ReadTree;

// Options of a gym that writes in about a second.
GymOptions SmallGym() {
  GymOptions options;
  options.train_examples = 20;
  options.fewshot_pool_examples = 100;
  options.fewshot_test_examples = 10;
  return options;
}

TEST(GymWriter, ReplacesItsOwnGymButNotForeignFilesInIt) {
  const fs::path dir = FreshTempDir("own_gym");
  const GymOptions small = SmallGym();
  ASSERT_TRUE(WriteGym(small, dir.string()).ok());
  GymOptions other_seed = small;
  other_seed.seed = 5;
  // What an interrupted earlier writer left beside the gym is cleared, not swapped in.
  const fs::path leftover = dir.string() + ".staging";
  fs::create_directories(leftover / "task00");
  absl::StatusOr<GymSummary> replaced = WriteGym(other_seed, dir.string());
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_EQ(nlohmann::json::parse(ReadFile(dir / "skills.json"))["options"]["seed"], 5);
  const fs::path fresh = FreshTempDir("fresh_gym_seed5");
  ASSERT_TRUE(WriteGym(other_seed, fresh.string()).ok());
  EXPECT_TRUE(ReadTree(dir) == ReadTree(fresh));
  EXPECT_FALSE(fs::exists(leftover));

  std::ofstream(dir / "notes.txt") << "mine\n";
  absl::StatusOr<GymSummary> refused = WriteGym(small, dir.string());
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("notes.txt"));
  EXPECT_TRUE(fs::exists(dir / "skills.json"));
}

TEST(GymWriter, RejectsBadOptions) {
  GymOptions options;
  options.k_text_to_text = 0;
  absl::StatusOr<GymSummary> summary = WriteGym(options, FreshTempDir("bad_options"));
  ASSERT_FALSE(summary.ok());
  EXPECT_THAT(std::string(summary.status().message()), HasSubstr("k_text_to_text"));

  // A tokenizer that cannot be trained fails before an existing gym is touched.
  const fs::path dir = FreshTempDir("kept_gym");
  const GymOptions small = SmallGym();
  ASSERT_TRUE(WriteGym(small, dir.string()).ok());
  const std::map<std::string, std::string> before = ReadTree(dir);
  GymOptions tiny_vocab = small;
  tiny_vocab.seed = 2;
  tiny_vocab.vocab_size = 10;
  EXPECT_FALSE(WriteGym(tiny_vocab, dir.string()).ok());
  EXPECT_TRUE(ReadTree(dir) == before);

  // More distinct examples than a task's input space holds is an error, not a hang:
  // compare-ends (2-5 digits) has 111,100 distinct inputs.
  GymOptions too_many;
  too_many.train_examples = 120000;
  summary = WriteGym(too_many, FreshTempDir("too_many"));
  ASSERT_FALSE(summary.ok());
  EXPECT_THAT(std::string(summary.status().message()),
              HasSubstr("gym task compare-ends: found only"));
}

TEST(GymWriter, RecordsItsOptionsAndTaskTableVersion) {
  const fs::path dir = FreshTempDir("versioned_gym");
  const GymOptions small = SmallGym();
  EXPECT_FALSE(IsOutdatedGym(dir.string()));
  EXPECT_FALSE(IsGymWrittenWith(dir.string(), small));
  ASSERT_TRUE(WriteGym(small, dir.string()).ok());
  EXPECT_FALSE(IsOutdatedGym(dir.string()));
  EXPECT_TRUE(IsGymWrittenWith(dir.string(), small));
  GymOptions other = small;
  other.seed = 2;
  EXPECT_FALSE(IsGymWrittenWith(dir.string(), other));

  nlohmann::json skills = nlohmann::json::parse(ReadFile(dir / kSkillsFile));
  EXPECT_EQ(skills["table_version"], kGymTableVersion);
  skills["table_version"] = kGymTableVersion - 1;
  std::ofstream(dir / kSkillsFile) << skills.dump();
  EXPECT_TRUE(IsOutdatedGym(dir.string()));
  EXPECT_TRUE(IsGymWrittenWith(dir.string(), small));
  skills.erase("table_version");
  std::ofstream(dir / kSkillsFile) << skills.dump();
  EXPECT_TRUE(IsOutdatedGym(dir.string()));
  skills["table_version"] = "2";
  std::ofstream(dir / kSkillsFile) << skills.dump();
  EXPECT_TRUE(IsOutdatedGym(dir.string()));

  // A directory that make_gym did not write is neither.
  const fs::path foreign = FreshTempDir("foreign_gym");
  fs::create_directories(foreign);
  std::ofstream(foreign / kSkillsFile) << "{\"tasks\": []}";
  EXPECT_FALSE(IsOutdatedGym(foreign.string()));
  EXPECT_FALSE(IsGymWrittenWith(foreign.string(), small));
  std::ofstream(foreign / kSkillsFile) << "{\"generator\": 5, \"tasks\": []}";
  EXPECT_FALSE(IsOutdatedGym(foreign.string()));
  EXPECT_FALSE(IsGymWrittenWith(foreign.string(), small));
}

}  // namespace
}  // namespace taskmoe::gym
