#ifndef TASKMOE_TOOLS_BENCH_GENERATION_H_
#define TASKMOE_TOOLS_BENCH_GENERATION_H_

// `bench --mode generate`: times generation with key/value caches of the task-level MoE BART, as
// ../shared/bench/ref_generate.py does for the eager reference: the model in eval mode under
// no-grad, soft task-level routes of the bench's router for the batch's task ids, eos never
// chosen (min_length = max_length) so every run decodes exactly new_tokens tokens.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "tools/bench_model.h"

namespace taskmoe {

struct GenerationBenchOptions {
  int64_t new_tokens = 64;
  int64_t num_beams = 1;  // 1: greedy search, else beam search
  int64_t warmup = 1;     // untimed runs
  int64_t steps = 3;      // timed runs; the result is their median
};

// Runs the benchmark on `bench` (its model and batch) and returns one JSON line: impl
// "taskmoe-generate", the sizes, sec (median seconds per generate call), tokens_per_sec and
// peak_rss_mb. Fails if a returned sequence is not new_tokens + 1 long (start + new tokens).
absl::StatusOr<std::string> RunGenerationBench(BenchModel& bench, const BenchModelOptions& model,
                                               const GenerationBenchOptions& options);

}  // namespace taskmoe

#endif  // TASKMOE_TOOLS_BENCH_GENERATION_H_
