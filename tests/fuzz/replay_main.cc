// Replays every file of a fuzzer's corpus directory through its LLVMFuzzerTestOneInput: the
// seeds and every finding fixed so far stay checked by `bazel test //...` without libFuzzer.
// A failing input aborts (CHECK, sanitizer, uncaught exception) and so fails the test.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<std::filesystem::path> CorpusFiles(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());  // a stable order, so a failure repeats
  return files;
}

std::string FileBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " CORPUS_DIR\n";
    return 2;
  }
  const std::vector<std::filesystem::path> files = CorpusFiles(argv[1]);
  if (files.empty()) {
    // An empty glob would otherwise pass while checking nothing.
    std::cerr << "no corpus files under " << argv[1] << "\n";
    return 1;
  }
  for (const std::filesystem::path& file : files) {
    std::cerr << "replaying " << file.string() << "\n";
    const std::string bytes = FileBytes(file);
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::cerr << "replayed " << files.size() << " files\n";
  return 0;
}
