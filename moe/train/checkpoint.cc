#include "moe/train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/serialize.h>

#include <mutex>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "moe/base/file_io.h"
#include "moe/train/experiment_config.h"

namespace taskmoe {

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

absl::StatusOr<TrainerState> TrainerStateFromJson(const std::string& json_text,
                                                  const std::string& source_name) {
  try {
    const nlohmann::json json = nlohmann::json::parse(json_text);
    TrainerState state;
    state.step = json.at("step").get<int64_t>();
    state.best_dev_performance = json.at("best_dev_performance").get<double>();
    state.best_step = json.at("best_step").get<int64_t>();
    state.data_position = json.at("data_position").get<std::map<std::string, int64_t>>();
    for (const nlohmann::json& r : json.at("history")) {
      state.history.push_back({r.at("step").get<int64_t>(), r.at("train_loss").get<double>(),
                               r.at("dev_loss").get<double>(),
                               r.at("dev_performance").get<double>()});
    }
    return state;
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": ", e.what()));
  }
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
  try {
    torch::serialize::OutputArchive archive;
    optimizer.save(archive);
    archive.save_to(path);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("cannot write optimizer state ", path, ": ",
                                            e.what_without_backtrace()));
  }
  return absl::OkStatus();
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

}  // namespace taskmoe
