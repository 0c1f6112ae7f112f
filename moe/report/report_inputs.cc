#include "moe/report/report_inputs.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "moe/base/file_io.h"

namespace taskmoe {

std::optional<std::string> ReportInputs::ReadIfPresent(const std::string& path,
                                                       absl::string_view what) {
  if (!std::filesystem::exists(path)) {
    notes.push_back(absl::StrCat(what, ": left out, no ", path));
    return std::nullopt;
  }
  absl::StatusOr<std::string> bytes = ReadFileBytes(path);
  if (!NoteUnless(bytes.status(), what)) return std::nullopt;
  files.push_back(path);
  return *std::move(bytes);
}

bool ReportInputs::NoteUnless(const absl::Status& status, absl::string_view what) {
  if (status.ok()) return true;
  notes.push_back(absl::StrCat(what, ": left out, ", status.message()));
  return false;
}

}  // namespace taskmoe
