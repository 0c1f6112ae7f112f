// Runs a BART model directory on inputs from a safetensors file and writes its outputs, so that
// TaskMoE can be compared with another implementation (e.g. Hugging Face) tensor by tensor.
//
//   score --model_dir=path/to/bart --input=case.safetensors --output=out.safetensors
//         [--greedy_max_length=12] [--forced_eos_token_id=2] [--decoder_start_token_id=0]
//
// Input tensors: input_ids, attention_mask (int64 [batch, source_len]) and decoder_input_ids
// (int64 [batch, target_len]). Output: logits, encoder_last_hidden_state, and greedy_ids when
// --greedy_max_length is given.

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <cstdint>
#include <iostream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "moe/formats/safetensors.h"
#include "moe/model/bart.h"
#include "moe/model/bart_weights.h"
#include "moe/model/generation.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, model_dir, "", "Model directory with config.json and model.safetensors.");
ABSL_FLAG(std::string, input, "",
          "safetensors file with input_ids, attention_mask and decoder_input_ids.");
ABSL_FLAG(std::string, output, "", "safetensors file to write the outputs to.");
ABSL_FLAG(int64_t, greedy_max_length, 0,
          "If > 0, also greedy-decode up to this length (counting the start token): greedy_ids.");
ABSL_FLAG(int64_t, decoder_start_token_id, -1,
          "Start token of greedy decoding; -1: the config's decoder_start_token_id.");
ABSL_FLAG(int64_t, forced_eos_token_id, -1,
          "Token forced at the last greedy position; -1: none (plain greedy decoding).");
ABSL_FLAG(std::string, device, "cpu", "cpu or cuda[:index].");
ABSL_FLAG(int32_t, threads, static_cast<int32_t>(std::thread::hardware_concurrency()),
          "Intra-op CPU threads.");

namespace taskmoe {
namespace {

absl::StatusOr<at::Tensor> InputTensor(const TensorMap& inputs, const std::string& name,
                                       const std::string& path, const at::Device& device) {
  auto it = inputs.find(name);
  if (it == inputs.end()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": missing tensor '", name, "'"));
  }
  if (it->second.dim() != 2 || it->second.scalar_type() != at::kLong) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": tensor '", name, "' must be int64 [batch, length]"));
  }
  return it->second.to(device);
}

absl::Status Run() {
  at::set_num_threads(absl::GetFlag(FLAGS_threads));
  const at::Device device(absl::GetFlag(FLAGS_device));
  absl::StatusOr<BartForConditionalGeneration> model =
      LoadBartDirectory(absl::GetFlag(FLAGS_model_dir));
  if (!model.ok()) return model.status();
  (*model)->to(device);
  const std::string input_path = absl::GetFlag(FLAGS_input);
  absl::StatusOr<TensorMap> inputs = ReadSafetensors(input_path);
  if (!inputs.ok()) return inputs.status();
  absl::StatusOr<at::Tensor> input_ids = InputTensor(*inputs, "input_ids", input_path, device);
  if (!input_ids.ok()) return input_ids.status();
  absl::StatusOr<at::Tensor> attention_mask =
      InputTensor(*inputs, "attention_mask", input_path, device);
  if (!attention_mask.ok()) return attention_mask.status();
  absl::StatusOr<at::Tensor> decoder_input_ids =
      InputTensor(*inputs, "decoder_input_ids", input_path, device);
  if (!decoder_input_ids.ok()) return decoder_input_ids.status();
  if (!attention_mask->sizes().equals(input_ids->sizes()) ||
      decoder_input_ids->size(0) != input_ids->size(0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        input_path, ": attention_mask must have the shape of input_ids and decoder_input_ids "
                    "the same batch size"));
  }
  const BartConfig& config = (*model)->config();
  for (const auto& [name, ids] : {std::make_pair("input_ids", *input_ids),
                                  std::make_pair("decoder_input_ids", *decoder_input_ids)}) {
    if (ids.numel() > 0 && (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= config.vocab_size)) {
      return absl::InvalidArgumentError(absl::StrCat(input_path, ": tensor '", name,
                                                     "' has ids outside [0, ", config.vocab_size, ")"));
    }
    if (ids.size(1) > config.max_position_embeddings) {
      return absl::InvalidArgumentError(absl::StrCat(input_path, ": tensor '", name, "' is longer than max_position_embeddings ",
                                                     config.max_position_embeddings));
    }
  }

  TensorMap outputs;
  {
    torch::NoGradGuard no_grad;
    BartOutput out = (*model)->Forward(*input_ids, *attention_mask, *decoder_input_ids);
    outputs["logits"] = out.logits;
    outputs["encoder_last_hidden_state"] = out.encoder_last_hidden_state;
  }
  if (absl::GetFlag(FLAGS_greedy_max_length) > 0) {
    GenerationOptions options;
    options.max_length = absl::GetFlag(FLAGS_greedy_max_length);
    options.forced_eos_token_id = absl::GetFlag(FLAGS_forced_eos_token_id);
    if (absl::GetFlag(FLAGS_decoder_start_token_id) >= 0) {
      options.decoder_start_token_id = absl::GetFlag(FLAGS_decoder_start_token_id);
    }
    absl::StatusOr<GenerationOutput> greedy =
        GreedySearch(*model, *input_ids, *attention_mask, options);
    if (!greedy.ok()) return greedy.status();
    outputs["greedy_ids"] = greedy->sequences;
  }
  return WriteSafetensors(absl::GetFlag(FLAGS_output), outputs);
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "score";
  tool.runs_models = true;
  tool.usage =
      "Runs a BART model directory on the inputs of a safetensors file and writes its outputs.";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
