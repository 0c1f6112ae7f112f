// Tests of the trainer's data preparation (moe/train/run_data.h): the skill gym generated on
// first use, and regenerated when it comes from an older task table.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "data/gym/gym_writer.h"
#include "moe/train/experiment_config.h"
#include "moe/train/run_data.h"
#include "tests/tiny_gym.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using taskmoe::testing::FreshTempDir;
using taskmoe::testing::ReadFile;
using Json = nlohmann::json;

ExperimentConfig GeneratingConfig(const std::string& data_dir) {
  setenv("TASKMOE_CACHE", (fs::path(std::getenv("TEST_TMPDIR")) / "cache").c_str(), 1);
  absl::StatusOr<ExperimentConfig> config = LoadExperimentConfig(
      "", {"data.data_dir=" + data_dir, "data.gym={generate_if_missing: true seed: 3}",
           "data.max_input_length=48", "data.max_output_length=24"});
  CHECK(config.ok()) << config.status();
  return *config;
}

gym::GymOptions OptionsOfSeed(uint64_t seed) {
  gym::GymOptions options;
  options.seed = seed;
  return options;
}

// Rewrites skills.json as a gym of task-table version `version` would have it.
void SetTableVersion(const std::string& dir, int version) {
  const fs::path path = fs::path(dir) / gym::kSkillsFile;
  Json skills = Json::parse(ReadFile(path));
  skills["table_version"] = version;
  std::ofstream(path) << skills.dump(2);
}

TEST(PrepareData, GeneratesTheGymOnFirstUse) {
  const std::string dir = FreshTempDir("first_use");
  absl::StatusOr<ExperimentData> data = LoadExperimentData(GeneratingConfig(dir), true);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->train_tasks.size(), 29u);
  EXPECT_TRUE(gym::IsGymWrittenWith(dir, OptionsOfSeed(3)));
  EXPECT_FALSE(gym::IsOutdatedGym(dir));
}

TEST(PrepareData, ReplacesItsOwnGymFromAnOlderTaskTable) {
  const std::string dir = FreshTempDir("older_table");
  ASSERT_TRUE(gym::WriteGym(OptionsOfSeed(3), dir).ok());
  const std::string current = ReadFile(fs::path(dir) / gym::kSkillsFile);
  SetTableVersion(dir, gym::kGymTableVersion - 1);
  ASSERT_TRUE(gym::IsOutdatedGym(dir));

  absl::StatusOr<ExperimentData> data = LoadExperimentData(GeneratingConfig(dir), true);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_FALSE(gym::IsOutdatedGym(dir));
  EXPECT_EQ(ReadFile(fs::path(dir) / gym::kSkillsFile), current);
}

TEST(PrepareData, KeepsAGymOfOtherOptions) {
  // The current table: read as it is, never rewritten with data.gym's seed.
  const std::string dir = FreshTempDir("other_options");
  ASSERT_TRUE(gym::WriteGym(OptionsOfSeed(5), dir).ok());
  ASSERT_TRUE(LoadExperimentData(GeneratingConfig(dir), true).ok());
  EXPECT_TRUE(gym::IsGymWrittenWith(dir, OptionsOfSeed(5)));

  // An older table: an error naming the directory, and the files left as they were.
  SetTableVersion(dir, gym::kGymTableVersion - 1);
  const std::string before = ReadFile(fs::path(dir) / gym::kSkillsFile);
  absl::StatusOr<ExperimentData> data = LoadExperimentData(GeneratingConfig(dir), true);
  ASSERT_FALSE(data.ok());
  EXPECT_THAT(std::string(data.status().message()), HasSubstr(dir));
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("make_gym"));
  EXPECT_EQ(ReadFile(fs::path(dir) / gym::kSkillsFile), before);
}

TEST(PrepareData, ReadsAnOlderGymWhenNotAskedToGenerate) {
  const std::string dir = FreshTempDir("not_generating");
  ASSERT_TRUE(gym::WriteGym(OptionsOfSeed(3), dir).ok());
  SetTableVersion(dir, gym::kGymTableVersion - 1);
  ExperimentConfig config = GeneratingConfig(dir);
  config.mutable_data()->mutable_gym()->set_generate_if_missing(false);
  ASSERT_TRUE(LoadExperimentData(config, true).ok());
  EXPECT_TRUE(gym::IsOutdatedGym(dir));
}

}  // namespace
}  // namespace taskmoe
