// Computes one vector per task with a task-embedding method and writes id2task.json +
// task_vecs.npy (the original's format, readable by numpy and by the trainer).
//
//   compute_task_embeddings --method=text_emb --model=bart-base --data_dir=data
//       --split=data/splits/random.json --output_dir=task_vecs/text_emb
//   compute_task_embeddings --method=fisher --model=out/best --data_dir=data
//       --split=data/splits/random.json --split_list=train --dim=32 --output_dir=task_vecs/fisher
//       --params='[type.googleapis.com/taskmoe.FisherEmbeddingParams] { steps: 50 }'

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "data/crossfit.h"
#include "glog/logging.h"
#include "google/protobuf/text_format.h"
#include "moe/base/progress.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "moe/embedding/task_embedding.h"
#include "moe/workflow/task_vector_table.h"
#include "tools/model_flags.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, method, "", "task-embedding method (registered: see the error of an unknown name)");
ABSL_FLAG(std::string, params, "",
          "the method's params as a text-format Any, e.g. "
          "'[type.googleapis.com/taskmoe.FisherEmbeddingParams] { steps: 50 }'; empty: defaults");
ABSL_FLAG(std::string, model_dir, "", "deprecated name of --model (a Hugging Face directory)");
ABSL_FLAG(std::string, checkpoint, "", "deprecated name of --model (a TaskMoE checkpoint)");
ABSL_FLAG(std::string, tokenizer_dir, "",
          "directory with vocab.json + merges.txt; empty: a Hugging Face --model, else "
          "<data_dir>/tokenizer");
ABSL_FLAG(std::string, data_dir, "", "CrossFit-layout data directory");
ABSL_FLAG(std::string, split, "", "split JSON file naming the tasks");
ABSL_FLAG(std::string, split_list, "all", "list of the split to embed: train, dev, test or all");
ABSL_FLAG(int64_t, dim, 0, "vector size (random), PCA target of fisher; 0: the method's own size");
ABSL_FLAG(int64_t, pca_dim, 0, "reduce the vectors of any method to this many PCA components; 0: no");
ABSL_FLAG(uint64_t, seed, 42, "random seed");
ABSL_FLAG(int64_t, max_input_length, 512, "input tokens kept per example (with <s> and </s>)");
ABSL_FLAG(int64_t, max_output_length, 64, "output tokens kept per example (with <s> and </s>)");
ABSL_FLAG(std::string, output_dir, "", "directory for id2task.json and task_vecs.npy (created)");

namespace taskmoe {
namespace {

// --model (or one of its old names); empty when none is given (methods that need no model).
absl::StatusOr<std::string> ModelDir() {
  const std::string model_dir = absl::GetFlag(FLAGS_model_dir);
  const std::string checkpoint = absl::GetFlag(FLAGS_checkpoint);
  if (!model_dir.empty() && !checkpoint.empty()) {
    return absl::InvalidArgumentError("give --model only (--model_dir and --checkpoint are its old names)");
  }
  return checkpoint.empty() ? ModelFlag("model_dir", model_dir, /*required=*/false)
                            : ModelFlag("checkpoint", checkpoint, /*required=*/false);
}

absl::StatusOr<TaskEmbeddingRequest> RequestFromFlags() {
  TaskEmbeddingRequest request;
  request.method = absl::GetFlag(FLAGS_method);
  if (!absl::GetFlag(FLAGS_params).empty() &&
      !google::protobuf::TextFormat::ParseFromString(absl::GetFlag(FLAGS_params), &request.params)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--params does not parse as a text-format Any ('[type.googleapis.com/taskmoe.<Params>] { ... }'): ",
        absl::GetFlag(FLAGS_params)));
  }
  request.context.dim = absl::GetFlag(FLAGS_dim);
  request.context.seed = absl::GetFlag(FLAGS_seed);
  request.pca_dim = absl::GetFlag(FLAGS_pca_dim);
  return request;
}

// The split's tasks, sorted (rows in sorted task order, as the original) and unique.
absl::StatusOr<std::vector<std::string>> TasksFromFlags(const std::string& data_dir) {
  TASKMOE_ASSIGN_OR_RETURN(const TaskSplit split, ReadTaskSplit(absl::GetFlag(FLAGS_split)));
  TASKMOE_ASSIGN_OR_RETURN(std::vector<std::string> tasks,
                           SplitTasks(split, absl::GetFlag(FLAGS_split_list), data_dir));
  std::sort(tasks.begin(), tasks.end());
  tasks.erase(std::unique(tasks.begin(), tasks.end()), tasks.end());
  return tasks;
}

absl::Status Run() {
  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  const std::string output_dir = absl::GetFlag(FLAGS_output_dir);
  if (absl::GetFlag(FLAGS_method).empty() || data_dir.empty() || absl::GetFlag(FLAGS_split).empty() ||
      output_dir.empty()) {
    return absl::InvalidArgumentError("--method, --data_dir, --split and --output_dir are required");
  }
  for (const auto& [flag, length] : {std::make_pair("max_input_length",
                                                    absl::GetFlag(FLAGS_max_input_length)),
                                     std::make_pair("max_output_length",
                                                    absl::GetFlag(FLAGS_max_output_length))}) {
    if (length < 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", flag, "=", length, ": must be at least 2 (<s> and </s>) and at most the "
          "model's max_position_embeddings"));
    }
  }
  TASKMOE_ASSIGN_OR_RETURN(const at::Device device, SetUpDeviceAndThreads());
  TASKMOE_ASSIGN_OR_RETURN(const std::string model_dir, ModelDir());
  TASKMOE_ASSIGN_OR_RETURN(const TaskEmbeddingRequest request, RequestFromFlags());
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<std::string> tasks, TasksFromFlags(data_dir));
  TaskVectorJob job;
  job.request = request;
  job.model_dir = model_dir;
  job.tokenizer_dir = absl::GetFlag(FLAGS_tokenizer_dir);
  job.data_dir = data_dir;
  job.tasks = tasks;
  job.tokenize.max_input_length = absl::GetFlag(FLAGS_max_input_length);
  job.tokenize.max_output_length = absl::GetFlag(FLAGS_max_output_length);
  job.device = device;
  ProgressOptions progress_options;
  progress_options.total_steps = static_cast<int64_t>(tasks.size());
  ProgressReporter progress(progress_options);
  job.on_task_done = [&progress](int64_t tasks_done) { progress.Update(tasks_done, 0, 0, 0); };
  absl::StatusOr<TaskTable> table = ComputeTaskVectorTable(job);
  progress.Finish();
  if (!table.ok()) return table.status();

  TASKMOE_RETURN_IF_ERROR(CreateDirectories(output_dir));
  TASKMOE_RETURN_IF_ERROR(table->Save(output_dir));
  std::cout << "wrote " << table->size() << " task vectors of size " << table->dim() << " to "
            << output_dir << "/{" << TaskTable::kNamesFile << "," << TaskTable::kVectorsFile << "}"
            << std::endl;
  return absl::OkStatus();
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "compute_task_embeddings";
  tool.runs_models = true;
  tool.usage =
      "Computes one vector per task with a task-embedding method (id2task.json + task_vecs.npy).";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
