#ifndef TASKMOE_MOE_WORKFLOW_TASK_VECTOR_TABLE_H_
#define TASKMOE_MOE_WORKFLOW_TASK_VECTOR_TABLE_H_

// Task vectors of named tasks computed with a task-embedding method over their training files:
// what tools/compute_task_embeddings writes, and what tools/evaluate_tasks computes for tasks a
// checkpoint has never seen (zero-shot routes from the checkpoint's router).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "data/tokenizer.h"
#include "moe/embedding/task_embedding.h"
#include "moe/formats/task_table.h"

namespace taskmoe {

struct TaskVectorJob {
  TaskEmbeddingRequest request;
  // The model the method embeds with: a TaskMoE checkpoint (run with average routes) or a
  // Hugging Face BART directory. Empty: only methods that need no model (random).
  std::string model_dir;
  // vocab.json + merges.txt. Empty: a Hugging Face model_dir, else <data_dir>/tokenizer.
  std::string tokenizer_dir;
  std::string data_dir;  // CrossFit layout: <data_dir>/<task>/<task>_<k>_<seed>_train.tsv
  std::vector<std::string> tasks;
  TokenizeOptions tokenize;
  at::Device device = at::kCPU;
  // Called after each task with the number of tasks done; may be empty.
  std::function<void(int64_t tasks_done)> on_task_done;
};

// The table of job.tasks (rows in that order). Errors: an unreadable model, tokenizer or data
// file (named), a tokenizer larger than the model's vocabulary, the method's own errors.
absl::StatusOr<TaskTable> ComputeTaskVectorTable(const TaskVectorJob& job);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_WORKFLOW_TASK_VECTOR_TABLE_H_
