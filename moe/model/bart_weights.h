#ifndef TASKMOE_MOE_MODEL_BART_WEIGHTS_H_
#define TASKMOE_MOE_MODEL_BART_WEIGHTS_H_

// Hugging Face-named weights for BART: loading, saving, and whole model directories.

#include <torch/nn/module.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moe/formats/bart_config.h"
#include "moe/formats/safetensors.h"
#include "moe/model/bart.h"

namespace taskmoe {

// The names under which Hugging Face checkpoints may store the tied token embedding.
inline constexpr const char* kTiedEmbeddingNames[] = {
    "model.shared.weight", "model.encoder.embed_tokens.weight",
    "model.decoder.embed_tokens.weight", "lm_head.weight"};

// Brings a checkpoint's names to BartForConditionalGeneration's: a BartModel checkpoint (no
// "model." prefix) gets the prefix; the tied embedding, stored under any of
// kTiedEmbeddingNames, becomes "model.shared.weight" alone (copies that differ are an error);
// a missing "final_logits_bias" is zeros, as Hugging Face initialises it. `source_name` is
// named in errors.
absl::StatusOr<TensorMap> CanonicalBartTensors(TensorMap tensors, const std::string& source_name,
                                               int64_t vocab_size);

// Copies `tensors` into `module`'s parameters and buffers by name, converting the dtype. Every
// parameter and buffer must be present with its shape, and no other tensor may be: otherwise the
// error lists all missing, unexpected and mis-shaped names (shapes are those the config implies).
absl::Status LoadIntoModule(const TensorMap& tensors, const std::string& source_name,
                            torch::nn::Module& module);

// CanonicalBartTensors, then LoadIntoModule.
absl::Status LoadBartWeights(TensorMap tensors, const std::string& source_name,
                             BartForConditionalGeneration& model);

// Parameters and buffers under their Hugging Face names, the tied embedding once as
// "model.shared.weight" (as safetensors exports store it).
TensorMap BartStateDict(const BartForConditionalGeneration& model);

// Writes BartStateDict(model) to a safetensors file.
absl::Status SaveBartWeights(const BartForConditionalGeneration& model, const std::string& path);

// Builds the model from `<dir>/config.json` and loads `<dir>/model.safetensors`; eval mode.
absl::StatusOr<BartForConditionalGeneration> LoadBartDirectory(const std::string& dir);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_MODEL_BART_WEIGHTS_H_
