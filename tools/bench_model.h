#ifndef TASKMOE_TOOLS_BENCH_MODEL_H_
#define TASKMOE_TOOLS_BENCH_MODEL_H_

// The model and data of tools/bench: a task-level MoE BART of a preset size with random weights,
// the `learned` routing plugin as ../shared/bench/ref_moe.py routes, a random task-vector table
// and one random batch in ref_moe.py's layout. Reads no flags: bench.cc fills BenchModelOptions.

#include <ATen/ATen.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moe/formats/bart_config.h"
#include "moe/model/batch_tensors.h"
#include "moe/model/moe_model.h"
#include "moe/model/optimization.h"
#include "moe/routing/routing.h"

namespace taskmoe {

inline constexpr int64_t kBenchPad = 1;
inline constexpr int64_t kBenchBos = 0;
inline constexpr int64_t kBenchEos = 2;

struct BenchModelOptions {
  std::string preset = "tiny";  // tiny, small or bart-base
  int64_t experts = 3;
  int64_t batch = 8;
  int64_t src_len = 64;
  int64_t tgt_len = 16;
  std::string routing = "soft";            // soft or hard
  std::string route_gradient = "all";      // all or selected
  std::string expert_execution = "mix";    // mix or merge
  int64_t n_tasks = 16;
  int64_t task_dim = 768;
  double dropout = 0.0;
  int64_t seed = 42;  // of the batch (weights: LibTorch's default generator, seeded by the caller)
  bool concurrent_experts = true;
  bool batched_experts = true;
};

// Errors name the flag: routing, route_gradient, expert_execution.
absl::Status ValidateBenchModelOptions(const BenchModelOptions& options);

// BART shapes of the presets (ref_moe.py's), with all three dropouts set to `dropout`.
absl::StatusOr<BartConfig> PresetConfig(const std::string& preset, double dropout);

// <s> tokens... </s> then right padding; lengths uniform in [length / 2, length], example 0
// full length (the layout of ref_moe.py's data).
at::Tensor RandomSequences(int64_t batch, int64_t length, int64_t vocab, at::Generator& generator);

// Teacher forcing: labels moved one step later behind the decoder start token.
at::Tensor ShiftRight(const at::Tensor& labels, int64_t start_token);

// The `learned` plugin as ref_moe.py routes: linear_layer_specific, softmax or straight-through
// Gumbel at a constant tau of 2.
absl::StatusOr<std::shared_ptr<RoutingPlugin>> MakeRouter(const ModelShape& shape,
                                                          const BenchModelOptions& options);

// Sources, labels, decoder inputs and task ids drawn from a generator seeded with options.seed.
BatchTensors RandomBatch(const BartConfig& config, const BenchModelOptions& options,
                         const at::Device& device);

// The benchmarked model, its router and task table, one random batch, on the device.
struct BenchModel {
  MoeBart moe;
  std::shared_ptr<RoutingPlugin> router;
  at::Tensor task_table;
  BatchTensors batch;
  TrainableParameters trainable;
  int64_t params = 0;
};

// Weights, router and task table from LibTorch's default generator (in this order), then the batch.
absl::StatusOr<BenchModel> MakeBenchModel(const BenchModelOptions& options,
                                          const at::Device& device);

// Routes of the bench's router for `task_ids`, at training step `step`.
RouteWeights BenchRoutes(BenchModel& bench, const at::Tensor& task_ids, int64_t step);

// The median of `values` (the mean of the middle two for an even count).
double Median(std::vector<double> values);
// Wall seconds since `since`.
double Seconds(std::chrono::steady_clock::time_point since);

}  // namespace taskmoe

#endif  // TASKMOE_TOOLS_BENCH_MODEL_H_
