// Times the trainer's own training step (moe/train/train_step.h: forward + label-smoothed loss +
// backward + grad clipping + AdamW) or forward passes of the task-level MoE BART on random data, and prints one JSON line in the
// schema of ../shared/bench/ref_moe.py, so the two can be compared side by side:
//   bazel run //tools:bench -- --preset small --experts 3 --routing soft --mode train
// Routes come from the `learned` routing plugin (linear_layer_specific router over a trainable
// task-vector table, softmax at tau 2 for --routing soft, straight-through Gumbel for hard).

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <glog/logging.h>
#include <nlohmann/json.hpp>
#include <torch/utils.h>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "moe/model/loss.h"
#include "moe/model/moe_model.h"
#include "moe/model/optimization.h"
#include "moe/routing/routing.h"
#include "moe/base/status_macros.h"
#include "moe/train/train_step.h"
#include "tools/model_flags.h"
#include "tools/tool_main.h"
#include "routing_plugins/learned/learned.pb.h"

ABSL_FLAG(std::string, preset, "tiny", "model size: tiny, small or bart-base");
ABSL_FLAG(int64_t, experts, 3, "experts per MoE layer");
ABSL_FLAG(int64_t, batch, 8, "examples per step");
ABSL_FLAG(int64_t, src_len, 64, "source length (padded)");
ABSL_FLAG(int64_t, tgt_len, 16, "target length (padded)");
ABSL_FLAG(int64_t, steps, 5, "timed steps");
ABSL_FLAG(int64_t, warmup, 1, "untimed steps before timing");
ABSL_FLAG(std::string, routing, "soft",
          "soft: softmax(logits / 2); hard: one-hot straight-through Gumbel routes, each example a "
          "random expert per layer");
ABSL_FLAG(std::string, mode, "train", "train: full training step; forward: loss under no_grad");
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
// --threads (0: all cores) and --device are the shared model flags (tools/model_flags.h).

namespace taskmoe {
namespace {

constexpr int64_t kPad = 1;
constexpr int64_t kBos = 0;
constexpr int64_t kEos = 2;
constexpr double kLabelSmoothing = 0.1;

absl::StatusOr<BartConfig> PresetConfig(const std::string& preset, double dropout) {
  BartConfig config;
  if (preset == "tiny") {
    config.d_model = 64;
    config.encoder_layers = config.decoder_layers = 2;
    config.encoder_attention_heads = config.decoder_attention_heads = 4;
    config.encoder_ffn_dim = config.decoder_ffn_dim = 256;
    config.vocab_size = 1000;
  } else if (preset == "small") {
    config.d_model = 256;
    config.encoder_layers = config.decoder_layers = 4;
    config.encoder_attention_heads = config.decoder_attention_heads = 4;
    config.encoder_ffn_dim = config.decoder_ffn_dim = 1024;
    config.vocab_size = 8000;
  } else if (preset == "bart-base") {
    config.d_model = 768;
    config.encoder_layers = config.decoder_layers = 6;
    config.encoder_attention_heads = config.decoder_attention_heads = 12;
    config.encoder_ffn_dim = config.decoder_ffn_dim = 3072;
    config.vocab_size = 50265;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--preset must be tiny, small or bart-base, got '", preset, "'"));
  }
  config.max_position_embeddings = 1024;
  config.dropout = config.attention_dropout = config.activation_dropout = dropout;
  return config;
}

// <s> tokens... </s> then right padding; lengths uniform in [length / 2, length], example 0
// full length (the layout of ref_moe.py's data).
at::Tensor RandomSequences(int64_t batch, int64_t length, int64_t vocab, at::Generator& generator) {
  at::Tensor ids = at::randint(3, vocab, {batch, length}, generator, at::kLong);
  at::Tensor lengths =
      at::randint(std::max<int64_t>(2, length / 2), length + 1, {batch}, generator, at::kLong);
  lengths[0] = length;
  ids.select(1, 0).fill_(kBos);
  const at::Tensor column = at::arange(length, at::kLong).unsqueeze(0);
  const at::Tensor last = lengths.unsqueeze(1) - 1;
  ids.masked_fill_(column.eq(last), kEos);
  ids.masked_fill_(column.gt(last), kPad);
  return ids;
}

// Teacher forcing: labels moved one step later behind the decoder start token.
at::Tensor ShiftRight(const at::Tensor& labels, int64_t start_token) {
  return at::cat({at::full({labels.size(0), 1}, start_token, labels.options()),
                  labels.slice(1, 0, labels.size(1) - 1)},
                 1);
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// The benchmarked model, its router and task table, one random batch, on the --device.
struct BenchModel {
  MoeBart moe;
  std::shared_ptr<RoutingPlugin> router;
  at::Tensor task_table;
  BatchTensors batch;
  TrainableParameters trainable;
  int64_t params = 0;
};

// The `learned` plugin as ref_moe.py routes: linear_layer_specific, softmax or straight-through
// Gumbel at a constant tau of 2.
absl::StatusOr<std::shared_ptr<RoutingPlugin>> MakeRouter(const ModelShape& shape,
                                                          const std::string& routing) {
  LearnedRoutingParams learned;
  learned.mutable_router()->set_architecture(RouterNetworkParams::LINEAR_LAYER_SPECIFIC);
  learned.mutable_selection()->set_function(routing == "soft"
                                                ? RouteSelectionParams::SOFTMAX
                                                : RouteSelectionParams::GUMBEL_SOFTMAX_ST);
  learned.mutable_selection()->set_initial_tau(2.0);
  learned.mutable_selection()->set_anneal_rate(0.0);
  RoutingConfig routing_config;
  routing_config.set_plugin("learned");
  routing_config.mutable_params()->PackFrom(learned);
  RoutingContext context;
  context.shape = shape;
  context.task_vector_dim = absl::GetFlag(FLAGS_task_dim);
  context.num_tasks = absl::GetFlag(FLAGS_n_tasks);
  return CreateRoutingPlugin(routing_config, context);
}

BatchTensors RandomBatch(const BartConfig& config, const at::Device& device) {
  const int64_t batch = absl::GetFlag(FLAGS_batch);
  at::Generator generator = at::detail::createCPUGenerator(absl::GetFlag(FLAGS_seed));
  BatchTensors tensors;
  tensors.input_ids =
      RandomSequences(batch, absl::GetFlag(FLAGS_src_len), config.vocab_size, generator);
  tensors.attention_mask = tensors.input_ids.ne(kPad).to(at::kLong);
  tensors.labels =
      RandomSequences(batch, absl::GetFlag(FLAGS_tgt_len), config.vocab_size, generator);
  tensors.decoder_input_ids = ShiftRight(tensors.labels, config.decoder_start_token_id);
  tensors.task_ids =
      at::randint(0, absl::GetFlag(FLAGS_n_tasks), {batch}, generator, at::kLong);
  for (at::Tensor* t : {&tensors.input_ids, &tensors.attention_mask, &tensors.labels,
                        &tensors.decoder_input_ids, &tensors.task_ids}) {
    *t = t->to(device);
  }
  return tensors;
}

absl::StatusOr<BenchModel> MakeBenchModel(const std::string& routing, const at::Device& device) {
  TASKMOE_ASSIGN_OR_RETURN(
      const BartConfig config,
      PresetConfig(absl::GetFlag(FLAGS_preset), absl::GetFlag(FLAGS_dropout)));
  MoeOptions options;
  options.experts = absl::GetFlag(FLAGS_experts);
  options.concurrent_experts = absl::GetFlag(FLAGS_concurrent_experts);
  options.route_gradient = absl::GetFlag(FLAGS_route_gradient) == "selected"
                               ? RouteGradient::kSelectedExperts
                               : RouteGradient::kAllExperts;
  options.expert_execution = absl::GetFlag(FLAGS_expert_execution) == "merge"
                                 ? ExpertExecution::kMergeParameters
                                 : ExpertExecution::kMixOutputs;
  TASKMOE_ASSIGN_OR_RETURN(MoeBart moe, MoeBart::Create(config, options));
  TASKMOE_ASSIGN_OR_RETURN(std::shared_ptr<RoutingPlugin> router,
                           MakeRouter(moe.shape(), routing));
  at::Tensor task_table = at::randn({absl::GetFlag(FLAGS_n_tasks), absl::GetFlag(FLAGS_task_dim)});
  moe.model()->to(device);
  router->to(device);
  task_table = task_table.to(device).requires_grad_();
  BenchModel bench{std::move(moe), std::move(router), task_table, RandomBatch(config, device)};
  for (const auto& item : bench.moe.model()->named_parameters()) {
    bench.trainable.model.emplace_back(item.key(), item.value());
  }
  for (const auto& item : bench.router->named_parameters()) {
    bench.trainable.router.emplace_back(item.key(), item.value());
  }
  bench.trainable.task_vectors = {task_table};
  bench.params = task_table.numel();
  for (const auto& [name, p] : bench.trainable.model) bench.params += p.numel();
  for (const auto& [name, p] : bench.trainable.router) bench.params += p.numel();
  return bench;
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
            << " optimizer=" << median_of(&StepPhases::optimizer)
            << " zero_grad=" << median_of(&StepPhases::zero_grad) << "\n";
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

absl::Status CheckFlags(const std::string& mode, const std::string& routing) {
  if (mode != "train" && mode != "forward") {
    return absl::InvalidArgumentError(
        absl::StrCat("--mode must be train or forward, got '", mode, "'"));
  }
  if (routing != "soft" && routing != "hard") {
    return absl::InvalidArgumentError(
        absl::StrCat("--routing must be soft or hard, got '", routing, "'"));
  }
  if (absl::GetFlag(FLAGS_route_gradient) != "all" &&
      absl::GetFlag(FLAGS_route_gradient) != "selected") {
    return absl::InvalidArgumentError(absl::StrCat("--route_gradient must be all or selected, got '",
                                                   absl::GetFlag(FLAGS_route_gradient), "'"));
  }
  if (absl::GetFlag(FLAGS_expert_execution) != "mix" &&
      absl::GetFlag(FLAGS_expert_execution) != "merge") {
    return absl::InvalidArgumentError(absl::StrCat("--expert_execution must be mix or merge, got '",
                                                   absl::GetFlag(FLAGS_expert_execution), "'"));
  }
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
    RoutingInput input;
    input.task_ids = ids;
    input.task_vectors = bench.task_table.index_select(0, ids);
    input.step = s->count;
    return bench.router->Route(input);
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
      return LabelSmoothedNllLoss(out->logits, b.labels, kLabelSmoothing, kPad).loss.item<double>();
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
  options.pad_id = kPad;
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
  TASKMOE_RETURN_IF_ERROR(CheckFlags(mode, routing));
  TASKMOE_ASSIGN_OR_RETURN(const at::Device device, SetUpDeviceAndThreads());
  torch::manual_seed(absl::GetFlag(FLAGS_seed));
  TASKMOE_ASSIGN_OR_RETURN(BenchModel bench, MakeBenchModel(routing, device));
  std::unique_ptr<BenchStep> step = MakeStep(bench, mode);
  RunSteps(step->run, absl::GetFlag(FLAGS_warmup), "warmup");
  step->phases.clear();
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  const std::vector<double> times = RunSteps(step->run, absl::GetFlag(FLAGS_steps), "step");
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  PrintMedianPhases(step->phases);
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
  tool.usage = "Times the trainer's training step or forward passes of the MoE model.";
  return taskmoe::RunTool(argc, argv, tool,
                          [](const std::vector<std::string>&) { return taskmoe::Run(); });
}
