// Evaluation only (no training): any model — a TaskMoE checkpoint of any routing plugin, a dense
// checkpoint, or a Hugging Face BART directory — predicts the dev and test files of every
// few-shot prefix of a list of tasks and writes <output_dir>/<task>/result.csv (one `_best` row
// per prefix, lr and bsz 0, readable by tools/aggregate_results) and each run's predictions.
// With a checkpoint, each task is routed by the checkpoint's router from the task's vector: the
// paper's zero-shot transfer when the tasks are held out.
//
//   bazel run //tools:evaluate_tasks -- --model=runs/moe/best --split_list=test
//       --task_vectors=runs/vectors --output_dir=runs/zero_shot_moe
//   bazel run //tools:evaluate_tasks -- --model=runs/moe/best --split_list=test
//       --task_embedding=text_emb --embedding_model=runs/dense/best --output_dir=runs/zs_moe
//   bazel run //tools:evaluate_tasks -- --model=runs/dense/best --split_list=test
//       --output_dir=runs/zero_shot_dense
//   bazel run //tools:aggregate_results -- --results=runs/zero_shot_moe
//       --baseline=runs/zero_shot_dense
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "moe/workflow/finetune.h"
#include "moe/workflow/task_vector_table.h"
#include "tools/finetune_flags.h"
#include "tools/model_flags.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, task_embedding, "",
          "Instead of --task_vectors: compute the tasks' vectors with this task-embedding method "
          "(text_emb, fisher, ...) over their training files, into <output_dir>/task_vectors.");
ABSL_FLAG(std::string, task_embedding_params, "",
          "The method's params as a text-format Any, e.g. "
          "'[type.googleapis.com/taskmoe.TextEmbeddingParams] { batch_size: 8 }'.");
ABSL_FLAG(std::string, embedding_model, "",
          "Model the method embeds with (TaskMoE checkpoint or Hugging Face directory); empty: "
          "--model. Use the model that embedded the tasks the router was trained on.");
ABSL_FLAG(std::string, expert_mask, "",
          "Experts to switch off in the checkpoint-inherited routes, e.g. 'enc0:1,dec1:0' or '*:2' "
          "(an ablation; the format of routing.eval_expert_mask).");
ABSL_FLAG(int64_t, embedding_dim, 0,
          "Vector size of methods that take one (random's size, fisher's PCA target); 0: the "
          "method's own.");
ABSL_FLAG(int64_t, embedding_pca_dim, 0, "Reduce the computed vectors with PCA (0: no).");

namespace taskmoe {
namespace {

// --task_embedding: the listed tasks' vectors, saved under the output directory.
absl::StatusOr<std::string> ComputeVectors(const FinetuneOptions& options) {
  TaskVectorJob job;
  job.request.method = absl::GetFlag(FLAGS_task_embedding);
  const std::string params = absl::GetFlag(FLAGS_task_embedding_params);
  if (!params.empty() &&
      !google::protobuf::TextFormat::ParseFromString(params, &job.request.params)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--task_embedding_params does not parse as a text-format Any: ", params));
  }
  job.request.context.seed = static_cast<uint64_t>(options.base.training().seed());
  job.request.context.dim = absl::GetFlag(FLAGS_embedding_dim);
  job.request.pca_dim = absl::GetFlag(FLAGS_embedding_pca_dim);
  job.model_dir = absl::GetFlag(FLAGS_embedding_model);
  if (job.model_dir.empty()) job.model_dir = absl::GetFlag(FLAGS_model);
  job.data_dir = options.base.data().data_dir();
  job.tasks = options.tasks;
  job.tokenize.max_input_length = options.base.data().max_input_length();
  job.tokenize.max_output_length = options.base.data().max_output_length();
  TASKMOE_ASSIGN_OR_RETURN(job.device, SetUpDeviceAndThreads());
  TASKMOE_ASSIGN_OR_RETURN(const TaskTable table, ComputeTaskVectorTable(job));
  const std::string dir = options.output_dir + "/task_vectors";
  TASKMOE_RETURN_IF_ERROR(CreateDirectories(dir));
  TASKMOE_RETURN_IF_ERROR(table.Save(dir));
  return dir;
}

absl::Status Run(std::vector<std::string> set_overrides) {
  set_overrides.push_back("training.total_steps=0");
  TASKMOE_ASSIGN_OR_RETURN(FinetuneOptions options, FinetuneOptionsFromFlags(set_overrides));
  options.inherited_expert_mask = absl::GetFlag(FLAGS_expert_mask);
  if (options.output_dir.empty()) return absl::InvalidArgumentError("--output_dir is required");
  if (!absl::GetFlag(FLAGS_task_embedding).empty()) {
    if (!options.task_vectors_dir.empty()) {
      return absl::InvalidArgumentError("give --task_vectors or --task_embedding, not both");
    }
    TASKMOE_ASSIGN_OR_RETURN(options.task_vectors_dir, ComputeVectors(options));
  }
  TASKMOE_ASSIGN_OR_RETURN(const FinetuneReport report, FinetuneTasks(options));
  PrintFinetuneReport(options, report);
  return absl::OkStatus();
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "evaluate_tasks";
  tool.runs_models = true;
  tool.usage =
      "Evaluates a model on the dev and test files of a list of tasks without training "
      "(zero-shot routes for a checkpoint's unseen tasks).";
  tool.config_overrides = true;
  tool.log_files = true;
  return taskmoe::RunTool(argc, argv, tool, taskmoe::Run);
}
