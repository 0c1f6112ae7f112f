#include "moe/train/model_builder.h"

#include <algorithm>
#include <filesystem>

#include <torch/autograd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "moe/base/status_macros.h"
#include "moe/formats/npy.h"
#include "moe/formats/safetensors.h"
#include "moe/formats/tensor_shape.h"
#include "moe/model/bart_weights.h"
#include "moe/train/checkpoint.h"
#include "moe/train/experiment_config.h"

namespace taskmoe {
namespace {

void ApplyDropouts(const ModelConfig& m, BartConfig* config) {
  if (m.has_dropout()) config->dropout = m.dropout();
  if (m.has_attention_dropout()) config->attention_dropout = m.attention_dropout();
  if (m.has_activation_dropout()) config->activation_dropout = m.activation_dropout();
}


BartConfig RandomInitConfig(const RandomInit& r, const BartTokenizer& tokenizer) {
  BartConfig config;
  config.vocab_size = tokenizer.vocab_size();
  config.d_model = r.d_model();
  config.encoder_layers = r.encoder_layers();
  config.decoder_layers = r.decoder_layers();
  config.encoder_attention_heads = r.attention_heads();
  config.decoder_attention_heads = r.attention_heads();
  config.encoder_ffn_dim = r.ffn_dim();
  config.decoder_ffn_dim = r.ffn_dim();
  config.max_position_embeddings = r.max_position_embeddings();
  config.pad_token_id = tokenizer.pad_id();
  config.bos_token_id = tokenizer.bos_id();
  config.eos_token_id = tokenizer.eos_id();
  config.decoder_start_token_id = tokenizer.eos_id();
  config.forced_eos_token_id = tokenizer.eos_id();
  return config;
}

// Hugging Face's BART init: matrices and embeddings ~ N(0, std), biases 0, LayerNorms 1/0.
void InitLikeHuggingFace(torch::nn::Module& module, double std) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    at::Tensor p = item.value();
    if (p.dim() >= 2) {
      p.normal_(0.0, std);
    } else if (absl::EndsWith(item.key(), ".bias")) {
      p.zero_();
    }
  }
}

// The config's sequence lengths against the model's positions, before any weight is read: an
// example longer than the positions would otherwise reach the model mid-run.
absl::Status CheckLengthsFit(const DataConfig& data, const BartConfig& config,
                             const std::string& model_source) {
  for (const auto& [field, length] : {std::make_pair("data.max_input_length",
                                                     data.max_input_length()),
                                      std::make_pair("data.max_output_length",
                                                     data.max_output_length())}) {
    if (length > config.max_position_embeddings) {
      return absl::InvalidArgumentError(absl::StrCat(
          "config field ", field, ": ", length, " is more than the model's ",
          config.max_position_embeddings, " positions (max_position_embeddings of ",
          model_source, "); must be in [2, ", config.max_position_embeddings, "]"));
    }
  }
  return absl::OkStatus();
}

// The task of each row of a checkpoint's route.npy: route_tasks.json, checked against the routes'
// shape and the task table; without that file (older checkpoints), every task of the table in
// sorted order, which the rows must then cover exactly.
absl::StatusOr<std::vector<std::string>> RouteRowTasks(const std::string& dir,
                                                       const Checkpoint& checkpoint) {
  const std::string routes_path = dir + "/" + kRoutesFile;
  const at::Tensor& routes = checkpoint.routes;
  const ModelShape& shape = checkpoint.model->shape();
  if (routes.dim() != 3 || routes.size(1) != shape.encoder_layers + shape.decoder_layers ||
      routes.size(2) != shape.experts || !at::isFloatingType(routes.scalar_type())) {
    return absl::InvalidArgumentError(absl::StrCat(
        routes_path, ": expected float routes [tasks, ", shape.encoder_layers + shape.decoder_layers,
        ", ", shape.experts, "] (the model's layers and experts), got ",
        c10::toString(routes.scalar_type()), " ", ShapeString(routes.sizes())));
  }
  const std::string tasks_path = dir + "/" + kRouteTasksFile;
  std::vector<std::string> tasks;
  if (std::filesystem::exists(tasks_path)) {
    TASKMOE_ASSIGN_OR_RETURN(tasks, TaskTable::ReadNames(tasks_path));
    for (const std::string& task : tasks) {
      if (!checkpoint.tasks->Id(task).ok()) {
        return absl::InvalidArgumentError(absl::StrCat(tasks_path, ": task '", task, "' is not in ",
                                                       dir, "/", TaskTable::kNamesFile));
      }
    }
  } else {
    tasks = checkpoint.tasks->names();
    std::sort(tasks.begin(), tasks.end());
  }
  if (routes.size(0) != static_cast<int64_t>(tasks.size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        routes_path, ": ", routes.size(0), " rows, but ",
        std::filesystem::exists(tasks_path) ? tasks_path : dir + "/" + TaskTable::kNamesFile,
        " names ", tasks.size(), " tasks"));
  }
  return tasks;
}

}  // namespace

MoeOptions ToMoeOptions(const ModelConfig& m) {
  MoeOptions options;
  options.experts = m.experts();
  options.encoder_vanilla_layers.assign(m.encoder_vanilla_layers().begin(),
                                        m.encoder_vanilla_layers().end());
  options.decoder_vanilla_layers.assign(m.decoder_vanilla_layers().begin(),
                                        m.decoder_vanilla_layers().end());
  options.init_eps = m.init_eps();
  options.route_gradient = m.route_gradient() == ModelConfig::SELECTED_EXPERTS
                               ? RouteGradient::kSelectedExperts
                               : RouteGradient::kAllExperts;
  options.expert_execution = m.expert_execution() == ModelConfig::MERGE_PARAMETERS
                                 ? ExpertExecution::kMergeParameters
                                 : ExpertExecution::kMixOutputs;
  return options;
}

absl::StatusOr<MoeBart> BuildModel(const ExperimentConfig& experiment,
                                   const BartTokenizer& tokenizer) {
  const ModelConfig& m = experiment.model();
  const MoeOptions options = ToMoeOptions(m);
  absl::StatusOr<MoeBart> model = absl::InvalidArgumentError(
      "config field model: set one of hf_dir, checkpoint, random_init");
  if (m.has_hf_dir() || m.has_random_init()) {
    absl::StatusOr<BartConfig> config =
        m.has_hf_dir() ? LoadBartConfig(m.hf_dir() + "/config.json")
                       : absl::StatusOr<BartConfig>(RandomInitConfig(m.random_init(), tokenizer));
    if (!config.ok()) return config.status();
    const std::string source =
        m.has_hf_dir() ? m.hf_dir() + "/config.json" : std::string("model.random_init");
    if (m.has_random_init()) TASKMOE_RETURN_IF_ERROR(CheckBartParameterCount(*config, source));
    TASKMOE_RETURN_IF_ERROR(CheckLengthsFit(experiment.data(), *config, source));
    ApplyDropouts(m, &*config);
    BartForConditionalGeneration dense(*config);
    if (m.has_hf_dir()) {
      const std::string path = m.hf_dir() + "/model.safetensors";
      absl::StatusOr<TensorMap> weights = ReadSafetensors(path);
      if (!weights.ok()) return weights.status();
      TASKMOE_RETURN_IF_ERROR(LoadBartWeights(*std::move(weights), path, dense));
    } else {
      InitLikeHuggingFace(*dense, m.random_init().init_std());
    }
    model = MoeBart::FromDense(dense, options);
  } else if (m.has_checkpoint()) {
    const std::string source = m.checkpoint() + "/" + kModelConfigFile;
    absl::StatusOr<BartConfig> config = LoadBartConfig(source);
    if (!config.ok()) return config.status();
    TASKMOE_RETURN_IF_ERROR(CheckLengthsFit(experiment.data(), *config, source));
    ApplyDropouts(m, &*config);
    // The MoE structure is the checkpoint's (experts, vanilla layers), whatever this config says;
    // how the layers run on it (expert_execution) is this run's choice.
    absl::StatusOr<ExperimentConfig> saved = ReadCheckpointExperiment(m.checkpoint());
    if (!saved.ok()) return saved.status();
    MoeOptions structure = ToMoeOptions(saved->model());
    structure.expert_execution = options.expert_execution;
    model = MoeBart::Create(*config, structure);
    if (!model.ok()) return model.status();
    TASKMOE_RETURN_IF_ERROR(ReadCheckpointWeights(m.checkpoint(), *model->model()));
  }
  if (!model.ok()) return model.status();
  if (tokenizer.vocab_size() > model->config().vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the tokenizer has ", tokenizer.vocab_size(), " tokens but the model's vocabulary only ",
        model->config().vocab_size));
  }
  return model;
}

absl::StatusOr<Checkpoint> LoadCheckpoint(const std::string& dir) {
  Checkpoint checkpoint;
  absl::StatusOr<ExperimentConfig> experiment = ReadCheckpointExperiment(dir);
  if (!experiment.ok()) return experiment.status();
  checkpoint.experiment = *std::move(experiment);
  absl::StatusOr<BartConfig> config = LoadBartConfig(dir + "/" + kModelConfigFile);
  if (!config.ok()) return config.status();
  absl::StatusOr<MoeBart> model =
      MoeBart::Create(*config, ToMoeOptions(checkpoint.experiment.model()));
  if (!model.ok()) return model.status();
  TASKMOE_RETURN_IF_ERROR(ReadCheckpointWeights(dir, *model->model()));
  model->model()->eval();
  checkpoint.model = std::make_unique<MoeBart>(*std::move(model));
  absl::StatusOr<TaskTable> tasks = TaskTable::Load(dir);
  if (!tasks.ok()) return tasks.status();
  checkpoint.tasks = std::make_unique<TaskTable>(*std::move(tasks));
  RoutingContext context;
  context.shape = checkpoint.model->shape();
  context.task_vector_dim = checkpoint.tasks->dim();
  context.num_tasks = checkpoint.tasks->size();
  absl::StatusOr<std::shared_ptr<RoutingPlugin>> plugin =
      CreateRoutingPlugin(checkpoint.experiment.routing(), context);
  if (!plugin.ok()) return plugin.status();
  TASKMOE_RETURN_IF_ERROR(ReadCheckpointRoutingState(dir, **plugin));
  (*plugin)->eval();
  checkpoint.plugin = *plugin;
  absl::StatusOr<at::Tensor> routes = ReadNpy(dir + "/" + kRoutesFile);
  if (!routes.ok()) return routes.status();
  checkpoint.routes = *routes;
  TASKMOE_ASSIGN_OR_RETURN(checkpoint.route_tasks, RouteRowTasks(dir, checkpoint));
  return checkpoint;
}

absl::StatusOr<TaskEmbeddingModel> LoadCheckpointEmbeddingModel(const std::string& checkpoint_dir) {
  absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(checkpoint_dir);
  if (!checkpoint.ok()) return checkpoint.status();
  TaskEmbeddingModel result;
  // The holder shares the module tree, which outlives the MoeBart wrapper.
  result.model = checkpoint->model->model();
  result.routed = true;
  result.shape = checkpoint->model->shape();
  result.model->eval();
  return result;
}

}  // namespace taskmoe
