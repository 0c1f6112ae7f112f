#include "moe/workflow/task_vector_table.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "moe/base/status_macros.h"
#include "moe/train/checkpoint.h"
#include "moe/train/model_builder.h"

namespace taskmoe {
namespace {

// A TaskMoE checkpoint runs with average routes; a Hugging Face directory as the dense model.
absl::StatusOr<TaskEmbeddingModel> LoadEmbeddingModel(const std::string& dir) {
  return IsTaskMoeCheckpoint(dir) ? LoadCheckpointEmbeddingModel(dir)
                                  : LoadDenseEmbeddingModel(dir);
}

std::string TokenizerDir(const TaskVectorJob& job) {
  if (!job.tokenizer_dir.empty()) return job.tokenizer_dir;
  if (!job.model_dir.empty() && !IsTaskMoeCheckpoint(job.model_dir)) return job.model_dir;
  return job.data_dir + "/tokenizer";
}

}  // namespace

absl::StatusOr<TaskTable> ComputeTaskVectorTable(const TaskVectorJob& job) {
  const std::string tokenizer_dir = TokenizerDir(job);
  TASKMOE_ASSIGN_OR_RETURN(const BartTokenizer tokenizer,
                           BartTokenizer::LoadFromDirectory(tokenizer_dir));
  TASKMOE_ASSIGN_OR_RETURN(
      const TokenizedDataset data,
      ReadTaskEmbeddingData(job.data_dir, job.tasks, tokenizer, job.tokenize));
  LOG(INFO) << "embedding " << job.tasks.size() << " tasks (" << data.examples.size()
            << " training examples) with method '" << job.request.method << "'";
  TaskEmbeddingModel model;
  TaskEmbeddingInput input;
  input.data = &data;
  input.pad_id = tokenizer.pad_id();
  input.device = job.device;
  input.on_task_done = job.on_task_done;
  if (!job.model_dir.empty()) {
    TASKMOE_ASSIGN_OR_RETURN(model, LoadEmbeddingModel(job.model_dir));
    const int64_t positions = model.model->config().max_position_embeddings;
    for (const auto& [name, length] : {std::make_pair("max_input_length",
                                                      job.tokenize.max_input_length),
                                       std::make_pair("max_output_length",
                                                      job.tokenize.max_output_length)}) {
      if (length > positions) {
        return absl::InvalidArgumentError(absl::StrCat(
            name, " ", length, " is more than the ", positions,
            " positions (max_position_embeddings) of the model ", job.model_dir,
            "; must be in [2, ", positions, "]"));
      }
    }
    if (tokenizer.vocab_size() > model.model->config().vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the tokenizer of ", tokenizer_dir, " has ", tokenizer.vocab_size(),
          " tokens, more than the model's vocab_size ", model.model->config().vocab_size));
    }
    model.model->to(job.device);
    input.model = &model;
    input.decoder_start_token_id = model.model->config().decoder_start_token_id;
  }
  return ComputeTaskEmbeddings(job.request, input);
}

}  // namespace taskmoe
