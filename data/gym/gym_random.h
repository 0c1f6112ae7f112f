#ifndef TASKMOE_DATA_GYM_GYM_RANDOM_H_
#define TASKMOE_DATA_GYM_GYM_RANDOM_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include <glog/logging.h>

namespace taskmoe::gym {

// SplitMix64 (Steele, Lea, Flood 2014). The gym draws every random choice from this
// generator and never from <random> distributions, whose outputs differ between
// standard libraries; that keeps generated trees byte-identical across platforms.
class GymRandom {
 public:
  explicit GymRandom(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform integer in [0, bound), unbiased by rejection.
  uint64_t Below(uint64_t bound) {
    CHECK_GT(bound, 0u);
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t draw = Next();
    while (draw >= limit) draw = Next();
    return draw % bound;
  }

  // Uniform integer in [low, high].
  int InRange(int low, int high) {
    CHECK_LE(low, high);
    return low + static_cast<int>(Below(static_cast<uint64_t>(high - low) + 1));
  }

  template <typename T>
  const T& Pick(const std::vector<T>& values) {
    CHECK(!values.empty());
    return values[Below(values.size())];
  }

  // Fisher-Yates, back to front.
  template <typename T>
  void Shuffle(std::vector<T>& values) {
    for (size_t i = values.size(); i > 1; --i) {
      std::swap(values[i - 1], values[Below(i)]);
    }
  }

 private:
  uint64_t state_;
};

// A seed for an independent stream named by `label` (e.g. a task name) under `seed`:
// FNV-1a of the label, mixed with the seed through one SplitMix64 step.
inline uint64_t DeriveSeed(uint64_t seed, absl::string_view label) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : label) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return GymRandom(seed ^ hash).Next();
}

}  // namespace taskmoe::gym

#endif  // TASKMOE_DATA_GYM_GYM_RANDOM_H_
