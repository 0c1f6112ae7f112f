// Every shipped config in configs/ parses, validates and names a registered routing plugin.
#include <filesystem>

#include <gtest/gtest.h>

#include "moe/routing/routing.h"
#include "moe/train/experiment_config.h"

namespace taskmoe {
namespace {

TEST(Configs, EveryShippedConfigLoads) {
  int count = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator("configs")) {
    if (entry.path().extension() != ".pbtxt") continue;
    ++count;
    absl::StatusOr<ExperimentConfig> config = LoadExperimentConfig(entry.path().string(), {});
    ASSERT_TRUE(config.ok()) << entry.path() << ": " << config.status();
    if (!config->has_routing()) {
      // Only fine-tuning templates leave routing out: the model's own routes are inherited.
      EXPECT_EQ(entry.path().stem(), "finetune") << entry.path();
      continue;
    }
    EXPECT_TRUE(RoutingRegistry::Global().Contains(config->routing().plugin()))
        << entry.path() << " names routing plugin " << config->routing().plugin();
  }
  EXPECT_GE(count, 6);
}

}  // namespace
}  // namespace taskmoe
