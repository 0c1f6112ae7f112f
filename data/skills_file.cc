#include "data/skills_file.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "nlohmann/json.hpp"

namespace taskmoe {
namespace {

using Json = nlohmann::json;

absl::Status AddTask(const Json& task, const std::string& where, TaskSkillTable* table) {
  if (!task.is_object()) return absl::InvalidArgumentError(where + ": expected an object");
  if (!task.contains("name") || !task.at("name").is_string()) {
    return absl::InvalidArgumentError(where + ": expected a string \"name\"");
  }
  if (task.contains("split") && !task.at("split").is_string()) {
    return absl::InvalidArgumentError(where + ": expected a string \"split\"");
  }
  if (!task.contains("skills") || !task.at("skills").is_array()) {
    return absl::InvalidArgumentError(where + ": expected a \"skills\" list");
  }
  std::vector<std::string> skills;
  for (size_t i = 0; i < task.at("skills").size(); ++i) {
    const Json& skill = task.at("skills")[i];
    if (!skill.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": skills[", i, "]: expected a skill name (string)"));
    }
    skills.push_back(skill.get<std::string>());
  }
  std::sort(skills.begin(), skills.end());
  skills.erase(std::unique(skills.begin(), skills.end()), skills.end());
  const std::string name = task.at("name").get<std::string>();
  if (!table->skills.emplace(name, std::move(skills)).second) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": task \"", name, "\" is listed twice"));
  }
  if (task.value("split", std::string("train")) != "train") table->held_out.insert(name);
  return absl::OkStatus();
}

// The top-level "skills" inventory: the control skills, and every task's skills checked in it.
absl::Status ReadInventory(const Json& inventory, const std::string& path, TaskSkillTable* table) {
  if (!inventory.is_array()) return absl::InvalidArgumentError(path + ": \"skills\" is not a list");
  std::set<std::string, std::less<>> defined;
  for (size_t i = 0; i < inventory.size(); ++i) {
    const Json& skill = inventory[i];
    if (!skill.is_object() || !skill.contains("name") || !skill.at("name").is_string() ||
        (skill.contains("control") && !skill.at("control").is_boolean())) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": skills[", i, "]: expected a string \"name\" and a boolean \"control\" if any"));
    }
    const std::string name = skill.at("name").get<std::string>();
    defined.insert(name);
    if (skill.value("control", false)) table->control_skills.insert(name);
  }
  for (const auto& [task, skills] : table->skills) {
    for (const std::string& skill : skills) {
      if (defined.count(skill) == 0) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": task '", task, "' names skill \"",
                                                       skill, "\", which \"skills\" does not define"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool TaskSkillTable::IsControlTask(std::string_view task) const {
  const auto it = skills.find(task);
  if (it == skills.end()) return false;
  return std::any_of(it->second.begin(), it->second.end(),
                     [this](const std::string& skill) { return control_skills.count(skill) > 0; });
}

absl::StatusOr<TaskSkillTable> ReadSkillsJson(const std::string& path) {
  TASKMOE_ASSIGN_OR_RETURN(const std::string content, ReadFileBytes(path));
  const Json json = Json::parse(content, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object() || !json.contains("tasks") ||
      !json.at("tasks").is_array()) {
    return absl::InvalidArgumentError(
        path + ": expected a JSON object with a \"tasks\" list (a gym's skills.json)");
  }
  TaskSkillTable table;
  table.source = path;
  const Json& tasks = json.at("tasks");
  for (size_t i = 0; i < tasks.size(); ++i) {
    TASKMOE_RETURN_IF_ERROR(AddTask(tasks[i], absl::StrCat(path, ": tasks[", i, "]"), &table));
  }
  if (table.skills.empty()) return absl::InvalidArgumentError(path + ": lists no task");
  if (json.contains("skills")) {
    TASKMOE_RETURN_IF_ERROR(ReadInventory(json.at("skills"), path, &table));
  }
  return table;
}

}  // namespace taskmoe
