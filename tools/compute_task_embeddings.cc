// Computes one vector per task with a task-embedding method and writes id2task.json +
// task_vecs.npy (the original's format, readable by numpy and by the trainer).
//
//   compute_task_embeddings --method=text_emb --model_dir=bart-base --data_dir=data
//       --split=data/splits/random.json --output_dir=task_vecs/text_emb
//   compute_task_embeddings --method=fisher --checkpoint=out/best --data_dir=data
//       --split=data/splits/random.json --split_list=train --dim=32 --output_dir=task_vecs/fisher
//       --params='[type.googleapis.com/taskmoe.FisherEmbeddingParams] { steps: 50 }'

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <ATen/ATen.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "data/crossfit.h"
#include "data/tokenizer.h"
#include "glog/logging.h"
#include "google/protobuf/text_format.h"
#include "moe/base/progress.h"
#include "moe/embedding/task_embedding.h"
#include "moe/train/model_builder.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, method, "", "task-embedding method (registered: see the error of an unknown name)");
ABSL_FLAG(std::string, params, "",
          "the method's params as a text-format Any, e.g. "
          "'[type.googleapis.com/taskmoe.FisherEmbeddingParams] { steps: 50 }'; empty: defaults");
ABSL_FLAG(std::string, model_dir, "", "Hugging Face BART directory (config.json, model.safetensors)");
ABSL_FLAG(std::string, checkpoint, "", "TaskMoE checkpoint directory, run with average routes");
ABSL_FLAG(std::string, tokenizer_dir, "",
          "directory with vocab.json + merges.txt; empty: --model_dir, else <data_dir>/tokenizer");
ABSL_FLAG(std::string, data_dir, "", "CrossFit-layout data directory");
ABSL_FLAG(std::string, split, "", "split JSON file naming the tasks");
ABSL_FLAG(std::string, split_list, "all", "list of the split to embed: train, dev, test or all");
ABSL_FLAG(int64_t, dim, 0, "vector size (random), PCA target of fisher; 0: the method's own size");
ABSL_FLAG(int64_t, pca_dim, 0, "reduce the vectors of any method to this many PCA components; 0: no");
ABSL_FLAG(uint64_t, seed, 42, "random seed");
ABSL_FLAG(int64_t, max_input_length, 512, "input tokens kept per example (with <s> and </s>)");
ABSL_FLAG(int64_t, max_output_length, 64, "output tokens kept per example (with <s> and </s>)");
ABSL_FLAG(int, threads, 0, "LibTorch intra-op threads; 0: all cores");
ABSL_FLAG(std::string, output_dir, "", "directory for id2task.json and task_vecs.npy (created)");

namespace taskmoe {
namespace {

absl::StatusOr<TaskEmbeddingModel> LoadModel() {
  const std::string model_dir = absl::GetFlag(FLAGS_model_dir);
  const std::string checkpoint = absl::GetFlag(FLAGS_checkpoint);
  if (!model_dir.empty() && !checkpoint.empty()) {
    return absl::InvalidArgumentError("give --model_dir or --checkpoint, not both");
  }
  if (!checkpoint.empty()) return LoadCheckpointEmbeddingModel(checkpoint);
  if (!model_dir.empty()) return LoadDenseEmbeddingModel(model_dir);
  return absl::InvalidArgumentError("no model: give --model_dir or --checkpoint");
}

std::string TokenizerDir() {
  if (!absl::GetFlag(FLAGS_tokenizer_dir).empty()) return absl::GetFlag(FLAGS_tokenizer_dir);
  if (!absl::GetFlag(FLAGS_model_dir).empty()) return absl::GetFlag(FLAGS_model_dir);
  return absl::StrCat(absl::GetFlag(FLAGS_data_dir), "/tokenizer");
}

absl::Status Run() {
  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  const std::string output_dir = absl::GetFlag(FLAGS_output_dir);
  if (absl::GetFlag(FLAGS_method).empty() || data_dir.empty() || absl::GetFlag(FLAGS_split).empty() ||
      output_dir.empty()) {
    return absl::InvalidArgumentError("--method, --data_dir, --split and --output_dir are required");
  }
  const int threads = absl::GetFlag(FLAGS_threads) > 0
                          ? absl::GetFlag(FLAGS_threads)
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);

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

  absl::StatusOr<TaskSplit> split = ReadTaskSplit(absl::GetFlag(FLAGS_split));
  if (!split.ok()) return split.status();
  absl::StatusOr<std::vector<std::string>> tasks =
      SplitTasks(*split, absl::GetFlag(FLAGS_split_list), data_dir);
  if (!tasks.ok()) return tasks.status();
  std::sort(tasks->begin(), tasks->end());  // rows in sorted task order, as the original
  tasks->erase(std::unique(tasks->begin(), tasks->end()), tasks->end());

  absl::StatusOr<BartTokenizer> tokenizer = BartTokenizer::LoadFromDirectory(TokenizerDir());
  if (!tokenizer.ok()) return tokenizer.status();
  TokenizeOptions tokenize_options;
  tokenize_options.max_input_length = absl::GetFlag(FLAGS_max_input_length);
  tokenize_options.max_output_length = absl::GetFlag(FLAGS_max_output_length);
  absl::StatusOr<TokenizedDataset> data =
      ReadTaskEmbeddingData(data_dir, *tasks, *tokenizer, tokenize_options);
  if (!data.ok()) return data.status();
  LOG(INFO) << "embedding " << tasks->size() << " tasks (" << data->examples.size()
            << " training examples) with method '" << request.method << "'";

  const bool model_given =
      !absl::GetFlag(FLAGS_model_dir).empty() || !absl::GetFlag(FLAGS_checkpoint).empty();
  TaskEmbeddingModel model;
  TaskEmbeddingInput input;
  input.data = &*data;
  input.pad_id = tokenizer->pad_id();
  input.device = at::hasCUDA() ? at::Device(at::kCUDA) : at::Device(at::kCPU);
  if (model_given) {
    absl::StatusOr<TaskEmbeddingModel> loaded = LoadModel();
    if (!loaded.ok()) return loaded.status();
    model = *std::move(loaded);
    if (tokenizer->vocab_size() > model.model->config().vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the tokenizer of ", TokenizerDir(), " has ", tokenizer->vocab_size(),
          " tokens, more than the model's vocab_size ", model.model->config().vocab_size));
    }
    model.model->to(input.device);
    input.model = &model;
    input.decoder_start_token_id = model.model->config().decoder_start_token_id;
  }

  ProgressOptions progress_options;
  progress_options.total_steps = static_cast<int64_t>(tasks->size());
  ProgressReporter progress(progress_options);
  input.on_task_done = [&progress](int64_t tasks_done) { progress.Update(tasks_done, 0, 0, 0); };
  absl::StatusOr<TaskTable> table = ComputeTaskEmbeddings(request, input);
  progress.Finish();
  if (!table.ok()) return table.status();

  std::error_code error;
  std::filesystem::create_directories(output_dir, error);
  if (error) return absl::PermissionDeniedError(absl::StrCat(output_dir, ": ", error.message()));
  if (absl::Status saved = table->Save(output_dir); !saved.ok()) return saved;
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
