#include "moe/model/generation.h"

#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
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
  const int64_t batch = input_ids.size(0);
  const int64_t beams = options.num_beams;
  const int64_t vocab = model->config().vocab_size;
  const at::Device device = input_ids.device();
  // Encode once per example, then give every beam its copy.
  const at::Tensor beam_of_example = at::arange(batch, at::kLong).repeat_interleave(beams);
  const at::Tensor encoder =
      model->Encode(input_ids, attention_mask, routes).index_select(0, beam_of_example.to(device));
  const at::Tensor mask = attention_mask.defined()
                              ? attention_mask.index_select(0, beam_of_example.to(device))
                              : at::Tensor();
  RouteWeights beam_routes;
  if (routes != nullptr) {
    beam_routes.encoder = routes->encoder;
    if (routes->decoder.defined()) {
      beam_routes.decoder = routes->decoder.index_select(1, beam_of_example.to(routes->decoder.device()));
    }
  }
  DecoderCache cache = model->model->decoder->NewCache();
  at::Tensor sequences = at::full({batch * beams, 1}, r.start_token, at::kLong);
  // Only the first beam of each example is live at the start, so the beams do not duplicate.
  at::Tensor beam_scores = at::zeros({batch, beams}, at::kFloat);
  beam_scores.slice(1, 1).fill_(-1e9);
  beam_scores = beam_scores.view({-1});
  std::vector<BeamHypotheses> hypotheses(
      batch, BeamHypotheses(beams, options.length_penalty, options.early_stopping));
  std::vector<bool> done(batch, false);
  while (sequences.size(1) < r.options.max_length) {
    const int64_t cur_len = sequences.size(1);
    const at::Tensor last = sequences.slice(1, cur_len - 1).to(device);
    const at::Tensor logits = model->Decode(last, encoder, mask, routes ? &beam_routes : nullptr,
                                            &cache).select(1, 0);
    at::Tensor scores = ProcessScores(at::log_softmax(logits.to(at::kFloat), -1).to(at::kCPU),
                                      sequences, r);
    scores = (scores + beam_scores.unsqueeze(1)).view({batch, beams * vocab});
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
      if (done[b]) continue;  // finished entries keep padding
      int64_t filled = 0;
      for (int64_t rank = 0; rank < 2 * beams && filled < beams; ++rank) {
        const int64_t row = b * beams + top_beam[b][rank];
        if (top_token[b][rank] == r.eos) {
          // An eos outside the top num_beams candidates is not a hypothesis (as in Hugging Face).
          if (rank >= beams) continue;
          hypotheses[b].Add(Row(sequences, row), top_score[b][rank]);
        } else {
          next_scores[b][filled] = top_score[b][rank];
          next_tokens[b][filled] = top_token[b][rank];
          next_rows[b][filled] = row;
          ++filled;
        }
      }
      done[b] = hypotheses[b].IsDone(top_score[b][0], cur_len);
    }
    next_rows = next_rows.view({-1});
    sequences = at::cat({sequences.index_select(0, next_rows), next_tokens.view({-1, 1})}, 1);
    cache.Reorder(next_rows.to(device));
    beam_scores = next_scores.view({-1});
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
  }
  // Open beams of unfinished entries compete with the finished hypotheses.
  for (int64_t b = 0; b < batch; ++b) {
    if (done[b]) continue;
    for (int64_t k = 0; k < beams; ++k) {
      hypotheses[b].Add(Row(sequences, b * beams + k), beam_scores[b * beams + k].item<float>());
    }
  }
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

absl::StatusOr<GenerationOutput> Generate(BartForConditionalGeneration& model,
                                          const at::Tensor& input_ids,
                                          const at::Tensor& attention_mask,
                                          const GenerationOptions& options,
                                          const RouteWeights* routes) {
  if (options.num_beams == 1) return GreedySearch(model, input_ids, attention_mask, options, routes);
  return BeamSearch(model, input_ids, attention_mask, options, routes);
}

}  // namespace taskmoe
