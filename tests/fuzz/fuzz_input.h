#ifndef TASKMOE_TESTS_FUZZ_FUZZ_INPUT_H_
#define TASKMOE_TESTS_FUZZ_FUZZ_INPUT_H_

// Helpers for fuzzers whose parser reads files (by path) or several files at once.

#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace taskmoe::fuzzing {

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// Whether two buffers hold the same bytes (memcmp, which must not see the null pointer of an
// empty tensor). Compares values bitwise, so that NaN equals itself.
inline bool SameBytes(const void* a, const void* b, size_t size) {
  return size == 0 || std::memcmp(a, b, size) == 0;
}

// Separates the files of one input, so the mutator can change each and corpus files stay
// readable text.
inline constexpr std::string_view kPartSeparator = "\n=====\n";

// The input cut at the first `parts - 1` separators (fewer parts when it holds fewer).
inline std::vector<std::string_view> SplitParts(std::string_view input, size_t parts) {
  std::vector<std::string_view> result;
  while (result.size() + 1 < parts) {
    const size_t at = input.find(kPartSeparator);
    if (at == std::string_view::npos) break;
    result.push_back(input.substr(0, at));
    input.remove_prefix(at + kPartSeparator.size());
  }
  result.push_back(input);
  return result;
}

// A directory of this process for files the parsers read; removed at exit.
class ScratchDirectory {
 public:
  ScratchDirectory() {
    const char* base = getenv("TEST_TMPDIR");  // Bazel's; /tmp under libFuzzer
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/taskmoe_fuzz_XXXXXX";
    path_ = mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~ScratchDirectory() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Writes `bytes` to `name` in the scratch directory and returns its path; the same name is
// overwritten by the next input.
inline std::string WriteScratchFile(const std::string& name, std::string_view bytes) {
  static const ScratchDirectory directory;
  const std::string path = directory.path() + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());
  return path;
}

}  // namespace taskmoe::fuzzing

#endif  // TASKMOE_TESTS_FUZZ_FUZZ_INPUT_H_
