// Few-shot fine-tuning of a list of tasks over a learning-rate x batch-size grid, every few-shot
// prefix of each task, writing <output_dir>/<task>/result.csv in the original's format
// (moe/workflow/finetune.h). Rerunning skips finished prefixes.
//
//   bazel run //tools:finetune_tasks -- --model=runs/stage_two/best --split_list=test
//       --output_dir=runs/finetune_moe --learning_rates=1e-4,5e-4 --batch_sizes=8
//   bazel run //tools:finetune_tasks -- --model=runs/moe/best --routing=average
//       --tasks=span-max,dedupe-sort --output_dir=runs/finetune_avg
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "data/crossfit.h"
#include "data/results.h"
#include "moe/train/experiment_config.h"
#include "moe/workflow/finetune.h"
#include "tools/experiment_flags.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, config, "configs/pipeline/finetune.pbtxt",
          "Template of every run (text-format taskmoe.ExperimentConfig): data, training, "
          "evaluation; override fields with --set=path=value (repeatable).");
ABSL_FLAG(std::string, set, "", "An override path=value of the config; repeat for several.");
ABSL_FLAG(std::string, routing, "",
          "Routing plugin for the new tasks (average, task_random, fixed, ...; params with "
          "--set=routing.params=...). Empty: a checkpoint's route for each task from its task "
          "vector and the checkpoint's router; average for a Hugging Face model.");
ABSL_FLAG(std::string, task_vectors, "",
          "Directory with id2task.json + task_vecs.npy holding vectors for the tasks (e.g. from "
          "tools/compute_task_embeddings). Empty: the checkpoint's table.");
ABSL_FLAG(std::string, tasks, "", "Comma-separated tasks to fine-tune.");
ABSL_FLAG(std::string, split_list, "",
          "Instead of --tasks: the tasks of this list (train, dev, test, all) of the data's split "
          "file (data.split, else <data_dir>/split.json).");
ABSL_FLAG(int, max_prefixes, 0,
          "Fine-tune only the first N few-shot prefixes of each task (0: all, as the original).");
ABSL_FLAG(std::string, learning_rates, "1e-5,2e-5,5e-5", "Comma-separated learning rates.");
ABSL_FLAG(std::string, batch_sizes, "2,4,8", "Comma-separated batch sizes.");
ABSL_FLAG(std::string, output_dir, "", "Where <task>/result.csv and the runs go.");
ABSL_FLAG(bool, keep_checkpoints, false, "Keep every run's best/last checkpoints.");

namespace taskmoe {
namespace {

template <typename T>
bool ParseList(const std::string& text, bool (*parse)(absl::string_view, T*),
               std::vector<T>* values) {
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    T value;
    if (!parse(item, &value)) return false;
    values->push_back(value);
  }
  return true;
}

bool ParseDouble(absl::string_view text, double* value) { return absl::SimpleAtod(text, value); }
bool ParseInt(absl::string_view text, int* value) { return absl::SimpleAtoi(text, value); }

// The initial model is --model (a TaskMoE checkpoint, dense = 1 expert, or a Hugging Face BART
// directory); without it, the config's model section.
absl::Status Run(const std::vector<std::string>& set_overrides) {
  std::vector<std::string> overrides = WithExperimentFlagOverrides(set_overrides);
  if (!absl::GetFlag(FLAGS_routing).empty()) {
    overrides.push_back("routing.plugin=" + absl::GetFlag(FLAGS_routing));
  }
  absl::StatusOr<ExperimentConfig> config =
      LoadExperimentConfig(absl::GetFlag(FLAGS_config), overrides);
  if (!config.ok()) return config.status();
  // A model that is not a TaskMoE checkpoint has no routes to inherit: average routing.
  if (!config->model().has_checkpoint() && !config->has_routing()) {
    config->mutable_routing()->set_plugin("average");
  }

  FinetuneOptions options;
  options.base = *config;
  options.task_vectors_dir = absl::GetFlag(FLAGS_task_vectors);
  options.max_prefixes = absl::GetFlag(FLAGS_max_prefixes);
  options.output_dir = absl::GetFlag(FLAGS_output_dir);
  options.keep_checkpoints = absl::GetFlag(FLAGS_keep_checkpoints);
  const std::string split_list = absl::GetFlag(FLAGS_split_list);
  if (!absl::GetFlag(FLAGS_tasks).empty() == !split_list.empty()) {
    return absl::InvalidArgumentError("give exactly one of --tasks and --split_list");
  }
  if (!split_list.empty()) {
    const std::string& data_dir = config->data().data_dir();
    const std::string split_path =
        config->data().split().empty() ? data_dir + "/split.json" : config->data().split();
    absl::StatusOr<TaskSplit> split = ReadTaskSplit(split_path);
    if (!split.ok()) return split.status();
    absl::StatusOr<std::vector<std::string>> tasks =
        SplitTasks(*split, split_list, data_dir);
    if (!tasks.ok()) return tasks.status();
    options.tasks = *tasks;
  } else {
    options.tasks = absl::StrSplit(absl::GetFlag(FLAGS_tasks), ',', absl::SkipWhitespace());
  }
  if (!ParseList(absl::GetFlag(FLAGS_learning_rates), ParseDouble, &options.learning_rates)) {
    return absl::InvalidArgumentError("--learning_rates: expected comma-separated numbers");
  }
  if (!ParseList(absl::GetFlag(FLAGS_batch_sizes), ParseInt, &options.batch_sizes)) {
    return absl::InvalidArgumentError("--batch_sizes: expected comma-separated integers");
  }

  absl::StatusOr<FinetuneReport> report = FinetuneTasks(options);
  if (!report.ok()) return report.status();
  std::cout << absl::StrFormat("%d runs trained, %d reused, %d finished prefixes skipped\n",
                               report->runs_trained, report->runs_reused,
                               report->prefixes_skipped);
  for (size_t t = 0; t < options.tasks.size(); ++t) {
    std::cout << options.tasks[t] << ": " << options.output_dir << "/" << options.tasks[t]
              << "/result.csv\n";
    for (const FinetuneResult& row : report->results[t]) {
      if (!absl::EndsWith(row.prefix, kBestRowSuffix)) continue;
      std::cout << absl::StrFormat("  %s lr %s bsz %d: dev %.4f, test %.4f\n", row.prefix,
                                   PythonFloatRepr(row.lr), row.bsz, row.dev_performance,
                                   row.test_performance);
    }
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "finetune_tasks";
  tool.runs_models = true;
  tool.usage = "Few-shot fine-tuning of a list of tasks over a learning-rate x batch-size grid.";
  tool.config_overrides = true;
  tool.log_files = true;
  return taskmoe::RunTool(argc, argv, tool, taskmoe::Run);
}
