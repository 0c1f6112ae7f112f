#ifndef TASKMOE_MOE_MODEL_MOE_MODEL_H_
#define TASKMOE_MOE_MODEL_MOE_MODEL_H_

// The task-level MoE BART: building it, initialising it from a dense BART, running it with
// validated routes, and extracting the dense BART that one task's hard routes select.
//
// The model is a BartForConditionalGeneration whose non-vanilla layers are MoeEncoderLayer /
// MoeDecoderLayer, so parameter names read
// "model.encoder.layers.0.experts.1.self_attn.k_proj.weight"; vanilla layers keep their dense
// names ("model.encoder.layers.0.self_attn.k_proj.weight").

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moe/formats/bart_config.h"
#include "moe/model/bart.h"
#include "moe/model/moe_layers.h"
#include "moe/model/route_weights.h"

namespace taskmoe {

struct MoeOptions {
  int64_t experts = 3;
  // Layer indices that stay single dense BART layers.
  std::vector<int64_t> encoder_vanilla_layers;
  std::vector<int64_t> decoder_vanilla_layers;
  // Standard deviation of the Gaussian noise added to each expert's copy of the dense layer.
  double init_eps = 1e-8;
  // Run the experts of a layer concurrently on single-threaded workers when LibTorch has more
  // than one intra-op thread (see moe/moe_layers.h); false: one expert after another.
  bool concurrent_experts = true;
  // Under soft routes run a layer's experts as batched work (moe/model/batched_experts.h, see
  // MoeLayerOptions::batched); false: one job per expert, as for other routes.
  bool batched_experts = true;
  // The gradient of route weights that are zero in the forward pass (moe/model/moe_layers.h).
  RouteGradient route_gradient = RouteGradient::kAllExperts;
  // Mix the experts' outputs (the paper's) or run one layer of merged parameters per group of
  // equal routes (moe/model/merged_experts.h).
  ExpertExecution expert_execution = ExpertExecution::kMixOutputs;
};

// Errors name the offending field: experts < 1, a vanilla index outside the model's layers or
// listed twice, a negative init_eps.
absl::Status ValidateMoeOptions(const MoeOptions& options, const BartConfig& config);

// The config of a BART as Hugging Face writes config.json (ParseBartConfig reads it back).
std::string BartConfigJson(const BartConfig& config);

class MoeBart {
 public:
  // Fresh weights (the LibTorch default initialisation).
  static absl::StatusOr<MoeBart> Create(const BartConfig& config, const MoeOptions& options);

  // Every parameter and buffer copied from `dense` (same config); each expert gets its dense
  // layer plus N(0, init_eps^2) noise drawn from LibTorch's default generator (seed it with
  // torch::manual_seed for reproducible experts). Eval mode.
  static absl::StatusOr<MoeBart> FromDense(const BartForConditionalGeneration& dense,
                                           const MoeOptions& options);
  // FromDense of a Hugging Face directory (config.json + model.safetensors).
  static absl::StatusOr<MoeBart> FromDenseDirectory(const std::string& dir,
                                                    const MoeOptions& options);

  // Teacher-forced pass after checking `routes` against the model and the batch.
  absl::StatusOr<BartOutput> Forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                     const at::Tensor& decoder_input_ids,
                                     const RouteWeights& routes);

  // ValidateRoutes for this model's shape.
  absl::Status CheckRoutes(const RouteWeights& routes, int64_t batch) const;

  // The dense BART equal to this model under the routes of one task (`routes` with batch 1).
  // Mixed outputs: the rows of MoE layers must be one-hot (a single weight 1, the rest 0), and the
  // chosen expert of each MoE layer becomes that layer. Merged parameters: any routes; each MoE
  // layer becomes the route-weighted sum of its experts' parameters. Everything else is copied.
  // Eval mode.
  absl::StatusOr<BartForConditionalGeneration> ExtractDense(const RouteWeights& routes) const;

  BartForConditionalGeneration& model() { return model_; }
  const BartForConditionalGeneration& model() const { return model_; }
  const BartConfig& config() const { return config_; }
  const MoeOptions& options() const { return options_; }
  const ModelShape& shape() const { return shape_; }

 private:
  MoeBart(BartForConditionalGeneration model, const BartConfig& config, const MoeOptions& options);

  BartForConditionalGeneration model_;
  BartConfig config_;
  MoeOptions options_;
  ModelShape shape_;
};

// Writes `model` as a Hugging Face directory (config.json + model.safetensors), swapped in
// atomically, so it loads with LoadBartDirectory or transformers' from_pretrained.
absl::Status SaveBartDirectory(const BartForConditionalGeneration& model, const std::string& dir);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_MODEL_MOE_MODEL_H_
