#include "moe/model/bart_weights.h"

#include <torch/csrc/autograd/grad_mode.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "moe/base/status_macros.h"
#include "moe/formats/tensor_shape.h"

namespace taskmoe {
absl::StatusOr<TensorMap> CanonicalBartTensors(TensorMap tensors, const std::string& source_name,
                                               int64_t vocab_size) {
  bool has_model_prefix = false;
  for (const auto& [name, tensor] : tensors) {
    has_model_prefix |= absl::StartsWith(name, "model.");
  }
  if (!has_model_prefix) {
    TensorMap prefixed;
    for (auto& [name, tensor] : tensors) {
      const bool head = name == "final_logits_bias" || name == "lm_head.weight";
      prefixed.emplace(head ? name : "model." + name, std::move(tensor));
    }
    tensors = std::move(prefixed);
  }
  at::Tensor embedding;
  std::string embedding_name;
  for (const char* name : kTiedEmbeddingNames) {
    auto it = tensors.find(name);
    if (it == tensors.end()) continue;
    if (!embedding.defined()) {
      embedding = it->second;
      embedding_name = name;
    } else if (!embedding.sizes().equals(it->second.sizes()) ||
               !at::equal(embedding, it->second.to(embedding.scalar_type()))) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_name, ": tied embeddings '", embedding_name, "' and '", name,
                       "' differ; they must hold the same tensor"));
    }
    tensors.erase(it);
  }
  if (embedding.defined()) tensors["model.shared.weight"] = embedding;
  if (tensors.count("final_logits_bias") == 0) {
    tensors["final_logits_bias"] = at::zeros({1, vocab_size});
  }
  return tensors;
}

absl::Status LoadIntoModule(const TensorMap& tensors, const std::string& source_name,
                            torch::nn::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> targets;
  for (const auto& item : module.named_parameters()) targets.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers()) targets.emplace_back(item.key(), item.value());
  std::vector<std::string> missing;
  std::vector<std::string> mismatched;
  std::vector<std::string> unexpected;
  std::map<std::string, bool> expected_names;
  for (const auto& [name, target] : targets) {
    expected_names[name] = true;
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      missing.push_back(name);
    } else if (!it->second.sizes().equals(target.sizes())) {
      mismatched.push_back(absl::StrCat(name, " has shape ", ShapeString(it->second.sizes()),
                                        ", the config implies ", ShapeString(target.sizes())));
    } else if (!at::isFloatingType(it->second.scalar_type())) {
      mismatched.push_back(absl::StrCat(name, " has non-float dtype ",
                                        c10::toString(it->second.scalar_type())));
    }
  }
  for (const auto& [name, tensor] : tensors) {
    if (expected_names.count(name) == 0) unexpected.push_back(name);
  }
  if (!missing.empty() || !mismatched.empty() || !unexpected.empty()) {
    std::vector<std::string> problems;
    if (!missing.empty()) problems.push_back(absl::StrCat("missing: ", absl::StrJoin(missing, ", ")));
    if (!unexpected.empty()) {
      problems.push_back(absl::StrCat("unexpected: ", absl::StrJoin(unexpected, ", ")));
    }
    if (!mismatched.empty()) {
      problems.push_back(absl::StrCat("wrong shape: ", absl::StrJoin(mismatched, "; ")));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ": weights do not fit the model; ", absl::StrJoin(problems, "; ")));
  }
  TASKMOE_RETURN_IF_ERROR(CheckFiniteTensors(tensors, source_name));
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) target.copy_(tensors.at(name));
  return absl::OkStatus();
}

absl::Status LoadBartWeights(TensorMap tensors, const std::string& source_name,
                             BartForConditionalGeneration& model) {
  TASKMOE_ASSIGN_OR_RETURN(
      const TensorMap canonical,
      CanonicalBartTensors(std::move(tensors), source_name, model->config().vocab_size));
  return LoadIntoModule(canonical, source_name, *model);
}

TensorMap BartStateDict(const BartForConditionalGeneration& model) {
  TensorMap state;
  for (const auto& item : model->named_parameters()) state[item.key()] = item.value().detach();
  for (const auto& item : model->named_buffers()) state[item.key()] = item.value().detach();
  return state;
}

absl::Status SaveBartWeights(const BartForConditionalGeneration& model, const std::string& path) {
  return WriteSafetensors(path, BartStateDict(model));
}

absl::StatusOr<BartForConditionalGeneration> LoadBartDirectory(const std::string& dir) {
  TASKMOE_ASSIGN_OR_RETURN(const BartConfig config, LoadBartConfig(dir + "/config.json"));
  const std::string weights_path = dir + "/model.safetensors";
  TASKMOE_ASSIGN_OR_RETURN(TensorMap tensors, ReadSafetensors(weights_path));
  BartForConditionalGeneration model(config);
  if (absl::Status s = LoadBartWeights(std::move(tensors), weights_path, model); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(s.message(), " (config: ", dir, "/config.json)"));
  }
  model->eval();
  return model;
}

}  // namespace taskmoe
