#ifndef TASKMOE_DATA_SKILLS_FILE_H_
#define TASKMOE_DATA_SKILLS_FILE_H_

// A skill gym's skills.json (written by data/gym/gym_writer.h) as the analyses read it: each
// task's skills, which tasks were held out of training, and which skills are controls (taught
// by no train task). Plain C++ (no LibTorch).

#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace taskmoe {

struct TaskSkillTable {
  std::string source;  // names the table in errors
  std::map<std::string, std::vector<std::string>, std::less<>> skills;  // sorted, unique
  std::set<std::string, std::less<>> held_out;
  std::set<std::string, std::less<>> control_skills;

  // Whether one of the task's skills is a control skill (false for an unknown task).
  bool IsControlTask(std::string_view task) const;
};

// Reads "tasks" (each with a string "name", a list "skills" of skill names and an optional
// "split": anything but "train" is held out) and, when present, "skills" (each with a string
// "name" and an optional boolean "control"; every task's skills must then be listed there).
// Errors name the file and the entry at fault.
absl::StatusOr<TaskSkillTable> ReadSkillsJson(const std::string& path);

}  // namespace taskmoe

#endif  // TASKMOE_DATA_SKILLS_FILE_H_
