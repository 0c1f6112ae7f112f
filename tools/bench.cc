// Times the trainer's own training step (moe/train/train_step.h: forward + label-smoothed loss +
// backward + grad clipping + AdamW) or forward passes of the task-level MoE BART on random data, and prints one JSON line in the
// schema of ../shared/bench/ref_moe.py, so the two can be compared side by side:
//   bazel run //tools:bench -- --preset small --experts 3 --routing soft --mode train
// Routes come from the `learned` routing plugin (linear_layer_specific router over a trainable
// task-vector table, softmax at tau 2 for --routing soft, straight-through Gumbel for hard).
// --mode generate times generation with key/value caches instead, as ../shared/bench/ref_generate.py
// (tools/bench_generation.h). The model and data: tools/bench_model.h.

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <glog/logging.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/utils.h>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "moe/model/loss.h"
#include "moe/model/moe_model.h"
#include "moe/model/optimization.h"
#include "moe/base/status_macros.h"
#include "moe/base/tensor_memory.h"
#include "moe/train/train_step.h"
#include "tools/bench_generation.h"
#include "tools/bench_model.h"
#include "tools/model_flags.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, preset, "tiny", "model size: tiny, small or bart-base");
ABSL_FLAG(int64_t, experts, 3, "experts per MoE layer");
ABSL_FLAG(int64_t, batch, 8, "examples per step");
ABSL_FLAG(int64_t, src_len, 64, "source length (padded)");
ABSL_FLAG(int64_t, tgt_len, 16, "target length (padded)");
ABSL_FLAG(int64_t, steps, 5, "timed steps (--mode generate: timed generate calls, median)");
ABSL_FLAG(int64_t, warmup, 1, "untimed steps (generate calls) before timing");
ABSL_FLAG(std::string, routing, "soft",
          "soft: softmax(logits / 2); hard: one-hot straight-through Gumbel routes, each example a "
          "random expert per layer");
ABSL_FLAG(std::string, mode, "train",
          "train: full training step; forward: loss under no_grad; generate: generation with "
          "key/value caches (--new_tokens, --num_beams; --steps timed runs)");
ABSL_FLAG(std::string, route_gradient, "all",
          "all: unselected experts run forward only for the router's exact straight-through "
          "gradient (the default estimator); selected: they do not run");
ABSL_FLAG(std::string, expert_execution, "mix",
          "mix: the experts' outputs are mixed (the paper's); merge: one layer of route-weighted "
          "expert parameters per group of examples with equal routes (model.expert_execution)");
ABSL_FLAG(int64_t, n_tasks, 16, "rows of the task-vector table; each example draws a task");
ABSL_FLAG(int64_t, task_dim, 768, "task-vector size");
ABSL_FLAG(double, dropout, 0.0, "dropout, attention_dropout and activation_dropout");
ABSL_FLAG(double, max_grad_norm, 0.1, "global gradient-norm clipping");
ABSL_FLAG(int64_t, seed, 42, "seed of weights and data");
ABSL_FLAG(bool, concurrent_experts, true,
          "run a layer's experts concurrently on single-threaded workers (with --threads > 1)");
ABSL_FLAG(bool, batched_experts, true,
          "under soft routes run a layer's experts as batched work; false: one job per expert");
ABSL_FLAG(bool, tensor_memory_cache, true,
          "keep freed tensor blocks of 1 MiB and more for the next step (moe/base/tensor_memory.h); "
          "false: malloc, LibTorch's default");
ABSL_FLAG(std::string, profile, "",
          "--mode train or forward: write a Chrome trace (chrome://tracing) of the timed steps' "
          "operators, from LibTorch's profiler, to this file");
ABSL_FLAG(int64_t, new_tokens, 64, "--mode generate: tokens decoded per example (eos never chosen)");
ABSL_FLAG(int64_t, num_beams, 1, "--mode generate: 1 greedy search, more: beam search");
// --threads (0: all cores) and --device are the shared model flags (tools/model_flags.h).

namespace taskmoe {
namespace {

constexpr double kLabelSmoothing = 0.1;

BenchModelOptions ModelOptionsFromFlags() {
  BenchModelOptions options;
  options.preset = absl::GetFlag(FLAGS_preset);
  options.experts = absl::GetFlag(FLAGS_experts);
  options.batch = absl::GetFlag(FLAGS_batch);
  options.src_len = absl::GetFlag(FLAGS_src_len);
  options.tgt_len = absl::GetFlag(FLAGS_tgt_len);
  options.routing = absl::GetFlag(FLAGS_routing);
  options.route_gradient = absl::GetFlag(FLAGS_route_gradient);
  options.expert_execution = absl::GetFlag(FLAGS_expert_execution);
  options.n_tasks = absl::GetFlag(FLAGS_n_tasks);
  options.task_dim = absl::GetFlag(FLAGS_task_dim);
  options.dropout = absl::GetFlag(FLAGS_dropout);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.concurrent_experts = absl::GetFlag(FLAGS_concurrent_experts);
  options.batched_experts = absl::GetFlag(FLAGS_batched_experts);
  return options;
}

// Runs `step` `count` times; returns the wall seconds of each.
std::vector<double> RunSteps(const std::function<double()>& step, int64_t count,
                             const char* label) {
  std::vector<double> times;
  for (int64_t i = 0; i < count; ++i) {
    const auto t = std::chrono::steady_clock::now();
    const double loss = step();
    times.push_back(Seconds(t));
    std::cerr << "[bench] " << label << " " << i << ": " << times.back() << " s loss=" << loss
              << "\n";
  }
  return times;
}

void PrintMedianPhases(const std::vector<StepPhases>& phases) {
  if (phases.empty()) return;
  const auto median_of = [&phases](double StepPhases::*phase) {
    std::vector<double> column;
    for (const StepPhases& p : phases) column.push_back(p.*phase);
    return Median(column);
  };
  std::cerr << "[bench] median phases: forward=" << median_of(&StepPhases::forward)
            << " backward=" << median_of(&StepPhases::backward)
            << " clip=" << median_of(&StepPhases::clip)
            << " optimizer=" << median_of(&StepPhases::optimizer) << "\n";
}

// CPU time per step is less sensitive to other processes than wall time.
void PrintCpuUsage(const rusage& before, const rusage& after, double steps) {
  const auto cpu_seconds = [](const timeval& t) { return t.tv_sec + 1e-6 * t.tv_usec; };
  std::cerr << "[bench] per timed step: user "
            << (cpu_seconds(after.ru_utime) - cpu_seconds(before.ru_utime)) / steps << " s, sys "
            << (cpu_seconds(after.ru_stime) - cpu_seconds(before.ru_stime)) / steps << " s, "
            << static_cast<double>(after.ru_minflt - before.ru_minflt) / steps
            << " minor page faults\n";
}

absl::Status CheckFlags(const std::string& mode, const BenchModelOptions& options) {
  if (mode != "train" && mode != "forward" && mode != "generate") {
    return absl::InvalidArgumentError(
        absl::StrCat("--mode must be train, forward or generate, got '", mode, "'"));
  }
  TASKMOE_RETURN_IF_ERROR(ValidateBenchModelOptions(options));
  if (absl::GetFlag(FLAGS_steps) < 1) return absl::InvalidArgumentError("--steps must be at least 1");
  return absl::OkStatus();
}

// One benchmarked step (the trainer's TrainStep, or a forward pass and loss) with its state.
struct BenchStep {
  GroupedAdamW optimizer;
  std::unique_ptr<TrainStep> train_step;
  std::vector<StepPhases> phases;  // of every training step so far
  int64_t count = 0;
  std::function<double()> run;  // returns the step's loss
};

std::unique_ptr<BenchStep> MakeStep(BenchModel& bench, const std::string& mode) {
  auto step = std::make_unique<BenchStep>();
  BenchStep* s = step.get();
  const auto routes_of = [&bench, s](const at::Tensor& ids) {
    return BenchRoutes(bench, ids, s->count);
  };
  if (mode == "forward") {
    bench.moe.model()->eval();
    bench.router->eval();
    s->run = [&bench, routes_of]() {
      torch::NoGradGuard no_grad;
      const BatchTensors& b = bench.batch;
      absl::StatusOr<BartOutput> out = bench.moe.Forward(
          b.input_ids, b.attention_mask, b.decoder_input_ids, routes_of(b.task_ids));
      CHECK(out.ok()) << out.status();
      return LabelSmoothedNllLoss(out->logits, b.labels, kLabelSmoothing, kBenchPad).loss.item<double>();
    };
    return step;
  }
  // The trainer's own step; the schedule of a long run (warmup 6000 of 100000 steps).
  s->optimizer = MakeGroupedAdamW(bench.trainable, OptimizerOptions());
  TrainStepOptions options;
  options.label_smoothing = kLabelSmoothing;
  options.max_grad_norm = absl::GetFlag(FLAGS_max_grad_norm);
  options.warmup_steps = 6000;
  options.total_steps = 100000;
  options.pad_id = kBenchPad;
  std::vector<at::Tensor> router_and_task_parameters = {bench.task_table};
  for (const auto& [name, p] : bench.trainable.router) router_and_task_parameters.push_back(p);
  s->train_step = std::make_unique<TrainStep>(bench.moe, s->optimizer, router_and_task_parameters,
                                              /*distributed=*/nullptr, options);
  bench.moe.model()->train();
  bench.router->train();
  s->run = [&bench, s, routes_of]() {
    absl::StatusOr<StepResult> result =
        s->train_step->Run(s->count, [&bench] { return bench.batch; }, routes_of);
    CHECK(result.ok()) << result.status();
    ++s->count;
    s->phases.push_back(result->phases);
    return result->loss_sum;
  };
  return step;
}

// The result line in ref_moe.py's schema.
std::string ResultLine(const std::string& mode, const std::string& routing,
                       const std::vector<double>& times, int64_t params, const rusage& usage) {
  const int64_t batch = absl::GetFlag(FLAGS_batch);
  const int64_t src_len = absl::GetFlag(FLAGS_src_len);
  const int64_t tgt_len = absl::GetFlag(FLAGS_tgt_len);
  const double sec_per_step = Median(times);
  nlohmann::ordered_json line;
  line["impl"] = "taskmoe";
  line["preset"] = absl::GetFlag(FLAGS_preset);
  line["experts"] = absl::GetFlag(FLAGS_experts);
  line["batch"] = batch;
  line["src_len"] = src_len;
  line["tgt_len"] = tgt_len;
  line["threads"] = at::get_num_threads();
  line["mode"] = mode;
  line["routing"] = routing;
  line["route_gradient"] = absl::GetFlag(FLAGS_route_gradient);
  line["expert_execution"] = absl::GetFlag(FLAGS_expert_execution);
  line["batched_experts"] = absl::GetFlag(FLAGS_batched_experts);
  line["tensor_memory_cache"] = absl::GetFlag(FLAGS_tensor_memory_cache);
  line["n_tasks"] = absl::GetFlag(FLAGS_n_tasks);
  line["steps"] = absl::GetFlag(FLAGS_steps);
  line["sec_per_step"] = sec_per_step;
  line["tokens_per_sec"] = static_cast<double>((src_len + tgt_len) * batch) / sec_per_step;
  line["params"] = params;
  line["peak_rss_mb"] = usage.ru_maxrss / 1024.0;
  return line.dump();
}

absl::Status Run() {
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const std::string routing = absl::GetFlag(FLAGS_routing);
  const BenchModelOptions model_options = ModelOptionsFromFlags();
  TASKMOE_RETURN_IF_ERROR(CheckFlags(mode, model_options));
  TASKMOE_ASSIGN_OR_RETURN(const at::Device device, SetUpDeviceAndThreads());
  SetTensorMemoryCaching(absl::GetFlag(FLAGS_tensor_memory_cache));
  std::cerr << "[bench] " << TensorMemoryNote() << "\n";
  torch::manual_seed(absl::GetFlag(FLAGS_seed));
  TASKMOE_ASSIGN_OR_RETURN(BenchModel bench, MakeBenchModel(model_options, device));
  if (mode == "generate") {
    GenerationBenchOptions generation;
    generation.new_tokens = absl::GetFlag(FLAGS_new_tokens);
    generation.num_beams = absl::GetFlag(FLAGS_num_beams);
    generation.warmup = absl::GetFlag(FLAGS_warmup);
    generation.steps = absl::GetFlag(FLAGS_steps);
    TASKMOE_ASSIGN_OR_RETURN(const std::string line,
                             RunGenerationBench(bench, model_options, generation));
    std::cout << line << std::endl;
    return absl::OkStatus();
  }
  std::unique_ptr<BenchStep> step = MakeStep(bench, mode);
  RunSteps(step->run, absl::GetFlag(FLAGS_warmup), "warmup");
  step->phases.clear();
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  std::vector<double> times;
  {
    std::optional<torch::autograd::profiler::RecordProfile> profile;
    if (!absl::GetFlag(FLAGS_profile).empty()) profile.emplace(absl::GetFlag(FLAGS_profile));
    times = RunSteps(step->run, absl::GetFlag(FLAGS_steps), "step");
  }
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  PrintMedianPhases(step->phases);
  const TensorMemoryStats memory = GetTensorMemoryStats();
  std::cerr << "[bench] tensor blocks of 1 MiB and more: peak " << memory.peak_in_use_bytes / 1e6
            << " MB in use at once, " << memory.cached_bytes / 1e6 << " MB cached at the end\n";
  PrintCpuUsage(before, after, static_cast<double>(times.size()));
  std::cout << ResultLine(mode, routing, times, bench.params, after) << std::endl;
  return absl::OkStatus();
}

}  // namespace
}  // namespace taskmoe

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "bench";
  tool.runs_models = true;
  tool.usage =
      "Times the trainer's training step, forward passes or generation of the MoE model.";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
