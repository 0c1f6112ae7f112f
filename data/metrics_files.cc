// Predictions and references files, read as the evaluation tools expect them.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "data/metrics.h"
#include "data/python_str.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"

namespace taskmoe {
namespace {

namespace ps = ::taskmoe::python_str;

absl::StatusOr<std::vector<std::string>> ReadLines(const std::string& path, std::string_view what) {
  absl::StatusOr<std::string> bytes = ReadFileBytes(path);
  if (!bytes.ok()) {
    return absl::Status(bytes.status().code(), absl::StrCat("cannot open ", std::string(what), " ",
                                                            path, ": ", bytes.status().message()));
  }
  std::vector<std::string> lines = absl::StrSplit(*bytes, '\n');
  if (lines.back().empty()) lines.pop_back();  // The final newline, or an empty file.
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string& line = lines[i];
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!ps::IsValidUtf8(line)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", i + 1, ": invalid UTF-8"));
    }
  }
  return lines;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ReadPredictionsFile(const std::string& path, bool strip) {
  TASKMOE_ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadLines(path, "predictions file"));
  if (strip) {
    for (std::string& line : lines) line = ps::StripUtf8(line);
  }
  return lines;
}

absl::StatusOr<std::vector<std::vector<std::string>>> ReadReferencesFile(const std::string& path) {
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<std::string> lines,
                           ReadLines(path, "references file"));
  std::vector<std::vector<std::string>> references;
  references.reserve(lines.size());
  for (const std::string& line : lines) references.push_back(absl::StrSplit(line, '\t'));
  return references;
}

}  // namespace taskmoe
