#include "data/denoising.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <glog/logging.h>

namespace taskmoe {
namespace {

// Uniform in [0, 1) from the top 53 bits of a draw.
double Uniform(gym::GymRandom& random) { return (random.Next() >> 11) * 0x1.0p-53; }

// Span lengths drawn until they cover `to_mask` tokens, the last one cut to hit it exactly.
std::vector<int64_t> DrawSpanLengths(int64_t to_mask, double lambda, gym::GymRandom& random) {
  std::vector<int64_t> lengths;
  int64_t covered = 0;
  while (covered < to_mask) {
    const int64_t length = std::min(PoissonDraw(lambda, random), to_mask - covered);
    lengths.push_back(length);
    covered += length;
  }
  return lengths;
}

}  // namespace

int64_t PoissonDraw(double lambda, gym::GymRandom& random) {
  CHECK(lambda > 0 && lambda <= 30) << "Poisson lambda " << lambda << " outside (0, 30]";
  // Knuth's product of uniforms: exact, and fast for the small lambdas of span lengths.
  const double limit = std::exp(-lambda);
  int64_t draw = 0;
  for (double product = Uniform(random); product > limit; product *= Uniform(random)) ++draw;
  return draw;
}

InfilledSequence InfillSpans(const std::vector<int64_t>& tokens, int64_t mask_id,
                             const TextInfillingOptions& options, gym::GymRandom& random) {
  CHECK(options.mask_ratio >= 0 && options.mask_ratio <= 1) << options.mask_ratio;
  const int64_t size = static_cast<int64_t>(tokens.size());
  const int64_t to_mask = std::min<int64_t>(
      size, static_cast<int64_t>(std::ceil(options.mask_ratio * static_cast<double>(size))));
  if (to_mask == 0) return {tokens, {}};

  std::vector<int64_t> spans, insertions;
  for (int64_t length : DrawSpanLengths(to_mask, options.poisson_lambda, random)) {
    (length > 0 ? spans : insertions).push_back(length);
  }
  // A span may sit in each gap between (and around) the unmasked tokens; surplus spans merge
  // into the last placed one, so exactly `to_mask` tokens are still removed.
  const int64_t unmasked = size - to_mask;
  const int64_t gaps = unmasked + 1;
  if (static_cast<int64_t>(spans.size()) > gaps) {
    spans[gaps - 1] = std::accumulate(spans.begin() + gaps - 1, spans.end(), int64_t{0});
    spans.resize(gaps);
  }
  std::vector<int64_t> gap_order(gaps);
  std::iota(gap_order.begin(), gap_order.end(), 0);
  random.Shuffle(gap_order);
  std::vector<int64_t> span_in_gap(gaps, 0), inserts_in_gap(gaps, 0);
  for (size_t i = 0; i < spans.size(); ++i) span_in_gap[gap_order[i]] = spans[i];
  for (size_t i = 0; i < insertions.size(); ++i) ++inserts_in_gap[random.Below(gaps)];

  InfilledSequence result;
  int64_t position = 0;  // in `tokens`
  for (int64_t gap = 0; gap < gaps; ++gap) {
    if (span_in_gap[gap] > 0) {
      result.tokens.push_back(mask_id);
      result.spans.push_back({position, span_in_gap[gap]});
      position += span_in_gap[gap];
    }
    for (int64_t i = 0; i < inserts_in_gap[gap]; ++i) {
      result.tokens.push_back(mask_id);
      result.spans.push_back({position, 0});
    }
    if (gap < unmasked) result.tokens.push_back(tokens[position++]);
  }
  CHECK_EQ(position, size);
  return result;
}

}  // namespace taskmoe
