#include "tools/finetune_flags.h"

#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "data/crossfit.h"
#include "data/results.h"
#include "moe/base/status_macros.h"
#include "moe/train/experiment_config.h"
#include "tools/experiment_flags.h"

ABSL_FLAG(std::string, config, "configs/pipeline/finetune.pbtxt",
          "Template of every run (text-format taskmoe.ExperimentConfig): data, training, "
          "evaluation; override fields with --set=path=value (repeatable).");
ABSL_FLAG(std::string, set, "", "An override path=value of the config; repeat for several.");
ABSL_FLAG(std::string, routing, "",
          "Routing plugin for the tasks (average, task_random, fixed, ...; params with "
          "--set=routing.params=...). Empty: a checkpoint's route for each task from its task "
          "vector and the checkpoint's router; average for a Hugging Face model.");
ABSL_FLAG(std::string, task_vectors, "",
          "Directory with id2task.json + task_vecs.npy holding vectors for the tasks (e.g. from "
          "tools/compute_task_embeddings). Empty: the checkpoint's table.");
ABSL_FLAG(std::string, tasks, "", "Comma-separated tasks.");
ABSL_FLAG(std::string, split_list, "",
          "Instead of --tasks: the tasks of this list (train, dev, test, all) of the data's split "
          "file (data.split, else <data_dir>/split.json).");
ABSL_FLAG(int, max_prefixes, 0,
          "Only the first N few-shot prefixes of each task (0: all, as the original).");
ABSL_FLAG(std::string, output_dir, "", "Where <task>/result.csv and the runs go.");

namespace taskmoe {
namespace {

absl::StatusOr<std::vector<std::string>> TasksFromFlags(const ExperimentConfig& config) {
  const std::string split_list = absl::GetFlag(FLAGS_split_list);
  if (!absl::GetFlag(FLAGS_tasks).empty() == !split_list.empty()) {
    return absl::InvalidArgumentError("give exactly one of --tasks and --split_list");
  }
  if (split_list.empty()) {
    return std::vector<std::string>(
        absl::StrSplit(absl::GetFlag(FLAGS_tasks), ',', absl::SkipWhitespace()));
  }
  const std::string& data_dir = config.data().data_dir();
  const std::string split_path =
      config.data().split().empty() ? data_dir + "/split.json" : config.data().split();
  TASKMOE_ASSIGN_OR_RETURN(const TaskSplit split, ReadTaskSplit(split_path));
  return SplitTasks(split, split_list, data_dir);
}

}  // namespace

absl::StatusOr<FinetuneOptions> FinetuneOptionsFromFlags(
    const std::vector<std::string>& set_overrides) {
  std::vector<std::string> overrides = WithExperimentFlagOverrides(set_overrides);
  if (!absl::GetFlag(FLAGS_routing).empty()) {
    overrides.push_back("routing.plugin=" + absl::GetFlag(FLAGS_routing));
  }
  TASKMOE_ASSIGN_OR_RETURN(ExperimentConfig config,
                           LoadExperimentConfig(absl::GetFlag(FLAGS_config), overrides));
  // A model that is not a TaskMoE checkpoint has no routes to inherit: average routing.
  if (!config.model().has_checkpoint() && !config.has_routing()) {
    config.mutable_routing()->set_plugin("average");
  }
  FinetuneOptions options;
  options.base = config;
  options.task_vectors_dir = absl::GetFlag(FLAGS_task_vectors);
  options.max_prefixes = absl::GetFlag(FLAGS_max_prefixes);
  options.output_dir = absl::GetFlag(FLAGS_output_dir);
  TASKMOE_ASSIGN_OR_RETURN(options.tasks, TasksFromFlags(config));
  return options;
}

void PrintFinetuneReport(const FinetuneOptions& options, const FinetuneReport& report) {
  std::cout << absl::StrFormat("%d runs done, %d reused, %d finished prefixes skipped\n",
                               report.runs_trained, report.runs_reused, report.prefixes_skipped);
  for (size_t t = 0; t < options.tasks.size(); ++t) {
    std::cout << options.tasks[t] << ": " << options.output_dir << "/" << options.tasks[t]
              << "/result.csv\n";
    for (const FinetuneResult& row : report.results[t]) {
      if (!absl::EndsWith(row.prefix, kBestRowSuffix)) continue;
      std::cout << absl::StrFormat("  %s lr %s bsz %d: dev %.4f, test %.4f\n", row.prefix,
                                   PythonFloatRepr(row.lr), row.bsz, row.dev_performance,
                                   row.test_performance);
    }
  }
}

}  // namespace taskmoe
