#include "moe/train/model_builder.h"

#include <filesystem>

#include <torch/autograd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "moe/base/status_macros.h"
#include "moe/formats/npy.h"
#include "moe/formats/safetensors.h"
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
    absl::StatusOr<BartConfig> config = LoadBartConfig(m.checkpoint() + "/" + kModelConfigFile);
    if (!config.ok()) return config.status();
    ApplyDropouts(m, &*config);
    // The MoE structure is the checkpoint's (experts, vanilla layers), whatever this config says.
    absl::StatusOr<ExperimentConfig> saved = ReadCheckpointExperiment(m.checkpoint());
    if (!saved.ok()) return saved.status();
    model = MoeBart::Create(*config, ToMoeOptions(saved->model()));
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
