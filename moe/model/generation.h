#ifndef TASKMOE_MOE_MODEL_GENERATION_H_
#define TASKMOE_MOE_MODEL_GENERATION_H_

// Greedy and beam-search decoding for BART with the key/value cache, following Hugging Face
// generate() (greedy_search / beam_search with BeamSearchScorer, transformers 4.x semantics).

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "moe/model/bart.h"
#include "moe/model/route_weights.h"

namespace taskmoe {

struct GenerationOptions {
  // Length limit of the output, counting the decoder start token (Hugging Face max_length).
  int64_t max_length = 20;
  // eos is forbidden while the output is shorter than this (Hugging Face min_length).
  int64_t min_length = 0;
  int64_t num_beams = 1;  // 1: greedy search
  // Beam search: a batch entry stops once num_beams hypotheses are finished, even if an open
  // beam could still score better.
  bool early_stopping = false;
  // Beam search: a finished hypothesis scores sum(log p) / length^length_penalty, where length
  // counts the start token and excludes eos.
  double length_penalty = 1.0;
  // Forbid any n-gram of this size from occurring twice (0: off).
  int64_t no_repeat_ngram_size = 0;
  // First decoder token; unset: the config's decoder_start_token_id. An option because the
  // original research code trains with decoder_start_token_id = eos (2, via shift_tokens_right)
  // but evaluates with generate(decoder_start_token_id = bos = 0); set 0 to reproduce its numbers.
  std::optional<int64_t> decoder_start_token_id;
  // Token forced at the last position (index max_length - 1), as Hugging Face's
  // ForcedEOSTokenLogitsProcessor; unset: the config's forced_eos_token_id; negative: none.
  std::optional<int64_t> forced_eos_token_id;
  // Greedy search only: also return each step's raw logits.
  bool output_step_logits = false;
};

struct GenerationOutput {
  // int64 [batch, length <= max_length]: the start token, the generated tokens, eos, then pad.
  at::Tensor sequences;
  // Beam search: float [batch], the length-penalised score of each returned sequence.
  at::Tensor sequence_scores;
  // Greedy search with output_step_logits: [batch, length - 1, vocab]; [:, t] scored the choice
  // of sequences[:, t + 1], before any logits processor.
  at::Tensor step_logits;
};

// Checks `options` against the model's config: lengths, beams, token ids in the vocabulary.
absl::Status ValidateGenerationOptions(const GenerationOptions& options, const BartConfig& config);

// Decodes a batch: greedy search when num_beams == 1, beam search otherwise. input_ids and
// attention_mask: [batch, source_len] on the model's device. routes: nullptr for a dense model,
// else routes for `batch` examples (they are repeated for the beams). Runs without gradients;
// the caller chooses eval or train mode.
absl::StatusOr<GenerationOutput> Generate(BartForConditionalGeneration& model,
                                          const at::Tensor& input_ids,
                                          const at::Tensor& attention_mask,
                                          const GenerationOptions& options,
                                          const RouteWeights* routes = nullptr);

// The two searches, callable directly (BeamSearch also with num_beams == 1).
absl::StatusOr<GenerationOutput> GreedySearch(BartForConditionalGeneration& model,
                                              const at::Tensor& input_ids,
                                              const at::Tensor& attention_mask,
                                              const GenerationOptions& options,
                                              const RouteWeights* routes = nullptr);
absl::StatusOr<GenerationOutput> BeamSearch(BartForConditionalGeneration& model,
                                            const at::Tensor& input_ids,
                                            const at::Tensor& attention_mask,
                                            const GenerationOptions& options,
                                            const RouteWeights* routes = nullptr);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_MODEL_GENERATION_H_
