#include "moe/train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/serialize.h>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <mutex>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "moe/model/bart_weights.h"
#include "moe/model/moe_model.h"
#include "moe/train/experiment_config.h"

namespace taskmoe {

bool IsTaskMoeCheckpoint(const std::string& dir) {
  return std::filesystem::exists(dir + "/" + kExperimentFile);
}

absl::StatusOr<ExperimentConfig> ReadCheckpointExperiment(const std::string& dir) {
  const std::string path = dir + "/" + kExperimentFile;
  absl::StatusOr<std::string> text = ReadFileBytes(path);
  if (!text.ok()) return text.status();
  return ParseExperimentConfig(*text, path);
}

std::string TrainerStateToJson(const TrainerState& state) {
  nlohmann::json json;
  json["step"] = state.step;
  json["best_dev_performance"] = state.best_dev_performance;
  json["best_step"] = state.best_step;
  json["data_position"] = state.data_position;
  nlohmann::json history = nlohmann::json::array();
  for (const EvalRecord& r : state.history) {
    history.push_back({{"step", r.step},
                       {"train_loss", r.train_loss},
                       {"dev_loss", r.dev_loss},
                       {"dev_performance", r.dev_performance}});
  }
  json["history"] = history;
  return json.dump(2);
}

namespace {

// The integer `json[key]` in [low, high]; an error naming the field otherwise (a float such as
// 1e9, a negative step).
absl::StatusOr<int64_t> IntegerField(const nlohmann::json& json, const std::string& key,
                                     int64_t low, int64_t high, const std::string& where) {
  const nlohmann::json& value = json.at(key);
  if (!value.is_number_integer() || value.get<int64_t>() < low || value.get<int64_t>() > high) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": field '", key,
                                                   "' must be an integer in [", low, ", ", high,
                                                   "], got ", value.dump()));
  }
  return value.get<int64_t>();
}

}  // namespace

absl::StatusOr<TrainerState> TrainerStateFromJson(const std::string& json_text,
                                                  const std::string& source_name) {
  constexpr int64_t kMaxStep = std::numeric_limits<int32_t>::max();  // training.total_steps
  try {
    const nlohmann::json json = nlohmann::json::parse(json_text);
    TrainerState state;
    TASKMOE_ASSIGN_OR_RETURN(state.step, IntegerField(json, "step", 0, kMaxStep, source_name));
    state.best_dev_performance = json.at("best_dev_performance").get<double>();
    TASKMOE_ASSIGN_OR_RETURN(state.best_step,
                             IntegerField(json, "best_step", 0, state.step, source_name));
    for (const auto& [key, value] : json.at("data_position").items()) {
      TASKMOE_ASSIGN_OR_RETURN(
          state.data_position[key],
          IntegerField(json.at("data_position"), key, 0, std::numeric_limits<int64_t>::max(),
                       source_name + ": data_position"));
    }
    for (const nlohmann::json& r : json.at("history")) {
      EvalRecord record;
      TASKMOE_ASSIGN_OR_RETURN(record.step,
                               IntegerField(r, "step", 1, state.step, source_name + ": history"));
      record.train_loss = r.at("train_loss").get<double>();
      record.dev_loss = r.at("dev_loss").get<double>();
      record.dev_performance = r.at("dev_performance").get<double>();
      state.history.push_back(record);
    }
    return state;
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": ", e.what()));
  }
}

absl::StatusOr<int64_t> CheckpointStep(const std::string& dir, const ExperimentConfig& experiment) {
  const std::string path = dir + "/" + kTrainerStateFile;
  if (!std::filesystem::exists(path)) return experiment.training().total_steps();
  TASKMOE_ASSIGN_OR_RETURN(const std::string text, ReadFileBytes(path));
  TASKMOE_ASSIGN_OR_RETURN(const TrainerState state, TrainerStateFromJson(text, path));
  return state.step;
}

TensorMap ModuleTensors(const torch::nn::Module& module) {
  TensorMap tensors;
  for (const auto& item : module.named_parameters()) tensors[item.key()] = item.value();
  for (const auto& item : module.named_buffers()) tensors[item.key()] = item.value();
  return tensors;
}

at::Tensor CpuRngState() {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void SetCpuRngState(const at::Tensor& state) {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

absl::Status SaveOptimizer(torch::optim::Optimizer& optimizer, const std::string& path) {
  // Serialised into memory, then written as every file is: LibTorch's file writer throws from
  // its destructor when a write fails (a full disk), which ends the process.
  std::string bytes;
  try {
    torch::serialize::OutputArchive archive;
    optimizer.save(archive);
    archive.save_to([&bytes](const void* data, size_t size) {
      bytes.append(static_cast<const char*>(data), size);
      return size;
    });
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("cannot serialise the optimizer state for ", path,
                                            ": ", e.what_without_backtrace()));
  }
  return WriteFileAtomically(path, bytes);
}

absl::Status LoadOptimizer(const std::string& path, torch::optim::Optimizer& optimizer) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    optimizer.load(archive);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat("cannot load optimizer state ", path, ": ",
                                                   e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::Status WriteCheckpointModel(const std::string& dir, const torch::nn::Module& model,
                                  const BartConfig& config, const ExperimentConfig& experiment) {
  TensorMap weights;
  for (auto& [key, tensor] : ModuleTensors(model)) weights[key] = tensor.detach();
  TASKMOE_RETURN_IF_ERROR(WriteSafetensors(dir + "/" + kModelWeightsFile, weights));
  TASKMOE_RETURN_IF_ERROR(WriteFileAtomically(dir + "/" + kModelConfigFile, BartConfigJson(config)));
  return WriteFileAtomically(dir + "/" + kExperimentFile, ExperimentConfigToText(experiment));
}

absl::Status ReadCheckpointWeights(const std::string& dir, torch::nn::Module& model) {
  const std::string path = dir + "/" + kModelWeightsFile;
  TASKMOE_ASSIGN_OR_RETURN(const TensorMap weights, ReadSafetensors(path));
  return LoadIntoModule(weights, path, model);
}

absl::Status WriteCheckpointRouting(const std::string& dir, const RoutingPlugin& plugin,
                                    const TaskTable& tasks) {
  TensorMap state;
  for (auto& [key, tensor] : RoutingState(plugin)) state[key] = tensor.detach();
  TASKMOE_RETURN_IF_ERROR(WriteSafetensors(dir + "/" + kRoutingStateFile, state));
  return tasks.Save(dir);
}

absl::Status ReadCheckpointRoutingState(const std::string& dir, RoutingPlugin& plugin) {
  const std::string path = dir + "/" + kRoutingStateFile;
  TASKMOE_ASSIGN_OR_RETURN(const TensorMap state, ReadSafetensors(path));
  absl::Status loaded = LoadRoutingState(state, plugin);
  if (!loaded.ok()) return absl::Status(loaded.code(), absl::StrCat(path, ": ", loaded.message()));
  return absl::OkStatus();
}

absl::Status ReadInitialRoutingState(const ExperimentConfig& config, bool fresh,
                                     RoutingPlugin& plugin) {
  const std::string dir = config.model().checkpoint();
  const std::string path = dir + "/" + kRoutingStateFile;
  if (!std::filesystem::exists(path) || config.routing().has_fixed_routes_npy()) {
    return absl::OkStatus();
  }
  if (fresh) {
    LOG(INFO) << "routing plugin '" << config.routing().plugin()
              << "' starts from its initial state; " << path << " is not used";
    return absl::OkStatus();
  }
  TASKMOE_ASSIGN_OR_RETURN(const ExperimentConfig saved, ReadCheckpointExperiment(dir));
  if (!CanLoadRoutingState(saved.routing().plugin(), config.routing(), plugin)) {
    LOG(WARNING) << path << " was saved by routing plugin '" << saved.routing().plugin()
                 << "', which this run's routing cannot continue: it starts from its own "
                    "initial state instead";
    return absl::OkStatus();
  }
  return ReadCheckpointRoutingState(dir, plugin);
}

absl::Status WriteCheckpointTrainer(const std::string& dir, torch::optim::Optimizer& optimizer,
                                    const TrainerState& state, const at::Tensor& rng_state) {
  TASKMOE_RETURN_IF_ERROR(SaveOptimizer(optimizer, dir + "/" + kOptimizerFile));
  TASKMOE_RETURN_IF_ERROR(
      WriteFileAtomically(dir + "/" + kTrainerStateFile, TrainerStateToJson(state)));
  return WriteSafetensors(dir + "/" + kRngStateFile, {{"cpu", rng_state}});
}

absl::StatusOr<TrainerState> ReadCheckpointTrainer(const std::string& dir,
                                                   torch::optim::Optimizer& optimizer) {
  TASKMOE_RETURN_IF_ERROR(LoadOptimizer(dir + "/" + kOptimizerFile, optimizer));
  const std::string state_path = dir + "/" + kTrainerStateFile;
  TASKMOE_ASSIGN_OR_RETURN(const std::string state_text, ReadFileBytes(state_path));
  TASKMOE_ASSIGN_OR_RETURN(TrainerState state, TrainerStateFromJson(state_text, state_path));
  const std::string rng_path = dir + "/" + kRngStateFile;
  TASKMOE_ASSIGN_OR_RETURN(const TensorMap rng, ReadSafetensors(rng_path));
  if (!rng.count("cpu")) return absl::InvalidArgumentError(rng_path + ": no tensor 'cpu'");
  SetCpuRngState(rng.at("cpu"));
  return state;
}

}  // namespace taskmoe
