#ifndef TASKMOE_MOE_EMBEDDING_TASK_EMBEDDING_H_
#define TASKMOE_MOE_EMBEDDING_TASK_EMBEDDING_H_

// Task-embedding methods (plugins, like routing strategies): each turns a model and the tasks'
// tokenised training examples into one vector per task, stored as a TaskTable
// (id2task.json + task_vecs.npy). Methods live in task_embeddings/<name>/ and register with
// TASKMOE_REGISTER_TASK_EMBEDDING.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "data/batching.h"
#include "data/tokenizer.h"
#include "google/protobuf/any.pb.h"
#include "moe/base/registry.h"
#include "moe/formats/task_table.h"
#include "moe/model/bart.h"
#include "moe/model/batch_tensors.h"
#include "moe/model/route_weights.h"

namespace taskmoe {

// The model a method embeds with: a dense BART, or an MoE model run with average routes
// (every expert weighted 1/E, as no task has a route yet).
struct TaskEmbeddingModel {
  BartForConditionalGeneration model{nullptr};
  bool routed = false;  // false: dense, no routes
  ModelShape shape;     // layers and experts of a routed model

  // Routes for a batch of `batch` examples on `device`: uniform 1/E when routed, else
  // undefined tensors (use RoutesOrNull).
  RouteWeights AverageRoutes(int64_t batch, at::Device device) const;
};

// Loads a Hugging Face BART directory (config.json + model.safetensors) as a dense model.
absl::StatusOr<TaskEmbeddingModel> LoadDenseEmbeddingModel(const std::string& model_dir);

// What a method sees. `data.tasks` are the tasks to embed (row i of the result is task i);
// `data.examples` their tokenised training examples.
struct TaskEmbeddingInput {
  TaskEmbeddingModel* model = nullptr;  // nullptr: only methods that need no model can run
  const TokenizedDataset* data = nullptr;
  int64_t pad_id = 1;
  int64_t decoder_start_token_id = 2;
  at::Device device = at::kCPU;
  // Called after each task with the number of tasks done (progress reporting); may be empty.
  std::function<void(int64_t tasks_done)> on_task_done;
};

// Settings every method receives besides its own params.
struct TaskEmbeddingContext {
  // Requested vector size: random draws vectors of this size, fisher reduces to it with PCA;
  // methods whose size is the model's (text_emb) accept 0 or d_model. 0: the method's own size.
  int64_t dim = 0;
  uint64_t seed = 42;
};

class TaskEmbeddingMethod {
 public:
  explicit TaskEmbeddingMethod(const TaskEmbeddingContext& context) : context_(context) {}
  virtual ~TaskEmbeddingMethod() = default;

  virtual bool needs_model() const { return true; }

  // [tasks, dim] float32 on the CPU, rows in the order of input.data->tasks.
  virtual absl::StatusOr<at::Tensor> Compute(const TaskEmbeddingInput& input) = 0;

  const TaskEmbeddingContext& context() const { return context_; }

 private:
  TaskEmbeddingContext context_;
};

using TaskEmbeddingRegistry =
    Registry<TaskEmbeddingMethod, const TaskEmbeddingContext&, const google::protobuf::Any&>;

// Names of every registered method, sorted.
std::vector<std::string> RegisteredTaskEmbeddingMethods();

// A whole computation: method `method` with `params` (an Any holding the method's params
// message; empty: defaults), then optionally PCA to `pca_dim` (0: none).
struct TaskEmbeddingRequest {
  std::string method;
  google::protobuf::Any params;
  TaskEmbeddingContext context;
  int64_t pca_dim = 0;
};

// Runs the request on `input` and returns the task table (names = input.data->tasks). Errors:
// unknown method (lists the registered ones), wrong params type, a method needing a model
// without one, no tasks, a method's own errors, pca_dim larger than tasks or the vector size.
absl::StatusOr<TaskTable> ComputeTaskEmbeddings(const TaskEmbeddingRequest& request,
                                                const TaskEmbeddingInput& input);

// `vectors` [tasks, features] reduced to [tasks, dim] with PCA (moe/pca.h), float32.
absl::StatusOr<at::Tensor> PcaReduce(const at::Tensor& vectors, int64_t dim);

// The training examples of `tasks` (the files <task>_<k>_<seed>_train.tsv of every prefix),
// tokenised; dataset task i is tasks[i].
absl::StatusOr<TokenizedDataset> ReadTaskEmbeddingData(const std::string& data_dir,
                                                       const std::vector<std::string>& tasks,
                                                       const BartTokenizer& tokenizer,
                                                       const TokenizeOptions& options);

// Helpers shared by the methods.

// The examples of dataset task `task_id` as a one-task dataset (task id 0).
TokenizedDataset TaskSubset(const TokenizedDataset& data, int32_t task_id);

// Undefined-safe pointer for BART calls: &routes when routed, else nullptr.
inline const RouteWeights* RoutesOrNull(const TaskEmbeddingModel& model, const RouteWeights& routes) {
  return model.routed ? &routes : nullptr;
}

// Rows [n, d_model] pooled from one batch of examples (routes: nullptr for a dense model).
using PooledRows = std::function<at::Tensor(const BatchTensors& batch, const RouteWeights* routes)>;

// The mean of every row `pool` returns over the batches of `task_data` (a one-task dataset):
// [d_model] float32 on the CPU. Batches hold `batch_size` examples in dataset order, padded to
// their longest input (what the original's trim_batch leaves). Runs input.model in eval mode
// without gradients; its mode is restored.
at::Tensor MeanOfPooledRows(const TaskEmbeddingInput& input, const TokenizedDataset& task_data,
                            int64_t batch_size, const PooledRows& pool);

// Mean over the examples of `task_data` of the encoder's last hidden states averaged over
// non-pad tokens (MeanOfPooledRows, one row per example).
at::Tensor MeanPooledEncoderStates(const TaskEmbeddingInput& input, const TokenizedDataset& task_data,
                                   int64_t batch_size);

// Training batches of a dataset without end: epoch after epoch of MakeEpochBatches.
class BatchCycle {
 public:
  BatchCycle(const TokenizedDataset& data, const BatchOptions& options);
  const Batch& Next();

 private:
  const TokenizedDataset& data_;
  BatchOptions options_;
  int64_t epoch_ = 0;
  std::vector<Batch> batches_;
  size_t next_ = 0;
};

// Restores every parameter and buffer of a module to its value at construction (methods that
// train a model per task undo it before the next task).
class ModuleSnapshot {
 public:
  explicit ModuleSnapshot(torch::nn::Module& module);
  void Restore();

 private:
  std::vector<std::pair<at::Tensor, at::Tensor>> saved_;  // live tensor, saved copy
};

}  // namespace taskmoe

// Registers a task-embedding method in one line of its .cc:
//   TASKMOE_REGISTER_TASK_EMBEDDING("my_method", MyMethodParams, MakeMyMethod);
// where `factory(const TaskEmbeddingContext&, const Params&)` returns
// absl::StatusOr<std::shared_ptr<TaskEmbeddingMethod>>.
#define TASKMOE_REGISTER_TASK_EMBEDDING(name, Params, factory)                                \
  TASKMOE_REGISTER(::taskmoe::TaskEmbeddingRegistry, name,                                     \
                   (::taskmoe::internal::TypedParamsFactory<::taskmoe::TaskEmbeddingMethod,      \
                                                            Params,                              \
                                                            ::taskmoe::TaskEmbeddingContext>(    \
                       ::absl::StrCat("task-embedding method '", name, "'"), factory)))

#endif  // TASKMOE_MOE_EMBEDDING_TASK_EMBEDDING_H_
