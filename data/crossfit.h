#ifndef TASKMOE_DATA_CROSSFIT_H_
#define TASKMOE_DATA_CROSSFIT_H_

// Reader for CrossFit's "NLP Few-shot Gym" layout, as the original loaders read it:
//   <data_dir>/<task>/<task>_<k>_<seed>_{train,dev,test}.tsv, one example per line,
//   "input<TAB>output[<TAB>output...]", plus split JSON files and the task ontology.
// Each line is read as Python's line.strip().split("\t") (universal newlines, so CRLF works);
// input formatting is the original's " [task] input" with outputs given a leading space.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace taskmoe {

struct Example {
  std::string input;
  // Every valid output (the fields after the input); never empty.
  std::vector<std::string> outputs;
};

// The examples of one TSV file of a task.
struct TaskFile {
  std::string task;    // the task directory's name, e.g. "glue-cola"
  std::string prefix;  // e.g. "glue-cola_16_100"
  std::string path;
  std::vector<Example> examples;
};

// Parses TSV text. Errors name `source`, the 1-based line and the problem: invalid UTF-8, an
// empty line, an empty input, a line without a tab-separated output, or no examples at all.
absl::StatusOr<std::vector<Example>> ParseTsv(std::string_view content, std::string_view source);
absl::StatusOr<std::vector<Example>> ReadTsv(const std::string& path);

// Prefixes of the *.tsv files of a task directory as the original discovers them: sorted file
// names, prefix = the name without its last "_"-separated part, in first-seen order (so seed
// 100 comes before 13).
absl::StatusOr<std::vector<std::string>> ListPrefixes(const std::string& task_dir);

// The task of a file named <task>_<k>_<seed>_<split>.tsv (the original's
// "_".join(basename.split("_")[:-3])); "" when the name has fewer parts.
std::string TaskNameOfFile(std::string_view path);

// `split` is "train", "dev" or "test". Reads <prefix>_<split>.tsv of every prefix of
// <data_dir>/<task>, in discovery order (upstream training and per-prefix fine-tuning).
// Errors: no directory for the task, no *.tsv in it, a prefix without the requested file, a
// prefix without a split file the others have (a stray file, which would otherwise be read as
// data).
absl::StatusOr<std::vector<TaskFile>> ReadTaskFiles(const std::string& data_dir,
                                                    const std::string& task,
                                                    std::string_view split);
// <data_dir>/<task>/<prefix>_<split>.tsv alone (a few-shot run of one prefix). Errors: no
// directory for the task, no such file.
absl::StatusOr<TaskFile> ReadPrefixTaskFile(const std::string& data_dir, const std::string& task,
                                            const std::string& prefix, std::string_view split);
// The one *_<split>.tsv of a task directory (evaluation data); an error if there are none or
// several.
absl::StatusOr<TaskFile> ReadSingleTaskFile(const std::string& data_dir, const std::string& task,
                                            std::string_view split);

// A split file like CrossFit's custom_tasks_splits/*.json. `all` is the file's own list when
// present, else train + dev + test in order without repeats. A task may appear in several lists
// (train_non_nli_test_nli.json has "sick" in train and dev); lists may be empty.
struct TaskSplit {
  std::string path;
  std::vector<std::string> train, dev, test, all;
};
absl::StatusOr<TaskSplit> ReadTaskSplit(const std::string& path);

// The tasks of one list ("train", "dev", "test" or "all") of a split, each checked to have a
// directory under data_dir; the error names the split file, the list and the task.
absl::StatusOr<std::vector<std::string>> SplitTasks(const TaskSplit& split, std::string_view list,
                                                    const std::string& data_dir);

// Every file of `file_split` ("train", "dev" or "test") of every task of a split list, tasks in
// sorted order and each task's prefixes in discovery order, as CrossTaskMoE's upstream loader
// reads split["train"]. Errors as SplitTasks and ReadTaskFiles.
absl::StatusOr<std::vector<TaskFile>> ReadSplitTaskFiles(const TaskSplit& split,
                                                         std::string_view list,
                                                         const std::string& data_dir,
                                                         std::string_view file_split);

// ontology.json: category -> sub-category -> task names, file order kept.
struct Ontology {
  struct SubCategory {
    std::string name;
    std::vector<std::string> tasks;
  };
  struct Category {
    std::string name;
    std::vector<SubCategory> sub_categories;
  };
  std::vector<Category> categories;

  // Category name of a task, or "" when the ontology does not list it.
  std::string CategoryOf(std::string_view task) const;
  // All tasks, category by category (the order of route heatmaps).
  std::vector<std::string> TasksInOrder() const;
};
absl::StatusOr<Ontology> ReadOntology(const std::string& path);

// How the originals turn an example into model text.
struct FormatOptions {
  bool lowercase = false;             // --do_lowercase, applied after the formatting
  bool append_another_bos = false;    // --append_another_bos: "<s> " before inputs and outputs
  bool output_leading_space = true;   // false only in CrossFit's single-task loader
};
// " [" + task + "] " + input (then lowercased / "<s> " as the options say).
std::string FormatInput(std::string_view task, std::string_view input,
                        const FormatOptions& options);
// " " + output (then lowercased / "<s> " as the options say).
std::string FormatOutput(std::string_view output, const FormatOptions& options);

}  // namespace taskmoe

#endif  // TASKMOE_DATA_CROSSFIT_H_
