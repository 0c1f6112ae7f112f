#ifndef TASKMOE_TESTS_TINY_GYM_H_
#define TASKMOE_TESTS_TINY_GYM_H_

#include <cstdlib>
#include <filesystem>
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

// A small synthetic gym written into a fresh `name` directory, for end-to-end tests.
inline std::string MakeTinyGym(const std::string& name, const gym::GymOptions& options) {
  const std::string dir = FreshTempDir(name);
  absl::StatusOr<gym::GymSummary> summary = gym::WriteGym(options, dir);
  CHECK(summary.ok()) << summary.status();
  return dir;
}

}  // namespace taskmoe::testing

#endif  // TASKMOE_TESTS_TINY_GYM_H_
