#ifndef TASKMOE_TESTS_TINY_GYM_H_
#define TASKMOE_TESTS_TINY_GYM_H_

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "data/gym/gym_writer.h"
#include "glog/logging.h"

namespace taskmoe::testing {

// An empty path `name` under the test's temporary directory (removed if a test left it).
inline std::string FreshTempDir(const std::string& name) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

// The bytes of the file at `path` (empty if it cannot be read).
inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

// Relative path -> bytes, for every regular file under `root`.
inline std::map<std::string, std::string> ReadTree(const std::filesystem::path& root) {
  std::map<std::string, std::string> tree;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (entry.is_regular_file()) {
      tree[std::filesystem::relative(entry.path(), root).string()] = ReadFile(entry.path());
    }
  }
  return tree;
}

// A small synthetic gym written into a fresh `name` directory, for end-to-end tests.
inline std::string MakeTinyGym(const std::string& name, const gym::GymOptions& options) {
  const std::string dir = FreshTempDir(name);
  absl::StatusOr<gym::GymSummary> summary = gym::WriteGym(options, dir);
  CHECK(summary.ok()) << summary.status();
  return dir;
}

}  // namespace taskmoe::testing

#endif  // TASKMOE_TESTS_TINY_GYM_H_
