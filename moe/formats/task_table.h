#ifndef TASKMOE_MOE_FORMATS_TASK_TABLE_H_
#define TASKMOE_MOE_FORMATS_TASK_TABLE_H_

#include <map>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace taskmoe {

// Task name -> task vector, stored as the original code stores it: `id2task.json`
// ({"0": "task_a", "1": "task_b", ...}) and `task_vecs.npy` (float32 [tasks, dim], row = id).
class TaskTable {
 public:
  static constexpr char kNamesFile[] = "id2task.json";
  static constexpr char kVectorsFile[] = "task_vecs.npy";

  // `names[i]` owns row i of `vectors` [tasks, dim] (converted to float32). Names must be
  // unique and non-empty.
  static absl::StatusOr<TaskTable> Create(std::vector<std::string> names, const at::Tensor& vectors);

  // Reads <directory>/id2task.json and <directory>/task_vecs.npy (float32 or float64). The ids
  // must be exactly 0..tasks-1 and match the rows of the array.
  static absl::StatusOr<TaskTable> Load(const std::string& directory);

  // The task names of an id2task.json file ({"0": name, ...}, ids exactly 0..tasks-1) in id
  // order; errors name the file.
  static absl::StatusOr<std::vector<std::string>> ReadNames(const std::string& path);

  // Writes both files into an existing `directory` (each through a temporary file).
  absl::Status Save(const std::string& directory) const;

  // Writes `names` as an id2task.json-style file ({"0": name, ...}) at `path`, through a
  // temporary file.
  static absl::Status WriteNames(const std::vector<std::string>& names, const std::string& path);

  int64_t size() const { return static_cast<int64_t>(names_.size()); }
  int64_t dim() const { return vectors_.size(1); }
  const std::vector<std::string>& names() const { return names_; }
  const std::string& name(int64_t id) const { return names_.at(id); }

  // Row of `task_name`; NotFound names the task.
  absl::StatusOr<int64_t> Id(absl::string_view task_name) const;

  // [tasks, dim] float32. The table shares this storage with whoever trains it, so Save
  // writes the current values.
  const at::Tensor& vectors() const { return vectors_; }

 private:
  TaskTable(std::vector<std::string> names, at::Tensor vectors);

  std::vector<std::string> names_;
  std::map<std::string, int64_t, std::less<>> ids_;
  at::Tensor vectors_;
};

}  // namespace taskmoe

#endif  // TASKMOE_MOE_FORMATS_TASK_TABLE_H_
