#include "moe/embedding/task_embedding.h"

#include <utility>

#include "absl/strings/str_join.h"
#include "data/crossfit.h"
#include "glog/logging.h"
#include "moe/base/status_macros.h"
#include "moe/embedding/pca.h"
#include "moe/model/bart_weights.h"

namespace taskmoe {

RouteWeights TaskEmbeddingModel::AverageRoutes(int64_t batch, at::Device device) const {
  if (!routed) return {};
  const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
  return {at::full({shape.encoder_layers, batch, shape.experts}, 1.0 / shape.experts, options),
          at::full({shape.decoder_layers, batch, shape.experts}, 1.0 / shape.experts, options)};
}

absl::StatusOr<TaskEmbeddingModel> LoadDenseEmbeddingModel(const std::string& model_dir) {
  TaskEmbeddingModel result;
  TASKMOE_ASSIGN_OR_RETURN(result.model, LoadBartDirectory(model_dir));
  return result;
}

std::vector<std::string> RegisteredTaskEmbeddingMethods() {
  return TaskEmbeddingRegistry::Global().Names();
}

absl::StatusOr<at::Tensor> PcaReduce(const at::Tensor& vectors, int64_t dim) {
  if (vectors.dim() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("PCA needs task vectors [tasks, features], got ", vectors.dim(), " dimensions"));
  }
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const at::Tensor data = vectors.detach().to(at::kCPU, at::kDouble).contiguous();
  const Eigen::MatrixXd matrix = Eigen::Map<const RowMajor>(data.data_ptr<double>(), data.size(0), data.size(1));
  TASKMOE_ASSIGN_OR_RETURN(const PcaResult pca, FitPca(matrix, dim));
  at::Tensor projected = at::empty({data.size(0), dim}, at::kDouble);
  Eigen::Map<RowMajor>(projected.data_ptr<double>(), data.size(0), dim) = pca.projected;
  return projected.to(at::kFloat);
}

absl::StatusOr<TaskTable> ComputeTaskEmbeddings(const TaskEmbeddingRequest& request,
                                                const TaskEmbeddingInput& input) {
  if (input.data == nullptr || input.data->tasks.empty()) {
    return absl::InvalidArgumentError("task embeddings: no tasks to embed");
  }
  TASKMOE_ASSIGN_OR_RETURN(
      const std::shared_ptr<TaskEmbeddingMethod> method,
      TaskEmbeddingRegistry::Global().Create(request.method, request.context, request.params));
  if (method->needs_model() && input.model == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("task-embedding method '", request.method, "' needs a model; none was given"));
  }
  TASKMOE_ASSIGN_OR_RETURN(at::Tensor vectors, method->Compute(input));
  const int64_t tasks = static_cast<int64_t>(input.data->tasks.size());
  CHECK(vectors.dim() == 2 && vectors.size(0) == tasks)
      << "method '" << request.method << "' returned " << vectors.sizes() << " for " << tasks << " tasks";
  if (request.pca_dim > 0) {
    TASKMOE_ASSIGN_OR_RETURN(vectors, PcaReduce(vectors, request.pca_dim));
  }
  return TaskTable::Create(input.data->tasks, vectors);
}

absl::StatusOr<TokenizedDataset> ReadTaskEmbeddingData(const std::string& data_dir,
                                                       const std::vector<std::string>& tasks,
                                                       const BartTokenizer& tokenizer,
                                                       const TokenizeOptions& options) {
  std::vector<TaskFile> files;
  for (const std::string& task : tasks) {
    TASKMOE_ASSIGN_OR_RETURN(std::vector<TaskFile> task_files, ReadTaskFiles(data_dir, task, "train"));
    for (TaskFile& file : task_files) files.push_back(std::move(file));
  }
  TokenizedDataset data = TokenizeTaskFiles(files, tokenizer, options);
  if (data.tasks != tasks) {
    return absl::InvalidArgumentError(absl::StrCat("task list [", absl::StrJoin(tasks, ", "),
                                                   "] names a task twice"));
  }
  return data;
}

TokenizedDataset TaskSubset(const TokenizedDataset& data, int32_t task_id) {
  TokenizedDataset subset;
  subset.tasks = {data.tasks.at(task_id)};
  for (const TokenizedExample& example : data.examples) {
    if (example.task_id != task_id) continue;
    subset.examples.push_back(example);
    subset.examples.back().task_id = 0;
  }
  return subset;
}

at::Tensor MeanOfPooledRows(const TaskEmbeddingInput& input, const TokenizedDataset& task_data,
                            int64_t batch_size, const PooledRows& pool) {
  CHECK(input.model != nullptr);
  CHECK(!task_data.examples.empty()) << "task " << task_data.tasks.at(0) << " has no examples";
  BartForConditionalGeneration& model = input.model->model;
  const bool was_training = model->is_training();
  model->eval();
  at::NoGradGuard no_grad;
  BatchOptions options;
  options.batch_size = batch_size;
  options.shuffle = false;
  options.pad_id = input.pad_id;
  at::Tensor sum;
  int64_t rows = 0;
  for (const Batch& batch : MakeEpochBatches(task_data, options, /*epoch=*/0)) {
    const BatchTensors tensors = ToTensors(batch, input.decoder_start_token_id, input.device);
    const RouteWeights routes = input.model->AverageRoutes(batch.size, input.device);
    const at::Tensor pooled = pool(tensors, RoutesOrNull(*input.model, routes)).to(at::kFloat);
    rows += pooled.size(0);
    sum = sum.defined() ? sum + pooled.sum(0) : pooled.sum(0);
  }
  model->train(was_training);
  return (sum / static_cast<double>(rows)).to(at::kCPU);
}

at::Tensor MeanPooledEncoderStates(const TaskEmbeddingInput& input, const TokenizedDataset& task_data,
                                   int64_t batch_size) {
  BartForConditionalGeneration& model = input.model->model;
  return MeanOfPooledRows(
      input, task_data, batch_size, [&model](const BatchTensors& batch, const RouteWeights* routes) {
        const at::Tensor states = model->Encode(batch.input_ids, batch.attention_mask, routes);
        const at::Tensor mask = batch.attention_mask.to(at::kFloat).unsqueeze(-1);  // [B, T, 1]
        return (states.to(at::kFloat) * mask).sum(1) / mask.sum(1);                 // [B, D]
      });
}

ModuleSnapshot::ModuleSnapshot(torch::nn::Module& module) {
  for (const at::Tensor& parameter : module.parameters()) {
    saved_.emplace_back(parameter, parameter.detach().clone());
  }
  for (const at::Tensor& buffer : module.buffers()) saved_.emplace_back(buffer, buffer.detach().clone());
}

void ModuleSnapshot::Restore() {
  at::NoGradGuard no_grad;
  for (auto& [live, saved] : saved_) {
    live.copy_(saved);
    if (live.grad().defined()) live.mutable_grad() = at::Tensor();
  }
}

BatchCycle::BatchCycle(const TokenizedDataset& data, const BatchOptions& options)
    : data_(data), options_(options) {
  CHECK(!data.examples.empty());
}

const Batch& BatchCycle::Next() {
  if (next_ == batches_.size()) {
    batches_ = MakeEpochBatches(data_, options_, epoch_++);
    next_ = 0;
  }
  return batches_[next_++];
}

}  // namespace taskmoe
