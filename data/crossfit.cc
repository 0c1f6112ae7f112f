#include "data/crossfit.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "data/python_str.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "nlohmann/json.hpp"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;
namespace ps = ::taskmoe::python_str;

absl::Status LineError(std::string_view source, size_t line, std::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat(std::string(source), ":", line, ": ", std::string(problem)));
}

// Python's universal newlines: "\n", "\r\n" and "\r" all end a line; a final line without a
// terminator still counts, an empty remainder after the last terminator does not.
std::vector<std::string_view> SplitLines(std::string_view content) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  for (size_t i = 0; i < content.size(); ++i) {
    if (content[i] != '\n' && content[i] != '\r') continue;
    lines.push_back(content.substr(start, i - start));
    if (content[i] == '\r' && i + 1 < content.size() && content[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < content.size()) lines.push_back(content.substr(start));
  return lines;
}

bool IsAllSpace(std::u32string_view text) {
  return std::all_of(text.begin(), text.end(), ps::IsSpace);
}

std::string JoinPath(const std::string& dir, std::string_view name) {
  return (fs::path(dir) / std::string(name)).string();
}

absl::Status CheckSplitName(std::string_view split) {
  if (split == "train" || split == "dev" || split == "test") return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("unknown data split \"", std::string(split),
                                                 "\"; expected train, dev or test"));
}

absl::StatusOr<std::string> TaskDirectory(const std::string& data_dir, const std::string& task) {
  const std::string task_dir = JoinPath(data_dir, task);
  if (const absl::Status directory = CheckDirectory(task_dir, "its directory"); !directory.ok()) {
    return absl::Status(directory.code(),
                        absl::StrCat("task \"", task, "\": ", directory.message()));
  }
  return task_dir;
}

absl::StatusOr<TaskFile> ReadTaskFile(const std::string& task, std::string prefix,
                                      std::string path) {
  TASKMOE_ASSIGN_OR_RETURN(std::vector<Example> examples, ReadTsv(path));
  TaskFile file;
  file.task = task;
  file.prefix = std::move(prefix);
  file.path = std::move(path);
  file.examples = std::move(examples);
  return file;
}

absl::StatusOr<std::vector<std::string>> StringList(const nlohmann::ordered_json& value,
                                                    std::string_view where) {
  if (!value.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(where), ": expected a list of task names"));
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (!value[i].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(where), "[", i, "]: expected a task name (string)"));
    }
    out.push_back(value[i].get<std::string>());
  }
  return out;
}

absl::StatusOr<nlohmann::ordered_json> ReadJsonObject(const std::string& path) {
  TASKMOE_ASSIGN_OR_RETURN(const std::string content, ReadFileBytes(path));
  nlohmann::ordered_json json = nlohmann::ordered_json::parse(content, nullptr,
                                                              /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": expected a JSON object"));
  }
  return json;
}

std::string ApplyCaseAndBos(std::string text, const FormatOptions& options) {
  if (options.lowercase) text = ps::LowerUtf8(text);
  if (options.append_another_bos) text = "<s> " + text;
  return text;
}

}  // namespace

absl::StatusOr<std::vector<Example>> ParseTsv(std::string_view content, std::string_view source) {
  std::vector<Example> examples;
  const std::vector<std::string_view> lines = SplitLines(content);
  for (size_t index = 0; index < lines.size(); ++index) {
    const size_t line_number = index + 1;
    absl::StatusOr<std::u32string> line = ps::DecodeUtf8(lines[index]);
    if (!line.ok()) return LineError(source, line_number, std::string(line.status().message()));
    if (IsAllSpace(*line)) return LineError(source, line_number, "empty line");
    // strip() would silently turn the first output into the input, so check the raw field.
    const std::u32string_view raw_input = std::u32string_view(*line).substr(0, line->find(U'\t'));
    if (IsAllSpace(raw_input)) {
      return LineError(source, line_number, "empty input (nothing before the first tab)");
    }
    const std::string stripped = ps::EncodeUtf8(ps::Strip(*line));
    std::vector<std::string> fields = absl::StrSplit(stripped, '\t');
    if (fields.size() < 2) {
      return LineError(source, line_number,
                       "no tab-separated output (expected input<TAB>output[<TAB>output...])");
    }
    Example example;
    example.input = std::move(fields[0]);
    example.outputs.assign(std::make_move_iterator(fields.begin() + 1),
                           std::make_move_iterator(fields.end()));
    examples.push_back(std::move(example));
  }
  if (examples.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(source), ": no examples"));
  }
  return examples;
}

absl::StatusOr<std::vector<Example>> ReadTsv(const std::string& path) {
  TASKMOE_ASSIGN_OR_RETURN(const std::string content, ReadFileBytes(path));
  return ParseTsv(content, path);
}

absl::StatusOr<std::vector<std::string>> ListPrefixes(const std::string& task_dir) {
  std::error_code error;
  fs::directory_iterator it(task_dir, error);
  if (error) {
    return absl::NotFoundError(absl::StrCat("cannot list ", task_dir, ": ", error.message()));
  }
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : it) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file(error) && absl::EndsWith(name, ".tsv")) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string> prefixes;
  for (const std::string& name : names) {
    const size_t last_underscore = name.rfind('_');
    const std::string prefix = last_underscore == std::string::npos ? "" : name.substr(0, last_underscore);
    if (std::find(prefixes.begin(), prefixes.end(), prefix) == prefixes.end()) {
      prefixes.push_back(prefix);
    }
  }
  return prefixes;
}

std::string TaskNameOfFile(std::string_view path) {
  const std::string name = fs::path(std::string(path)).filename().string();
  std::vector<std::string> parts = absl::StrSplit(name, '_');
  if (parts.size() <= 3) return "";
  parts.resize(parts.size() - 3);
  return absl::StrJoin(parts, "_");
}

namespace {

// Every prefix of a task directory has the same split files (train, dev, test): a prefix with
// fewer is a stray file (a copy, a leftover) that training would otherwise read as data.
absl::Status CheckPrefixesAlike(const std::string& task_dir,
                                const std::vector<std::string>& prefixes) {
  std::map<std::string, std::string> prefix_with_split;  // split -> a prefix that has it
  std::map<std::string, std::set<std::string>> splits_of;
  for (const std::string& prefix : prefixes) {
    for (const char* split : {"train", "dev", "test"}) {
      std::error_code error;
      if (fs::is_regular_file(JoinPath(task_dir, absl::StrCat(prefix, "_", split, ".tsv")),
                              error)) {
        splits_of[prefix].insert(split);
        prefix_with_split.emplace(split, prefix);
      }
    }
  }
  for (const std::string& prefix : prefixes) {
    for (const auto& [split, other] : prefix_with_split) {
      if (splits_of[prefix].count(split) > 0) continue;
      return absl::InvalidArgumentError(absl::StrCat(
          "task directory ", task_dir, " has no ", prefix, "_", split, ".tsv, while prefix ",
          other, " has ", other, "_", split, ".tsv: every prefix needs the same train, dev and "
          "test files (a stray file?)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<TaskFile>> ReadTaskFiles(const std::string& data_dir,
                                                    const std::string& task,
                                                    std::string_view split) {
  TASKMOE_RETURN_IF_ERROR(CheckSplitName(split));
  TASKMOE_ASSIGN_OR_RETURN(const std::string task_dir, TaskDirectory(data_dir, task));
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<std::string> prefixes, ListPrefixes(task_dir));
  if (prefixes.empty()) {
    return absl::NotFoundError(absl::StrCat("task directory ", task_dir, " has no *.tsv files"));
  }
  std::vector<TaskFile> files;
  for (const std::string& prefix : prefixes) {
    const std::string path =
        JoinPath(task_dir, absl::StrCat(prefix, "_", std::string(split), ".tsv"));
    std::error_code error;
    if (!fs::is_regular_file(path, error)) {
      return absl::NotFoundError(absl::StrCat("task directory ", task_dir,
                                              " has files of prefix ", prefix, " but no ",
                                              fs::path(path).filename().string()));
    }
    TASKMOE_ASSIGN_OR_RETURN(TaskFile file, ReadTaskFile(task, prefix, path));
    files.push_back(std::move(file));
  }
  TASKMOE_RETURN_IF_ERROR(CheckPrefixesAlike(task_dir, prefixes));
  return files;
}

absl::StatusOr<TaskFile> ReadPrefixTaskFile(const std::string& data_dir, const std::string& task,
                                            const std::string& prefix, std::string_view split) {
  TASKMOE_RETURN_IF_ERROR(CheckSplitName(split));
  TASKMOE_ASSIGN_OR_RETURN(const std::string task_dir, TaskDirectory(data_dir, task));
  return ReadTaskFile(task, prefix,
                      JoinPath(task_dir, absl::StrCat(prefix, "_", std::string(split), ".tsv")));
}

absl::StatusOr<TaskFile> ReadSingleTaskFile(const std::string& data_dir, const std::string& task,
                                            std::string_view split) {
  TASKMOE_RETURN_IF_ERROR(CheckSplitName(split));
  TASKMOE_ASSIGN_OR_RETURN(const std::string task_dir, TaskDirectory(data_dir, task));
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<std::string> prefixes, ListPrefixes(task_dir));
  std::vector<std::string> matching;
  for (const std::string& prefix : prefixes) {
    const std::string name = absl::StrCat(prefix, "_", std::string(split), ".tsv");
    std::error_code error;
    if (fs::is_regular_file(JoinPath(task_dir, name), error)) matching.push_back(prefix);
  }
  if (matching.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "task directory ", task_dir, " must hold exactly one *_", std::string(split),
        ".tsv file, found ", matching.size(),
        matching.empty() ? "" : absl::StrCat(" (prefixes ", absl::StrJoin(matching, ", "), ")")));
  }
  return ReadTaskFile(
      task, matching[0],
      JoinPath(task_dir, absl::StrCat(matching[0], "_", std::string(split), ".tsv")));
}

absl::StatusOr<TaskSplit> ReadTaskSplit(const std::string& path) {
  TASKMOE_ASSIGN_OR_RETURN(const nlohmann::ordered_json json, ReadJsonObject(path));
  TaskSplit split;
  split.path = path;
  const std::pair<const char*, std::vector<std::string>*> lists[] = {
      {"train", &split.train}, {"dev", &split.dev}, {"test", &split.test}, {"all", &split.all}};
  for (const auto& [key, list] : lists) {
    if (!json.contains(key)) {
      if (std::string_view(key) == "all") continue;
      return absl::InvalidArgumentError(absl::StrCat(path, ": missing the \"", key, "\" list"));
    }
    TASKMOE_ASSIGN_OR_RETURN(*list,
                             StringList(json.at(key), absl::StrCat(path, ": \"", key, "\"")));
  }
  if (!json.contains("all")) {
    std::set<std::string> seen;
    for (const std::vector<std::string>* list : {&split.train, &split.dev, &split.test}) {
      for (const std::string& task : *list) {
        if (seen.insert(task).second) split.all.push_back(task);
      }
    }
  }
  return split;
}

absl::StatusOr<std::vector<std::string>> SplitTasks(const TaskSplit& split, std::string_view list,
                                                    const std::string& data_dir) {
  const std::vector<std::string>* tasks = nullptr;
  if (list == "train") tasks = &split.train;
  if (list == "dev") tasks = &split.dev;
  if (list == "test") tasks = &split.test;
  if (list == "all") tasks = &split.all;
  if (tasks == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown split list \"", std::string(list),
                                                   "\"; expected train, dev, test or all"));
  }
  for (const std::string& task : *tasks) {
    std::error_code error;
    if (!fs::is_directory(JoinPath(data_dir, task), error)) {
      return absl::NotFoundError(absl::StrCat(split.path, " lists task \"", task, "\" under \"",
                                              std::string(list), "\", but ",
                                              JoinPath(data_dir, task), " is not a directory"));
    }
  }
  return *tasks;
}

absl::StatusOr<std::vector<TaskFile>> ReadSplitTaskFiles(const TaskSplit& split,
                                                         std::string_view list,
                                                         const std::string& data_dir,
                                                         std::string_view file_split) {
  TASKMOE_ASSIGN_OR_RETURN(std::vector<std::string> tasks, SplitTasks(split, list, data_dir));
  std::sort(tasks.begin(), tasks.end());
  tasks.erase(std::unique(tasks.begin(), tasks.end()), tasks.end());
  std::vector<TaskFile> files;
  for (const std::string& task : tasks) {
    TASKMOE_ASSIGN_OR_RETURN(std::vector<TaskFile> task_files,
                             ReadTaskFiles(data_dir, task, file_split));
    files.insert(files.end(), std::make_move_iterator(task_files.begin()),
                 std::make_move_iterator(task_files.end()));
  }
  return files;
}

std::string Ontology::CategoryOf(std::string_view task) const {
  for (const Category& category : categories) {
    for (const SubCategory& sub : category.sub_categories) {
      if (std::find(sub.tasks.begin(), sub.tasks.end(), task) != sub.tasks.end()) {
        return category.name;
      }
    }
  }
  return "";
}

std::vector<std::string> Ontology::TasksInOrder() const {
  std::vector<std::string> tasks;
  for (const Category& category : categories) {
    for (const SubCategory& sub : category.sub_categories) {
      tasks.insert(tasks.end(), sub.tasks.begin(), sub.tasks.end());
    }
  }
  return tasks;
}

absl::StatusOr<Ontology> ReadOntology(const std::string& path) {
  TASKMOE_ASSIGN_OR_RETURN(const nlohmann::ordered_json json, ReadJsonObject(path));
  Ontology ontology;
  for (const auto& [category_name, subs] : json.items()) {
    if (!subs.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": category \"", category_name, "\": expected an object of sub-categories"));
    }
    Ontology::Category category;
    category.name = category_name;
    for (const auto& [sub_name, tasks] : subs.items()) {
      TASKMOE_ASSIGN_OR_RETURN(
          std::vector<std::string> list,
          StringList(tasks, absl::StrCat(path, ": \"", category_name, "\" -> \"", sub_name, "\"")));
      category.sub_categories.push_back({sub_name, std::move(list)});
    }
    ontology.categories.push_back(std::move(category));
  }
  return ontology;
}

std::string FormatInput(std::string_view task, std::string_view input,
                        const FormatOptions& options) {
  return ApplyCaseAndBos(absl::StrCat(" [", std::string(task), "] ", std::string(input)), options);
}

std::string FormatOutput(std::string_view output, const FormatOptions& options) {
  return ApplyCaseAndBos(
      options.output_leading_space ? absl::StrCat(" ", std::string(output)) : std::string(output),
      options);
}

}  // namespace taskmoe
