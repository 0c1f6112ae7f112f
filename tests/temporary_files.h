#ifndef TASKMOE_TESTS_TEMPORARY_FILES_H_
#define TASKMOE_TESTS_TEMPORARY_FILES_H_

#include <filesystem>
#include <string>
#include <vector>

namespace taskmoe::testing {

// Files beside `path` whose names start with its name + ".tmp" (what an atomic write leaves
// behind when it fails to clean up).
inline std::vector<std::string> TemporarySiblings(const std::string& path) {
  const std::filesystem::path target(path);
  const std::string prefix = target.filename().string() + ".tmp";
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(target.parent_path())) {
    const std::string name = entry.path().filename().string();
    if (name.compare(0, prefix.size(), prefix) == 0) found.push_back(name);
  }
  return found;
}

}  // namespace taskmoe::testing

#endif  // TASKMOE_TESTS_TEMPORARY_FILES_H_
