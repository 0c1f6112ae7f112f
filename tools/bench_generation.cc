#include "tools/bench_generation.h"

#include <sys/resource.h>

#include <chrono>
#include <iostream>
#include <vector>

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <torch/utils.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "moe/base/status_macros.h"
#include "moe/model/generation.h"

namespace taskmoe {
namespace {

// One generate call, routes included (ref_generate.py runs its router inside the timed call).
absl::StatusOr<double> TimedGenerate(BenchModel& bench, const GenerationOptions& generation,
                                     int64_t new_tokens) {
  const auto start = std::chrono::steady_clock::now();
  torch::NoGradGuard no_grad;
  const BatchTensors& b = bench.batch;
  const RouteWeights routes = BenchRoutes(bench, b.task_ids, /*step=*/0);
  TASKMOE_ASSIGN_OR_RETURN(
      const GenerationOutput out,
      Generate(bench.moe.model(), b.input_ids, b.attention_mask, generation, &routes));
  const double seconds = Seconds(start);
  if (out.sequences.dim() != 2 || out.sequences.size(0) != b.input_ids.size(0) ||
      out.sequences.size(1) != new_tokens + 1) {
    return absl::InternalError(absl::StrCat(
        "generation returned sequences of shape [", absl::StrJoin(out.sequences.sizes(), ", "),
        "], expected [", b.input_ids.size(0), ", ", new_tokens + 1,
        "] (start token + --new_tokens): eos was chosen early or the length limit differs"));
  }
  return seconds;
}

}  // namespace

absl::StatusOr<std::string> RunGenerationBench(BenchModel& bench, const BenchModelOptions& model,
                                               const GenerationBenchOptions& options) {
  if (options.new_tokens < 1) return absl::InvalidArgumentError("--new_tokens must be at least 1");
  if (options.num_beams < 1) return absl::InvalidArgumentError("--num_beams must be at least 1");
  GenerationOptions generation;
  generation.max_length = generation.min_length = options.new_tokens + 1;
  generation.num_beams = options.num_beams;
  generation.no_repeat_ngram_size = 0;
  generation.forced_eos_token_id = -1;  // none
  TASKMOE_RETURN_IF_ERROR(ValidateGenerationOptions(generation, bench.moe.config()));
  bench.moe.model()->eval();
  bench.router->eval();
  std::vector<double> times;
  for (int64_t i = 0; i < options.warmup + options.steps; ++i) {
    const bool timed = i >= options.warmup;
    TASKMOE_ASSIGN_OR_RETURN(const double seconds,
                             TimedGenerate(bench, generation, options.new_tokens));
    std::cerr << "[bench] " << (timed ? "generate " : "warmup ")
              << (timed ? i - options.warmup : i) << ": " << seconds << " s\n";
    if (timed) times.push_back(seconds);
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double sec = Median(times);
  nlohmann::ordered_json line;
  line["impl"] = "taskmoe-generate";
  line["preset"] = model.preset;
  line["experts"] = model.experts;
  line["batch"] = model.batch;
  line["src_len"] = model.src_len;
  line["new_tokens"] = options.new_tokens;
  line["num_beams"] = options.num_beams;
  line["threads"] = at::get_num_threads();
  line["routing"] = model.routing;
  line["batched_experts"] = model.batched_experts;
  line["steps"] = options.steps;
  line["sec"] = sec;
  // Tokens of the returned sequences (batch x new_tokens), also under beam search, whose
  // num_beams hypotheses per example decode num_beams times as many tokens internally.
  line["tokens_per_sec"] = static_cast<double>(model.batch * options.new_tokens) / sec;
  line["peak_rss_mb"] = usage.ru_maxrss / 1024.0;
  return line.dump();
}

}  // namespace taskmoe
