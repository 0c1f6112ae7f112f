#include "tools/original_checkpoint.h"

#include <torch/csrc/autograd/grad_mode.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "glog/logging.h"
#include "moe/base/atomic_directory.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "moe/formats/task_table.h"
#include "moe/formats/tensor_shape.h"
#include "moe/model/bart_weights.h"
#include "moe/model/moe_model.h"
#include "moe/routing/routing.h"
#include "moe/train/checkpoint.h"
#include "moe/train/experiment.pb.h"
#include "moe/train/model_builder.h"
#include "moe/train/run_outputs.h"
#include "routing_plugins/learned/learned.pb.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Architecture = RouterNetworkParams::Architecture;

constexpr char kStateDictFile[] = "model.pt";
constexpr char kOriginalConfigFile[] = "config.json";
// MyRoutingBart.router is a RouterWrapper whose network is its `model`.
constexpr char kOriginalRouterPrefix[] = "router.model.";
// router_v2.py's transformer routers are built with nhead=4, dim_feedforward=64.
constexpr int kOriginalTransformerHeads = 4;
constexpr int kOriginalTransformerFfnDim = 64;
// An error lists at most this many names of each kind (a wrong config can mismatch hundreds).
constexpr size_t kMaxListedNames = 30;

// router_nn_type values (router_v2.py, RouterWrapper).
const std::map<std::string, Architecture>& RouterTypes() {
  static const auto* types = new std::map<std::string, Architecture>{
      {"linear", RouterNetworkParams::LINEAR},
      {"linear_layer_specific", RouterNetworkParams::LINEAR_LAYER_SPECIFIC},
      {"rnn", RouterNetworkParams::RNN},
      {"gru", RouterNetworkParams::GRU},
      {"lstm", RouterNetworkParams::LSTM},
      {"rnn_layer_specific", RouterNetworkParams::RNN_LAYER_SPECIFIC},
      {"gru_layer_specific", RouterNetworkParams::GRU_LAYER_SPECIFIC},
      {"lstm_layer_specific", RouterNetworkParams::LSTM_LAYER_SPECIFIC},
      {"transformer", RouterNetworkParams::TRANSFORMER},
      {"transformer_layer_specific", RouterNetworkParams::TRANSFORMER_LAYER_SPECIFIC},
  };
  return *types;
}

absl::Status FieldError(const std::string& source, const char* key, const std::string& expected,
                        const json& value) {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": field '", key, "' must be ", expected, ", got ", value.dump()));
}

absl::Status ReadPositive(const json& root, const char* key, const std::string& source,
                          int64_t* out) {
  auto it = root.find(key);
  if (it == root.end()) return absl::OkStatus();
  if (!it->is_number_integer() || it->get<int64_t>() < 1) {
    return FieldError(source, key, "a positive integer", *it);
  }
  *out = it->get<int64_t>();
  return absl::OkStatus();
}

// "0,3" as the original's load_config splits it (empty: none), or a list of integers.
absl::Status ReadLayerList(const json& root, const char* key, const std::string& source,
                           std::vector<int32_t>* out) {
  auto it = root.find(key);
  if (it == root.end() || it->is_null()) return absl::OkStatus();
  const std::string expected = "comma-separated layer indices or a list of integers";
  if (it->is_array()) {
    for (const json& item : *it) {
      if (!item.is_number_integer()) return FieldError(source, key, expected, *it);
      out->push_back(item.get<int32_t>());
    }
    return absl::OkStatus();
  }
  if (!it->is_string()) return FieldError(source, key, expected, *it);
  const std::string text = it->get<std::string>();
  if (text.empty()) return absl::OkStatus();
  for (absl::string_view piece : absl::StrSplit(text, ',')) {
    int32_t layer = 0;
    if (!absl::SimpleAtoi(piece, &layer)) return FieldError(source, key, expected, *it);
    out->push_back(layer);
  }
  return absl::OkStatus();
}

// One tensor of model.pt, under its original name: the shape it must have and where its values
// go in the converted model or router.
struct Slot {
  std::vector<int64_t> shape;
  std::function<void(const at::Tensor&)> assign;
};
using Slots = std::map<std::string, Slot>;

Slot CopyInto(at::Tensor target) {
  return {target.sizes().vec(), [target](const at::Tensor& value) mutable { target.copy_(value); }};
}

// A Linear weight [out, in] of the original into a [in, out] slice of a stacked weight.
Slot CopyTransposedInto(at::Tensor target) {
  return {{target.size(1), target.size(0)},
          [target](const at::Tensor& value) mutable { target.copy_(value.t()); }};
}

// Experts are `.blocks.<e>` in the original (RoutingBartEncoderLayer), `.experts.<e>` here; every
// other model name is the same in both.
void AddModelSlots(const torch::nn::Module& model, Slots* slots) {
  for (const auto& [name, tensor] : ModuleTensors(model)) {
    (*slots)[absl::StrReplaceAll(name, {{".experts.", ".blocks."}})] = CopyInto(tensor);
  }
}

// The original's module name of a router sub-module (router_v2.py's classes).
std::string OriginalRouterModule(const std::string& module, Architecture architecture) {
  if (module == "hidden") return "linear1";
  if (module == "output") return architecture == RouterNetworkParams::LINEAR ? "linear2" : "proj";
  if (module == "layer_embedding") return "pos_embed";
  if (module == "layer_projection") return "layer_specific_proj";
  if (module == "encoder_layer") return "transformer";
  CHECK_EQ(module, "rnn") << ": router module without a counterpart in the original";
  return module;
}

void AddRouterSlots(const RoutingPlugin& plugin, Architecture architecture, Slots* slots) {
  const int64_t layers = plugin.context().shape.encoder_layers + plugin.context().shape.decoder_layers;
  std::map<std::string, at::Tensor> state;
  for (const auto& [name, tensor] : RoutingState(plugin)) state[name] = tensor;
  if (architecture == RouterNetworkParams::LINEAR_LAYER_SPECIFIC) {
    // Here one [layers, ...] stack per weight; in the original one pair of nn.Linear per layer.
    auto stacked = [&state](const std::string& name, int64_t layer) {
      CHECK(state.count(name)) << "the layer-specific router has no " << name;
      return state.at(name).select(0, layer);
    };
    for (int64_t layer = 0; layer < layers; ++layer) {
      const std::string unit = absl::StrCat(kOriginalRouterPrefix, "router_units.", layer, ".");
      (*slots)[unit + "linear1.weight"] = CopyTransposedInto(stacked("router.hidden_weight", layer));
      (*slots)[unit + "linear1.bias"] = CopyInto(stacked("router.hidden_bias", layer).select(0, 0));
      (*slots)[unit + "linear2.weight"] = CopyTransposedInto(stacked("router.output_weight", layer));
      (*slots)[unit + "linear2.bias"] = CopyInto(stacked("router.output_bias", layer).select(0, 0));
    }
    return;
  }
  for (const auto& [name, tensor] : state) {
    // "router.<module>.<parameter>" -> "router.model.<original module>.<parameter>"
    const std::vector<std::string> parts = absl::StrSplit(name, absl::MaxSplits('.', 2));
    CHECK(parts.size() == 3 && parts[0] == "router") << "unexpected routing state name " << name;
    (*slots)[absl::StrCat(kOriginalRouterPrefix, OriginalRouterModule(parts[1], architecture), ".",
                          parts[2])] = CopyInto(tensor);
  }
}

std::string NameList(const std::vector<std::string>& names) {
  if (names.size() <= kMaxListedNames) return absl::StrJoin(names, ", ");
  return absl::StrCat(absl::StrJoin(names.begin(), names.begin() + kMaxListedNames, ", "),
                      ", ... (", names.size() - kMaxListedNames, " more)");
}

// Every tensor into its slot, after checking that names and shapes match exactly; `what`
// says what the tensors should fit in errors.
absl::Status FillSlots(const TensorMap& tensors, const Slots& slots, const std::string& source,
                       const std::string& what) {
  std::vector<std::string> unknown, missing, mismatched;
  for (const auto& [name, tensor] : tensors) {
    auto it = slots.find(name);
    if (it == slots.end()) {
      unknown.push_back(name);
    } else if (!tensor.sizes().equals(it->second.shape)) {
      mismatched.push_back(absl::StrCat(name, " has shape ", ShapeString(tensor.sizes()),
                                        ", the config implies ", ShapeString(it->second.shape)));
    } else if (!at::isFloatingType(tensor.scalar_type())) {
      mismatched.push_back(
          absl::StrCat(name, " has non-float dtype ", c10::toString(tensor.scalar_type())));
    }
  }
  for (const auto& [name, slot] : slots) {
    if (tensors.count(name) == 0) missing.push_back(name);
  }
  if (!unknown.empty() || !missing.empty() || !mismatched.empty()) {
    std::vector<std::string> problems;
    if (!unknown.empty()) problems.push_back("unknown tensors: " + NameList(unknown));
    if (!missing.empty()) problems.push_back("missing tensors: " + NameList(missing));
    if (!mismatched.empty()) problems.push_back("wrong shape: " + NameList(mismatched));
    return absl::InvalidArgumentError(absl::StrCat(source, " does not fit ", what, ": ",
                                                   absl::StrJoin(problems, "; ")));
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, slot] : slots) slot.assign(tensors.at(name));
  return absl::OkStatus();
}

// The experiment recorded in the converted checkpoint: its MoE structure and routing.
ExperimentConfig ConvertedExperiment(const OriginalModelConfig& original,
                                     const RouteSelectionParams& selection, int64_t task_dim) {
  ExperimentConfig experiment;
  ModelConfig& model = *experiment.mutable_model();
  model.set_experts(static_cast<int32_t>(original.experts));
  for (int32_t layer : original.encoder_vanilla_layers) model.add_encoder_vanilla_layers(layer);
  for (int32_t layer : original.decoder_vanilla_layers) model.add_decoder_vanilla_layers(layer);
  *experiment.mutable_routing() = ConvertedRoutingConfig(original, selection);
  experiment.mutable_task_vectors()->set_dim(static_cast<int32_t>(task_dim));
  return experiment;
}

}  // namespace

RoutingConfig ConvertedRoutingConfig(const OriginalModelConfig& original,
                                     const RouteSelectionParams& selection) {
  LearnedRoutingParams params;
  RouterNetworkParams& router = *params.mutable_router();
  router.set_architecture(original.router_architecture);
  router.set_hidden_dim(static_cast<int32_t>(original.router_hidden_dim));
  router.set_transformer_heads(kOriginalTransformerHeads);
  router.set_transformer_ffn_dim(kOriginalTransformerFfnDim);
  *params.mutable_selection() = selection;
  params.set_exploration_epsilon(static_cast<float>(original.exploration_epsilon));
  RoutingConfig config;
  config.set_plugin("learned");
  config.mutable_params()->PackFrom(params);
  return config;
}

absl::Status LoadOriginalRouter(const TensorMap& router_tensors, Architecture architecture,
                                const std::string& source, RoutingPlugin& plugin) {
  Slots slots;
  AddRouterSlots(plugin, architecture, &slots);
  return FillSlots(router_tensors, slots, source, "the router config.json describes");
}

absl::StatusOr<OriginalModelConfig> ParseOriginalConfig(const std::string& json_text,
                                                        const std::string& source_name) {
  OriginalModelConfig config;
  TASKMOE_ASSIGN_OR_RETURN(config.bart, ParseBartConfig(json_text, source_name));
  const json root = json::parse(json_text);  // ParseBartConfig checked that it parses
  TASKMOE_RETURN_IF_ERROR(ReadPositive(root, "router_block_num", source_name, &config.experts));
  TASKMOE_RETURN_IF_ERROR(
      ReadPositive(root, "router_input_dim", source_name, &config.router_input_dim));
  TASKMOE_RETURN_IF_ERROR(
      ReadPositive(root, "router_hidden_dim", source_name, &config.router_hidden_dim));
  if (auto it = root.find("router_nn_type"); it != root.end()) {
    auto type = it->is_string() ? RouterTypes().find(it->get<std::string>()) : RouterTypes().end();
    if (type == RouterTypes().end()) {
      std::vector<std::string> names;
      for (const auto& [name, architecture] : RouterTypes()) names.push_back(name);
      return FieldError(source_name, "router_nn_type",
                        absl::StrCat("one of ", absl::StrJoin(names, ", ")), *it);
    }
    config.router_architecture = type->second;
  }
  if (auto it = root.find("exploration_epsilon"); it != root.end()) {
    if (!it->is_number() || it->get<double>() < 0 || it->get<double>() > 1) {
      return FieldError(source_name, "exploration_epsilon", "a number in [0, 1]", *it);
    }
    config.exploration_epsilon = it->get<double>();
  }
  TASKMOE_RETURN_IF_ERROR(ReadLayerList(root, "encoder_vanilla_layers", source_name,
                                        &config.encoder_vanilla_layers));
  TASKMOE_RETURN_IF_ERROR(ReadLayerList(root, "decoder_vanilla_layers", source_name,
                                        &config.decoder_vanilla_layers));
  const std::set<int32_t> encoder_vanilla(config.encoder_vanilla_layers.begin(),
                                          config.encoder_vanilla_layers.end());
  const std::set<int32_t> decoder_vanilla(config.decoder_vanilla_layers.begin(),
                                          config.decoder_vanilla_layers.end());
  if (config.bart.encoder_layers != config.bart.decoder_layers ||
      encoder_vanilla != decoder_vanilla) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_name, ": ", config.bart.encoder_layers, " encoder and ", config.bart.decoder_layers,
        " decoder layers, vanilla layers {", absl::StrJoin(encoder_vanilla, ","), "} and {",
        absl::StrJoin(decoder_vanilla, ","), "}: the original (routing_bart_v2.py) builds the "
        "decoder's layers from encoder_layers and encoder_vanilla_layers but runs them by "
        "decoder_vanilla_layers, so it only runs models whose encoder and decoder agree"));
  }
  return config;
}

absl::StatusOr<std::string> FindOriginalConfig(const std::string& original_dir) {
  const fs::path own = fs::path(original_dir) / kOriginalConfigFile;
  fs::path dir = fs::absolute(original_dir).lexically_normal();
  if (!dir.has_filename()) dir = dir.parent_path();  // "best/" names "best"
  const fs::path run = dir.parent_path() / kOriginalConfigFile;
  for (const fs::path& path : {own, run}) {
    if (fs::exists(path)) return path.string();
  }
  return absl::NotFoundError(absl::StrCat("the original's config.json is neither ", own.string(),
                                          " nor ", run.string(), " (pass its path explicitly)"));
}

absl::StatusOr<TensorMap> ReadTorchStateDict(const std::string& path) {
  TASKMOE_ASSIGN_OR_RETURN(const std::string bytes, ReadFileBytes(path));
  if (bytes.compare(0, 4, "PK\x03\x04") != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " is not in torch.save's zip format (the default since PyTorch 1.6); re-save it "
              "with a recent PyTorch: torch.save(torch.load(path), path)"));
  }
  c10::IValue value;
  try {
    value = torch::jit::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot read it as a dict of tensors: ", e.what_without_backtrace()));
  }
  if (!value.isGenericDict()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " holds a ", value.tagKind(), ", not a dict of tensors (a state_dict)"));
  }
  TensorMap tensors;
  for (const auto& item : value.toGenericDict()) {
    if (!item.key().isString() || !item.value().isTensor()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": entry ", item.key().isString() ? item.key().toStringRef() : item.key().tagKind(),
          " is a ", item.value().tagKind(), ", not a tensor under a name"));
    }
    tensors[item.key().toStringRef()] = item.value().toTensor();
  }
  return tensors;
}

absl::StatusOr<RouteSelectionParams::Function> SelectionFunctionFromRouterMode(
    const std::string& router_mode) {
  if (router_mode == "softmax") return RouteSelectionParams::SOFTMAX;
  if (router_mode == "gumbel_softmax") return RouteSelectionParams::GUMBEL_SOFTMAX;
  if (router_mode == "gumbel_softmax_st") return RouteSelectionParams::GUMBEL_SOFTMAX_ST;
  return absl::InvalidArgumentError(absl::StrCat(
      "router_mode must be softmax, gumbel_softmax or gumbel_softmax_st, got '", router_mode, "'"));
}

absl::StatusOr<ConvertedOriginal> ConvertOriginalCheckpoint(const ConvertOriginalOptions& options) {
  if (options.original_dir.empty() || options.output_dir.empty()) {
    return absl::InvalidArgumentError("the original checkpoint and the output directory are required");
  }
  if (fs::exists(options.output_dir) && !options.overwrite) {
    return absl::AlreadyExistsError(absl::StrCat(
        "output directory ", options.output_dir, " exists; pass --overwrite to replace it"));
  }
  TASKMOE_RETURN_IF_ERROR(CheckOutputsSpareInputs({options.output_dir},
                                                  {options.original_dir, options.config_path}));
  ConvertedOriginal converted;
  if (options.config_path.empty()) {
    TASKMOE_ASSIGN_OR_RETURN(converted.config_path, FindOriginalConfig(options.original_dir));
  } else {
    converted.config_path = options.config_path;
  }
  TASKMOE_ASSIGN_OR_RETURN(const std::string config_text, ReadFileBytes(converted.config_path));
  TASKMOE_ASSIGN_OR_RETURN(const OriginalModelConfig original,
                           ParseOriginalConfig(config_text, converted.config_path));
  TASKMOE_ASSIGN_OR_RETURN(const TaskTable tasks, TaskTable::Load(options.original_dir));
  if (tasks.dim() != original.router_input_dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.original_dir, "/", TaskTable::kVectorsFile, " holds task vectors of dimension ",
        tasks.dim(), ", but ", converted.config_path, " has router_input_dim ",
        original.router_input_dim));
  }
  const std::string state_path = options.original_dir + "/" + kStateDictFile;
  TASKMOE_ASSIGN_OR_RETURN(TensorMap state, ReadTorchStateDict(state_path));
  // The tied embedding (model.shared, both embed_tokens, lm_head) becomes model.shared alone.
  TASKMOE_ASSIGN_OR_RETURN(
      state, CanonicalBartTensors(std::move(state), state_path, original.bart.vocab_size));

  const ExperimentConfig experiment =
      ConvertedExperiment(original, options.selection, tasks.dim());
  absl::StatusOr<MoeBart> model = MoeBart::Create(original.bart, ToMoeOptions(experiment.model()));
  if (!model.ok()) return model.status();
  RoutingContext context;
  context.shape = model->shape();
  context.task_vector_dim = tasks.dim();
  context.num_tasks = tasks.size();
  TASKMOE_ASSIGN_OR_RETURN(std::shared_ptr<RoutingPlugin> plugin,
                           CreateRoutingPlugin(experiment.routing(), context));
  TensorMap model_tensors, router_tensors;
  for (auto& [name, tensor] : state) {
    (absl::StartsWith(name, "router.") ? router_tensors : model_tensors)[name] = tensor;
  }
  Slots slots;
  AddModelSlots(*model->model(), &slots);
  TASKMOE_RETURN_IF_ERROR(FillSlots(model_tensors, slots, state_path,
                                    absl::StrCat("the model ", converted.config_path, " describes")));
  TASKMOE_RETURN_IF_ERROR(LoadOriginalRouter(router_tensors, original.router_architecture,
                                             state_path, *plugin));
  converted.model_tensors = static_cast<int64_t>(slots.size());
  converted.router_tensors = static_cast<int64_t>(RoutingState(*plugin).size());
  model->model()->eval();
  plugin->eval();
  converted.tasks = tasks.size();

  absl::StatusOr<AtomicDirectory> out = AtomicDirectory::Begin(options.output_dir);
  if (!out.ok()) return out.status();
  const std::string& staging = out->staging();
  TASKMOE_RETURN_IF_ERROR(WriteCheckpointModel(staging, *model->model(), original.bart, experiment));
  TASKMOE_RETURN_IF_ERROR(WriteCheckpointRouting(staging, *plugin, tasks));
  TASKMOE_RETURN_IF_ERROR(WriteRouteFiles(TaskRouteViews(*plugin, tasks.vectors(), /*step=*/0),
                                          tasks.names(), std::nullopt, model->shape(),
                                          /*step=*/0, staging));
  TASKMOE_RETURN_IF_ERROR(out->Commit());
  return converted;
}

}  // namespace taskmoe
