#ifndef TASKMOE_DATA_DENOISING_H_
#define TASKMOE_DATA_DENOISING_H_

// BART's text-infilling noise (Lewis et al. 2020, §2.2; fairseq's DenoisingDataset with
// mask_length=span-poisson, replace_length=1): spans whose lengths are drawn from a Poisson
// distribution cover mask_ratio of the tokens, and each span becomes a single <mask>, so the
// model must also predict how many tokens are missing. A span of length 0 inserts a <mask>.
// The denoising target is the uncorrupted sequence.

#include <cstdint>
#include <vector>

#include "data/gym/gym_random.h"

namespace taskmoe {

struct TextInfillingOptions {
  double mask_ratio = 0.3;      // BART: 30% of the tokens are masked
  double poisson_lambda = 3.0;  // BART: span lengths ~ Poisson(3)
};

// A span of the uncorrupted sequence replaced by one mask; length 0 marks an inserted mask
// (before the token at `start`).
struct MaskedSpan {
  int64_t start = 0;
  int64_t length = 0;
};

struct InfilledSequence {
  std::vector<int64_t> tokens;   // the corrupted sequence
  std::vector<MaskedSpan> spans;  // in order of position; the i-th mask of `tokens` is spans[i]
};

// Corrupts `tokens` (no <s> or </s>): ceil(mask_ratio * size) tokens are removed in spans
// of Poisson(poisson_lambda) lengths (the last length cut to hit the count exactly), placed
// at uniformly random non-adjacent positions, each replaced by `mask_id`. When more spans are
// drawn than there are gaps between unmasked tokens, the surplus spans join the last one.
// Every random choice comes from `random` (SplitMix64), so corpora are identical on every
// platform.
InfilledSequence InfillSpans(const std::vector<int64_t>& tokens, int64_t mask_id,
                             const TextInfillingOptions& options, gym::GymRandom& random);

// A Poisson(lambda) draw by inversion of uniform draws of `random` (lambda ≤ 30).
int64_t PoissonDraw(double lambda, gym::GymRandom& random);

}  // namespace taskmoe

#endif  // TASKMOE_DATA_DENOISING_H_
