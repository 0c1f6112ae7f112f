#ifndef TASKMOE_MOE_REPORT_REPORT_INPUTS_H_
#define TASKMOE_MOE_REPORT_REPORT_INPUTS_H_

// What a report read and what it had to leave out: the files it read (so that it never writes
// over one of them) and one note per missing or unreadable piece (shown in the report).

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace taskmoe {

struct ReportInputs {
  std::vector<std::string> files;  // every file read, as named when read
  std::vector<std::string> notes;  // what the report leaves out, and why

  // The bytes of `path` (recorded as read) when it exists and reads; otherwise nullopt and a
  // note that `what` is left out.
  std::optional<std::string> ReadIfPresent(const std::string& path, absl::string_view what);

  // Records a note that `what` is left out because of `status`, unless `status` is OK; returns
  // whether it was OK.
  bool NoteUnless(const absl::Status& status, absl::string_view what);
};

}  // namespace taskmoe

#endif  // TASKMOE_MOE_REPORT_REPORT_INPUTS_H_
