#include "moe/model/generation.h"

#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "moe/base/status_macros.h"

namespace taskmoe {
namespace {

constexpr float kMinusInfinity = -std::numeric_limits<float>::infinity();

// The options with the config's defaults filled in.
struct ResolvedOptions {
  GenerationOptions options;
  int64_t start_token;
  std::optional<int64_t> forced_eos;
  int64_t eos;
  int64_t pad;
};

ResolvedOptions Resolve(const GenerationOptions& options, const BartConfig& config) {
  ResolvedOptions r{options, options.decoder_start_token_id.value_or(config.decoder_start_token_id),
                    config.forced_eos_token_id, config.eos_token_id, config.pad_token_id};
  if (options.forced_eos_token_id.has_value()) {
    r.forced_eos = *options.forced_eos_token_id >= 0 ? options.forced_eos_token_id : std::nullopt;
  }
  return r;
}

// Tokens that would repeat an n-gram of `sequence` (Hugging Face NoRepeatNGramLogitsProcessor).
std::vector<int64_t> BannedNgramTokens(const int64_t* sequence, int64_t length, int64_t n) {
  std::vector<int64_t> banned;
  if (n <= 0 || length + 1 < n) return banned;
  const int64_t* prefix = sequence + length - (n - 1);
  for (int64_t start = 0; start + n <= length; ++start) {
    if (std::equal(prefix, prefix + n - 1, sequence + start)) banned.push_back(sequence[start + n - 1]);
  }
  return banned;
}

// Applies min_length, no_repeat_ngram_size and forced eos to `scores` [rows, vocab] for the
// next token after `sequences` (CPU int64 [rows, cur_len]).
at::Tensor ProcessScores(at::Tensor scores, const at::Tensor& sequences, const ResolvedOptions& r) {
  const int64_t cur_len = sequences.size(1);
  if (cur_len < r.options.min_length) scores.select(1, r.eos).fill_(kMinusInfinity);
  if (r.options.no_repeat_ngram_size > 0) {
    const at::Tensor contiguous = sequences.contiguous();
    for (int64_t row = 0; row < contiguous.size(0); ++row) {
      const std::vector<int64_t> banned = BannedNgramTokens(
          contiguous[row].data_ptr<int64_t>(), cur_len, r.options.no_repeat_ngram_size);
      for (int64_t token : banned) scores[row][token].fill_(kMinusInfinity);
    }
  }
  if (r.forced_eos.has_value() && cur_len == r.options.max_length - 1) {
    scores.fill_(kMinusInfinity);
    scores.select(1, *r.forced_eos).fill_(0);
  }
  return scores;
}

// Finished hypotheses of one batch entry (Hugging Face BeamHypotheses).
class BeamHypotheses {
 public:
  BeamHypotheses(int64_t num_beams, double length_penalty, bool early_stopping)
      : num_beams_(num_beams), length_penalty_(length_penalty), early_stopping_(early_stopping) {}

  void Add(std::vector<int64_t> tokens, double sum_log_probs) {
    const double score =
        sum_log_probs / std::pow(static_cast<double>(tokens.size()), length_penalty_);
    if (static_cast<int64_t>(beams_.size()) < num_beams_ || score > worst_score_) {
      beams_.emplace_back(score, std::move(tokens));
      if (static_cast<int64_t>(beams_.size()) > num_beams_) {
        auto worst = std::min_element(beams_.begin(), beams_.end(),
                                      [](const auto& a, const auto& b) { return a.first < b.first; });
        beams_.erase(worst);
        worst_score_ = std::min_element(beams_.begin(), beams_.end(), [](const auto& a, const auto& b) {
                         return a.first < b.first;
                       })->first;
      } else {
        worst_score_ = std::min(score, worst_score_);
      }
    }
  }

  // No open beam can beat the finished ones any more.
  bool IsDone(double best_sum_log_probs, int64_t cur_len) const {
    if (static_cast<int64_t>(beams_.size()) < num_beams_) return false;
    if (early_stopping_) return true;
    return worst_score_ >= best_sum_log_probs / std::pow(static_cast<double>(cur_len), length_penalty_);
  }

  const std::pair<double, std::vector<int64_t>>& Best() const {
    return *std::max_element(beams_.begin(), beams_.end(),
                             [](const auto& a, const auto& b) { return a.first < b.first; });
  }

 private:
  int64_t num_beams_;
  double length_penalty_;
  bool early_stopping_;
  std::vector<std::pair<double, std::vector<int64_t>>> beams_;
  double worst_score_ = 1e9;
};

std::vector<int64_t> Row(const at::Tensor& sequences, int64_t row) {
  const at::Tensor r = sequences[row].contiguous();
  return std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
}

// The encoder side of beam search with each example repeated once per beam: row
// example * beams + k belongs to beam k of that example.
struct BeamInputs {
  at::Device device;  // of input_ids, where the model runs
  at::Tensor encoder;
  at::Tensor mask;
  std::optional<RouteWeights> routes;
};

// Encodes each example once, then gives every beam its copy of the encoding, mask and routes.
BeamInputs RepeatForBeams(BartForConditionalGeneration& model, const at::Tensor& input_ids,
                          const at::Tensor& attention_mask, const RouteWeights* routes,
                          const ResolvedOptions& r) {
  BeamInputs inputs{input_ids.device()};
  const at::Tensor beam_of_example =
      at::arange(input_ids.size(0), at::kLong).repeat_interleave(r.options.num_beams);
  inputs.encoder = model->Encode(input_ids, attention_mask, routes)
                       .index_select(0, beam_of_example.to(inputs.device));
  if (attention_mask.defined()) {
    inputs.mask = attention_mask.index_select(0, beam_of_example.to(inputs.device));
  }
  if (routes != nullptr) {
    inputs.routes.emplace();
    inputs.routes->encoder = routes->encoder;
    if (routes->decoder.defined()) {
      inputs.routes->decoder =
          routes->decoder.index_select(1, beam_of_example.to(routes->decoder.device()));
    }
  }
  return inputs;
}

// The open beams (rows as in BeamInputs) and finished hypotheses of a batch, on the CPU.
struct BeamState {
  at::Tensor sequences;  // int64 [batch * beams, cur_len]
  at::Tensor scores;     // float [batch * beams]: each open beam's sum of log-probabilities
  std::vector<BeamHypotheses> hypotheses;  // per example
  std::vector<bool> done;                  // per example
};

BeamState StartBeams(int64_t batch, const ResolvedOptions& r) {
  const int64_t beams = r.options.num_beams;
  BeamState state;
  state.sequences = at::full({batch * beams, 1}, r.start_token, at::kLong);
  // Only the first beam of each example is live at the start, so the beams do not duplicate.
  state.scores = at::zeros({batch, beams}, at::kFloat);
  state.scores.slice(1, 1).fill_(-1e9);
  state.scores = state.scores.view({-1});
  state.hypotheses.assign(
      batch, BeamHypotheses(beams, r.options.length_penalty, r.options.early_stopping));
  state.done.assign(batch, false);
  return state;
}

// The score of every one-token continuation of every open beam, [batch, beams * vocab]: the
// beam's score plus the token's processed log-probability. Advances the decoder cache.
at::Tensor ContinuationScores(BartForConditionalGeneration& model, const BeamInputs& inputs,
                              const BeamState& state, const ResolvedOptions& r,
                              DecoderCache& cache) {
  const int64_t cur_len = state.sequences.size(1);
  const at::Tensor last = state.sequences.slice(1, cur_len - 1).to(inputs.device);
  const RouteWeights* routes = inputs.routes.has_value() ? &*inputs.routes : nullptr;
  const at::Tensor logits =
      model->Decode(last, inputs.encoder, inputs.mask, routes, &cache).select(1, 0);
  const at::Tensor scores = ProcessScores(
      at::log_softmax(logits.to(at::kFloat), -1).to(at::kCPU), state.sequences, r);
  const int64_t batch = static_cast<int64_t>(state.hypotheses.size());
  return (scores + state.scores.unsqueeze(1)).view({batch, -1});
}

// The beams kept for the next step, flat [batch * beams]: score, appended token, and the row
// of the current sequences that each one extends.
struct NextBeams {
  at::Tensor scores;
  at::Tensor tokens;
  at::Tensor rows;
};

// Walks each open example's 2 * beams best continuations in order: an eos among the first
// `beams` finishes a hypothesis, the first `beams` others stay open. Finished examples pad.
NextBeams ChooseNextBeams(const at::Tensor& scores, int64_t vocab, const ResolvedOptions& r,
                          BeamState& state) {
  const int64_t batch = scores.size(0);
  const int64_t beams = r.options.num_beams;
  const auto [top_scores, top_ids] = scores.topk(2 * beams, 1, /*largest=*/true, /*sorted=*/true);
  const at::Tensor top_beams = top_ids.div(vocab, "floor");
  const at::Tensor top_tokens = top_ids.remainder(vocab);
  const auto top_score = top_scores.accessor<float, 2>();
  const auto top_beam = top_beams.accessor<int64_t, 2>();
  const auto top_token = top_tokens.accessor<int64_t, 2>();
  at::Tensor next_scores = at::zeros({batch, beams}, at::kFloat);
  at::Tensor next_tokens = at::full({batch, beams}, r.pad, at::kLong);
  at::Tensor next_rows = (at::arange(batch, at::kLong) * beams).unsqueeze(1).repeat({1, beams});
  for (int64_t b = 0; b < batch; ++b) {
    if (state.done[b]) continue;
    int64_t filled = 0;
    for (int64_t rank = 0; rank < 2 * beams && filled < beams; ++rank) {
      const int64_t row = b * beams + top_beam[b][rank];
      if (top_token[b][rank] == r.eos) {
        // An eos outside the top num_beams candidates is not a hypothesis (as in Hugging Face).
        if (rank >= beams) continue;
        state.hypotheses[b].Add(Row(state.sequences, row), top_score[b][rank]);
      } else {
        next_scores[b][filled] = top_score[b][rank];
        next_tokens[b][filled] = top_token[b][rank];
        next_rows[b][filled] = row;
        ++filled;
      }
    }
    state.done[b] = state.hypotheses[b].IsDone(top_score[b][0], state.sequences.size(1));
  }
  return {next_scores.view({-1}), next_tokens.view({-1}), next_rows.view({-1})};
}

// Moves to the chosen beams: their rows gain their tokens, and the cache follows the rows.
void AdvanceBeams(const NextBeams& next, at::Device device, BeamState& state,
                  DecoderCache& cache) {
  state.sequences =
      at::cat({state.sequences.index_select(0, next.rows), next.tokens.view({-1, 1})}, 1);
  cache.Reorder(next.rows.to(device));
  state.scores = next.scores;
}

// At the length limit the open beams of unfinished examples compete with their finished
// hypotheses.
void AddOpenBeams(const ResolvedOptions& r, BeamState& state) {
  const int64_t beams = r.options.num_beams;
  for (int64_t b = 0; b < static_cast<int64_t>(state.hypotheses.size()); ++b) {
    if (state.done[b]) continue;
    for (int64_t k = 0; k < beams; ++k) {
      state.hypotheses[b].Add(Row(state.sequences, b * beams + k),
                              state.scores[b * beams + k].item<float>());
    }
  }
}

// Each example's best hypothesis closed by eos (where max_length leaves room), padded to the
// longest, with its score.
GenerationOutput BestHypotheses(const std::vector<BeamHypotheses>& hypotheses,
                                const ResolvedOptions& r, at::Device device) {
  const int64_t batch = static_cast<int64_t>(hypotheses.size());
  int64_t longest = 0;
  for (const BeamHypotheses& h : hypotheses) {
    longest = std::max<int64_t>(longest, h.Best().second.size());
  }
  const int64_t width = std::min(longest + 1, r.options.max_length);
  GenerationOutput out;
  at::Tensor result = at::full({batch, width}, r.pad, at::kLong);
  out.sequence_scores = at::zeros({batch}, at::kFloat);
  for (int64_t b = 0; b < batch; ++b) {
    const auto& [score, tokens] = hypotheses[b].Best();
    const int64_t length = tokens.size();
    result[b].slice(0, 0, length).copy_(at::tensor(tokens, at::kLong));
    if (length < r.options.max_length) result[b][length] = r.eos;
    out.sequence_scores[b] = score;
  }
  out.sequences = result.to(device);
  out.sequence_scores = out.sequence_scores.to(device);
  return out;
}

absl::Status CheckInputs(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                         const RouteWeights* routes) {
  if (input_ids.dim() != 2 || input_ids.scalar_type() != at::kLong) {
    return absl::InvalidArgumentError("input_ids must be int64 [batch, source_len]");
  }
  if (attention_mask.defined() && !attention_mask.sizes().equals(input_ids.sizes())) {
    return absl::InvalidArgumentError("attention_mask must have the shape of input_ids");
  }
  if (routes != nullptr && routes->decoder.defined() &&
      routes->decoder.size(1) != input_ids.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat("decoder routes are for ", routes->decoder.size(1),
                                                   " examples, the batch has ", input_ids.size(0)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateGenerationOptions(const GenerationOptions& options, const BartConfig& config) {
  if (options.max_length < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_length must be >= 1, got ", options.max_length));
  }
  if (options.max_length > config.max_position_embeddings) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_length ", options.max_length, " exceeds max_position_embeddings ",
                     config.max_position_embeddings));
  }
  if (options.num_beams < 1) {
    return absl::InvalidArgumentError(absl::StrCat("num_beams must be >= 1, got ", options.num_beams));
  }
  if (options.min_length < 0 || options.no_repeat_ngram_size < 0) {
    return absl::InvalidArgumentError("min_length and no_repeat_ngram_size must be >= 0");
  }
  for (const std::optional<int64_t>& id :
       {options.decoder_start_token_id, options.forced_eos_token_id}) {
    if (id.has_value() && *id >= config.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", *id, " is outside vocab_size ", config.vocab_size));
    }
  }
  if (options.decoder_start_token_id.has_value() && *options.decoder_start_token_id < 0) {
    return absl::InvalidArgumentError("decoder_start_token_id must be >= 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<GenerationOutput> GreedySearch(BartForConditionalGeneration& model,
                                              const at::Tensor& input_ids,
                                              const at::Tensor& attention_mask,
                                              const GenerationOptions& options,
                                              const RouteWeights* routes) {
  TASKMOE_RETURN_IF_ERROR(ValidateGenerationOptions(options, model->config()));
  TASKMOE_RETURN_IF_ERROR(CheckInputs(input_ids, attention_mask, routes));
  torch::NoGradGuard no_grad;
  const ResolvedOptions r = Resolve(options, model->config());
  const int64_t batch = input_ids.size(0);
  const at::Device device = input_ids.device();
  const at::Tensor encoder = model->Encode(input_ids, attention_mask, routes);
  DecoderCache cache = model->model->decoder->NewCache();
  // Sequences and the finished flags stay on the CPU, where the per-step bookkeeping happens.
  at::Tensor sequences = at::full({batch, 1}, r.start_token, at::kLong);
  at::Tensor unfinished = at::ones({batch}, at::kLong);
  std::vector<at::Tensor> step_logits;
  while (sequences.size(1) < r.options.max_length) {
    const at::Tensor last = sequences.slice(1, sequences.size(1) - 1).to(device);
    const at::Tensor logits =
        model->Decode(last, encoder, attention_mask, routes, &cache).select(1, 0).to(at::kCPU);
    if (options.output_step_logits) step_logits.push_back(logits);
    const at::Tensor scores = ProcessScores(logits.to(at::kFloat).clone(), sequences, r);
    at::Tensor next = scores.argmax(-1);
    next = next * unfinished + r.pad * (1 - unfinished);
    sequences = at::cat({sequences, next.unsqueeze(1)}, 1);
    unfinished = unfinished * next.ne(r.eos).to(at::kLong);
    if (unfinished.max().item<int64_t>() == 0) break;
  }
  GenerationOutput out;
  out.sequences = sequences.to(device);
  if (options.output_step_logits && !step_logits.empty()) {
    out.step_logits = at::stack(step_logits, 1).to(device);
  }
  return out;
}

absl::StatusOr<GenerationOutput> BeamSearch(BartForConditionalGeneration& model,
                                            const at::Tensor& input_ids,
                                            const at::Tensor& attention_mask,
                                            const GenerationOptions& options,
                                            const RouteWeights* routes) {
  TASKMOE_RETURN_IF_ERROR(ValidateGenerationOptions(options, model->config()));
  TASKMOE_RETURN_IF_ERROR(CheckInputs(input_ids, attention_mask, routes));
  torch::NoGradGuard no_grad;
  const ResolvedOptions r = Resolve(options, model->config());
  const BeamInputs inputs = RepeatForBeams(model, input_ids, attention_mask, routes, r);
  DecoderCache cache = model->model->decoder->NewCache();
  BeamState state = StartBeams(input_ids.size(0), r);
  while (state.sequences.size(1) < r.options.max_length) {
    const at::Tensor scores = ContinuationScores(model, inputs, state, r, cache);
    const NextBeams next = ChooseNextBeams(scores, model->config().vocab_size, r, state);
    AdvanceBeams(next, inputs.device, state, cache);
    if (std::all_of(state.done.begin(), state.done.end(), [](bool d) { return d; })) break;
  }
  AddOpenBeams(r, state);
  return BestHypotheses(state.hypotheses, r, inputs.device);
}

absl::StatusOr<GenerationOutput> Generate(BartForConditionalGeneration& model,
                                          const at::Tensor& input_ids,
                                          const at::Tensor& attention_mask,
                                          const GenerationOptions& options,
                                          const RouteWeights* routes) {
  if (options.num_beams == 1) return GreedySearch(model, input_ids, attention_mask, options, routes);
  return BeamSearch(model, input_ids, attention_mask, options, routes);
}

}  // namespace taskmoe
