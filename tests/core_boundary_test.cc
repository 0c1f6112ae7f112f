// The core (moe/) never names a plugin: plugins meet it only through the routing and
// task-embedding interfaces, so adding one never edits the core.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "moe/embedding/task_embedding.h"
#include "moe/routing/routing.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

std::string Runfile(const std::string& path) {
  return absl::StrCat(std::getenv("TEST_SRCDIR"), "/taskmoe/", path);
}

std::string Read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// moe/ relative path -> content, for every file of the core.
std::vector<std::pair<std::string, std::string>> CoreFiles() {
  std::vector<std::pair<std::string, std::string>> files;
  const fs::path root = Runfile("moe");
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    files.emplace_back(entry.path().lexically_relative(root.parent_path()).string(),
                       Read(entry.path()));
  }
  return files;
}

TEST(CoreBoundaryTest, CoreFilesAreAllThere) {
  std::set<std::string> names;
  for (const auto& [path, text] : CoreFiles()) names.insert(path);
  // Spot checks that the file list is the core and not empty or partial.
  for (const char* expected : {"moe/BUILD", "moe/routing/routing.h", "moe/train/trainer.cc",
                               "moe/workflow/finetune.cc", "moe/base/registry.h"}) {
    EXPECT_EQ(names.count(expected), 1u) << expected;
  }
  EXPECT_GT(names.size(), 60u);
}

TEST(CoreBoundaryTest, NoRegisteredPluginNameInTheCore) {
  std::vector<std::string> plugins = RegisteredRoutingPlugins();
  const std::vector<std::string> methods = RegisteredTaskEmbeddingMethods();
  plugins.insert(plugins.end(), methods.begin(), methods.end());
  ASSERT_GE(plugins.size(), 10u);  // every built-in routing plugin and method is linked
  for (const auto& [path, text] : CoreFiles()) {
    for (const std::string& name : plugins) {
      EXPECT_FALSE(absl::StrContains(text, absl::StrCat("\"", name, "\"")))
          << path << " names plugin \"" << name << "\"";
    }
  }
}

TEST(CoreBoundaryTest, NoPluginHeaderOrTargetInTheCore) {
  for (const auto& [path, text] : CoreFiles()) {
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      if (absl::StartsWith(line, "#include") || absl::StartsWith(line, "import")) {
        EXPECT_FALSE(absl::StrContains(line, "routing_plugins/") ||
                     absl::StrContains(line, "task_embeddings/"))
            << path << ": " << line;
      }
    }
    // moe/BUILD names the plugin folders only to let them see the interfaces (visibility).
    if (absl::EndsWith(path, "BUILD") && path != "moe/BUILD") {
      EXPECT_FALSE(absl::StrContains(text, "\"//routing_plugins") ||
                   absl::StrContains(text, "\"//task_embeddings"))
          << path << " refers to a plugin target";
    }
  }
}

std::vector<std::string> CoreDependencies() {
  std::vector<std::string> labels;
  for (absl::string_view line :
       absl::StrSplit(Read(Runfile("tests/core_dependencies")), '\n', absl::SkipEmpty())) {
    labels.emplace_back(line);
  }
  return labels;
}

TEST(CoreBoundaryTest, NoCoreLibraryDependsOnAPlugin) {
  const std::vector<std::string> labels = CoreDependencies();
  ASSERT_FALSE(labels.empty());
  for (const std::string& label : labels) {
    EXPECT_FALSE(absl::StartsWith(label, "//routing_plugins") ||
                 absl::StartsWith(label, "//task_embeddings"))
        << "a core library depends on " << label;
  }
}

TEST(CoreBoundaryTest, TheQueryCoversEveryCoreLibrary) {
  const std::vector<std::string> labels = CoreDependencies();
  const std::set<std::string> queried(labels.begin(), labels.end());
  int libraries = 0;
  for (const auto& [path, text] : CoreFiles()) {
    if (!absl::EndsWith(path, "/BUILD") || path == "moe/BUILD") continue;
    const std::string package = absl::StrCat("//", path.substr(0, path.size() - 6));
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      absl::string_view name = line;
      if (!absl::ConsumePrefix(&name, "    name = \"") || !absl::ConsumeSuffix(&name, "\",")) {
        continue;
      }
      ++libraries;
      EXPECT_EQ(queried.count(absl::StrCat(package, ":", name)), 1u)
          << package << ":" << name << " is missing from //moe:libraries";
    }
  }
  EXPECT_GT(libraries, 30);
}

}  // namespace
}  // namespace taskmoe
