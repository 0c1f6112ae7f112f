// Runs a Hugging Face BART directory on inputs from a safetensors file and writes its outputs, so
// that TaskMoE can be compared with another implementation (e.g. Hugging Face) tensor by tensor.
//
//   score --model=path/to/bart --input=case.safetensors --output=out.safetensors
//         [--greedy_max_length=12] [--forced_eos_token_id=-1] [--decoder_start_token_id=0]
//
// Input tensors: input_ids, attention_mask (int64 [batch, source_len]) and decoder_input_ids
// (int64 [batch, target_len]). Output: logits, encoder_last_hidden_state, and greedy_ids when
// --greedy_max_length is given (decoded as generate() does: the config's forced eos unless
// --forced_eos_token_id=-1).

#include <torch/csrc/autograd/grad_mode.h>

#include <cstdint>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "moe/base/status_macros.h"
#include "moe/formats/safetensors.h"
#include "moe/formats/tensor_shape.h"
#include "moe/model/bart.h"
#include "moe/model/bart_weights.h"
#include "moe/model/generation.h"
#include "tools/generation_flags.h"
#include "tools/model_flags.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, model_dir, "", "Deprecated name of --model.");
ABSL_FLAG(std::string, input, "",
          "safetensors file with input_ids, attention_mask and decoder_input_ids.");
ABSL_FLAG(std::string, output, "", "safetensors file to write the outputs to.");
ABSL_FLAG(int64_t, greedy_max_length, 0,
          "If > 0, also greedy-decode up to this length (counting the start token): greedy_ids.");

namespace taskmoe {
namespace {

// The model's inputs read from `path`, on `device`.
struct ScoreInputs {
  at::Tensor input_ids;
  at::Tensor attention_mask;
  at::Tensor decoder_input_ids;
};

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

// Reads the three tensors and checks them against each other and the model's config.
absl::StatusOr<ScoreInputs> ReadInputs(const std::string& path, const BartConfig& config,
                                       const at::Device& device) {
  TASKMOE_ASSIGN_OR_RETURN(const TensorMap tensors, ReadSafetensors(path));
  ScoreInputs in;
  TASKMOE_ASSIGN_OR_RETURN(in.input_ids, InputTensor(tensors, "input_ids", path, device));
  TASKMOE_ASSIGN_OR_RETURN(in.attention_mask,
                           InputTensor(tensors, "attention_mask", path, device));
  TASKMOE_ASSIGN_OR_RETURN(in.decoder_input_ids,
                           InputTensor(tensors, "decoder_input_ids", path, device));
  if (in.input_ids.size(0) == 0 || in.input_ids.size(1) == 0 ||
      in.decoder_input_ids.size(1) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": an empty batch (input_ids ", ShapeString(in.input_ids.sizes()),
        ", decoder_input_ids ", ShapeString(in.decoder_input_ids.sizes()),
        "); expected at least one example of at least one token"));
  }
  if (!in.attention_mask.sizes().equals(in.input_ids.sizes()) ||
      in.decoder_input_ids.size(0) != in.input_ids.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": attention_mask must have the shape of input_ids and decoder_input_ids "
              "the same batch size"));
  }
  for (const auto& [name, ids] : {std::make_pair("input_ids", in.input_ids),
                                  std::make_pair("decoder_input_ids", in.decoder_input_ids)}) {
    if (ids.numel() > 0 &&
        (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= config.vocab_size)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": tensor '", name, "' has ids outside [0, ", config.vocab_size, ")"));
    }
    if (ids.size(1) > config.max_position_embeddings) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor '", name, "' is longer than max_position_embeddings ",
                       config.max_position_embeddings));
    }
  }
  return in;
}

absl::Status Run() {
  TASKMOE_ASSIGN_OR_RETURN(const at::Device device, SetUpDeviceAndThreads());
  TASKMOE_ASSIGN_OR_RETURN(const std::string model_dir,
                           HuggingFaceModelFlag("model_dir", absl::GetFlag(FLAGS_model_dir)));
  TASKMOE_ASSIGN_OR_RETURN(BartForConditionalGeneration model, LoadBartDirectory(model_dir));
  model->to(device);
  TASKMOE_ASSIGN_OR_RETURN(const ScoreInputs in,
                           ReadInputs(absl::GetFlag(FLAGS_input), model->config(), device));
  TensorMap outputs;
  {
    torch::NoGradGuard no_grad;
    BartOutput out = model->Forward(in.input_ids, in.attention_mask, in.decoder_input_ids);
    outputs["logits"] = out.logits;
    outputs["encoder_last_hidden_state"] = out.encoder_last_hidden_state;
  }
  if (absl::GetFlag(FLAGS_greedy_max_length) > 0) {
    GenerationOptions options;
    options.max_length = absl::GetFlag(FLAGS_greedy_max_length);
    ApplyDecodingFlags(&options);
    TASKMOE_ASSIGN_OR_RETURN(const GenerationOutput greedy,
                             GreedySearch(model, in.input_ids, in.attention_mask, options));
    outputs["greedy_ids"] = greedy.sequences;
  }
  return WriteSafetensors(absl::GetFlag(FLAGS_output), outputs);
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "score";
  tool.output_flags = {"output"};
  tool.runs_models = true;
  tool.usage =
      "Runs a Hugging Face BART directory on the inputs of a safetensors file and writes its "
      "outputs.";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
