#include "moe/train/task_vectors.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "moe/base/status_macros.h"
#include "moe/embedding/task_embedding.h"
#include "moe/formats/task_table.h"

namespace taskmoe {
namespace {

RunTaskVectors FromTable(const TaskTable& table, std::string source) {
  return {table.names(), table.vectors(), std::move(source)};
}

absl::StatusOr<RunTaskVectors> Embedded(const ExperimentConfig& config,
                                        const ExperimentData& data, MoeBart& model,
                                        at::Device device) {
  const TaskVectorConfig& tv = config.task_vectors();
  TaskEmbeddingModel embedding_model{model.model(), /*routed=*/true, model.shape()};
  TaskEmbeddingInput input;
  input.model = &embedding_model;
  input.data = &data.train.tokens;
  input.pad_id = model.config().pad_token_id;
  input.decoder_start_token_id = model.config().decoder_start_token_id;
  input.device = device;
  TaskEmbeddingRequest request;
  request.method = tv.method().name();
  request.params = tv.method().params();
  request.context.dim = tv.dim();
  request.context.seed = static_cast<uint64_t>(config.training().seed());
  request.pca_dim = tv.method().pca_dim();
  absl::StatusOr<TaskTable> table = ComputeTaskEmbeddings(request, input);
  if (!table.ok()) {
    return absl::Status(table.status().code(), absl::StrCat("config field task_vectors.method: ",
                                                            table.status().message()));
  }
  return FromTable(*table, "task_vectors.method " + tv.method().name());
}

}  // namespace

absl::StatusOr<at::Tensor> RunTaskVectors::Ids(const std::vector<std::string>& tasks,
                                               at::Device device) const {
  std::vector<int64_t> ids;
  for (const std::string& task : tasks) {
    auto it = std::find(names.begin(), names.end(), task);
    if (it == names.end()) {
      return absl::NotFoundError(
          absl::StrCat("task ", task, " has no task vector in the table (", source,
                       "): supply vectors for it with task_vectors.dir (e.g. from "
                       "tools/compute_task_embeddings) or task_vectors.method"));
    }
    ids.push_back(it - names.begin());
  }
  return at::tensor(ids, at::kLong).to(device);
}

absl::StatusOr<RunTaskVectors> SourceTaskVectors(const ExperimentConfig& config,
                                                 const ExperimentData& data, MoeBart& model,
                                                 at::Device device) {
  const TaskVectorConfig& tv = config.task_vectors();
  if (tv.has_method()) return Embedded(config, data, model, device);
  if (tv.has_dir() || (config.model().has_checkpoint() && !tv.has_random())) {
    const std::string dir = tv.has_dir() ? tv.dir() : config.model().checkpoint();
    TASKMOE_ASSIGN_OR_RETURN(const TaskTable table, TaskTable::Load(dir));
    return FromTable(table, dir + "/" + TaskTable::kNamesFile);
  }
  return RunTaskVectors{
      data.train_tasks,
      at::randn({static_cast<int64_t>(data.train_tasks.size()), tv.dim()}),
      "random task vectors of the train tasks"};
}

}  // namespace taskmoe
