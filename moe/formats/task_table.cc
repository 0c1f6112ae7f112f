#include "moe/formats/task_table.h"

#include <set>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "moe/formats/npy.h"

namespace taskmoe {

TaskTable::TaskTable(std::vector<std::string> names, at::Tensor vectors)
    : names_(std::move(names)), vectors_(std::move(vectors)) {
  for (int64_t i = 0; i < size(); ++i) ids_.emplace(names_[i], i);
}

absl::StatusOr<TaskTable> TaskTable::Create(std::vector<std::string> names, const at::Tensor& vectors) {
  if (!vectors.defined() || vectors.dim() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "task vectors must be a [tasks, dim] matrix, got ",
        vectors.defined() ? absl::StrCat(vectors.dim(), " dimensions") : "an undefined tensor"));
  }
  if (vectors.size(0) != static_cast<int64_t>(names.size())) {
    return absl::InvalidArgumentError(absl::StrCat("task vectors have ", vectors.size(0), " rows for ",
                                                   names.size(), " task names"));
  }
  if (!at::isFloatingType(vectors.scalar_type())) {
    return absl::InvalidArgumentError("task vectors must be floating point");
  }
  std::set<std::string> seen;
  for (const std::string& name : names) {
    if (name.empty()) return absl::InvalidArgumentError("task names must not be empty");
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat("task '", name, "' appears twice"));
    }
  }
  const at::Tensor finite_rows = at::isfinite(vectors).all(1).to(at::kCPU);
  for (size_t row = 0; row < names.size(); ++row) {
    if (!finite_rows[row].item<bool>()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the vector of task '", names[row], "' (row ", row, ") holds NaN or infinite values"));
    }
  }
  return TaskTable(std::move(names), vectors.to(at::kFloat).contiguous());
}

absl::StatusOr<std::vector<std::string>> TaskTable::ReadNames(const std::string& path) {
  TASKMOE_ASSIGN_OR_RETURN(const std::string text, ReadFileBytes(path));
  const nlohmann::json id2task = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (id2task.is_discarded() || !id2task.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": expected a JSON object {\"0\": \"task name\", ...}"));
  }
  std::vector<std::string> names(id2task.size());
  std::vector<bool> filled(id2task.size(), false);
  for (const auto& [key, value] : id2task.items()) {
    int64_t id;
    if (!absl::SimpleAtoi(key, &id) || id < 0 || id >= static_cast<int64_t>(names.size()) ||
        absl::StrCat(id) != key) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": key \"", key,
                                                     "\" is not a task id in [0, ", names.size(), ")"));
    }
    if (!value.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": task ", key, " is not a string"));
    }
    names[id] = value.get<std::string>();
    filled[id] = true;
  }
  for (size_t id = 0; id < filled.size(); ++id) {
    if (!filled[id]) return absl::InvalidArgumentError(absl::StrCat(path, ": task id ", id, " is missing"));
  }
  return names;
}

absl::StatusOr<TaskTable> TaskTable::Load(const std::string& directory) {
  const std::string names_path = absl::StrCat(directory, "/", kNamesFile);
  const std::string vectors_path = absl::StrCat(directory, "/", kVectorsFile);
  TASKMOE_ASSIGN_OR_RETURN(std::vector<std::string> names, ReadNames(names_path));
  TASKMOE_ASSIGN_OR_RETURN(const at::Tensor vectors, ReadNpy(vectors_path));
  if (vectors.dim() != 2 || vectors.size(0) != static_cast<int64_t>(names.size()) ||
      !at::isFloatingType(vectors.scalar_type())) {
    return absl::InvalidArgumentError(absl::StrCat(
        vectors_path, ": expected a float [", names.size(), ", dim] array (one row per task in ",
        kNamesFile, "), got ", c10::toString(vectors.scalar_type()), " of shape [",
        absl::StrJoin(vectors.sizes(), ", "), "]"));
  }
  absl::StatusOr<TaskTable> table = Create(std::move(names), vectors);
  if (!table.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(vectors_path, " with ", names_path, ": ", table.status().message()));
  }
  return table;
}

absl::Status TaskTable::WriteNames(const std::vector<std::string>& names,
                                   const std::string& path) {
  nlohmann::json id2task = nlohmann::json::object();
  for (size_t i = 0; i < names.size(); ++i) id2task[absl::StrCat(i)] = names[i];
  return WriteFileAtomically(path, id2task.dump());
}

absl::Status TaskTable::Save(const std::string& directory) const {
  TASKMOE_RETURN_IF_ERROR(WriteNames(names_, absl::StrCat(directory, "/", kNamesFile)));
  return WriteNpy(absl::StrCat(directory, "/", kVectorsFile), vectors_.to(at::kFloat));
}

absl::StatusOr<int64_t> TaskTable::Id(absl::string_view task_name) const {
  auto it = ids_.find(task_name);
  if (it == ids_.end()) {
    return absl::NotFoundError(absl::StrCat("task '", task_name, "' is not in the task table (",
                                            size(), " tasks)"));
  }
  return it->second;
}

}  // namespace taskmoe
