// id2task.json: TaskTable::ReadNames on arbitrary bytes; names it accepts must survive
// TaskTable::WriteNames and ReadNames.

#include <string>
#include <vector>

#include <glog/logging.h>

#include "moe/formats/task_table.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using taskmoe::TaskTable;
  const std::string path = taskmoe::fuzzing::WriteScratchFile(
      TaskTable::kNamesFile, taskmoe::fuzzing::AsText(data, size));
  const absl::StatusOr<std::vector<std::string>> names = TaskTable::ReadNames(path);
  if (!names.ok()) return 0;
  const std::string written = taskmoe::fuzzing::WriteScratchFile("written.json", "");
  const absl::Status write = TaskTable::WriteNames(*names, written);
  CHECK(write.ok()) << write;
  const absl::StatusOr<std::vector<std::string>> again = TaskTable::ReadNames(written);
  CHECK(again.ok()) << again.status();
  CHECK(*again == *names);
  return 0;
}
