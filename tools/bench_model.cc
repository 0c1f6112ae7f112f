#include "tools/bench_model.h"

#include <algorithm>
#include <utility>

#include <ATen/CPUGeneratorImpl.h>

#include "absl/strings/str_cat.h"
#include "moe/base/status_macros.h"
#include "routing_plugins/learned/learned.pb.h"

namespace taskmoe {

absl::Status ValidateBenchModelOptions(const BenchModelOptions& options) {
  if (options.routing != "soft" && options.routing != "hard") {
    return absl::InvalidArgumentError(
        absl::StrCat("--routing must be soft or hard, got '", options.routing, "'"));
  }
  if (options.route_gradient != "all" && options.route_gradient != "selected") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--route_gradient must be all or selected, got '", options.route_gradient, "'"));
  }
  if (options.expert_execution != "mix" && options.expert_execution != "merge") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--expert_execution must be mix or merge, got '", options.expert_execution, "'"));
  }
  return absl::OkStatus();
}

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

at::Tensor RandomSequences(int64_t batch, int64_t length, int64_t vocab, at::Generator& generator) {
  at::Tensor ids = at::randint(3, vocab, {batch, length}, generator, at::kLong);
  at::Tensor lengths =
      at::randint(std::max<int64_t>(2, length / 2), length + 1, {batch}, generator, at::kLong);
  lengths[0] = length;
  ids.select(1, 0).fill_(kBenchBos);
  const at::Tensor column = at::arange(length, at::kLong).unsqueeze(0);
  const at::Tensor last = lengths.unsqueeze(1) - 1;
  ids.masked_fill_(column.eq(last), kBenchEos);
  ids.masked_fill_(column.gt(last), kBenchPad);
  return ids;
}

at::Tensor ShiftRight(const at::Tensor& labels, int64_t start_token) {
  return at::cat({at::full({labels.size(0), 1}, start_token, labels.options()),
                  labels.slice(1, 0, labels.size(1) - 1)},
                 1);
}

absl::StatusOr<std::shared_ptr<RoutingPlugin>> MakeRouter(const ModelShape& shape,
                                                          const BenchModelOptions& options) {
  LearnedRoutingParams learned;
  learned.mutable_router()->set_architecture(RouterNetworkParams::LINEAR_LAYER_SPECIFIC);
  learned.mutable_selection()->set_function(options.routing == "soft"
                                                ? RouteSelectionParams::SOFTMAX
                                                : RouteSelectionParams::GUMBEL_SOFTMAX_ST);
  learned.mutable_selection()->set_initial_tau(2.0);
  learned.mutable_selection()->set_anneal_rate(0.0);
  RoutingConfig routing_config;
  routing_config.set_plugin("learned");
  routing_config.mutable_params()->PackFrom(learned);
  RoutingContext context;
  context.shape = shape;
  context.task_vector_dim = options.task_dim;
  context.num_tasks = options.n_tasks;
  return CreateRoutingPlugin(routing_config, context);
}

BatchTensors RandomBatch(const BartConfig& config, const BenchModelOptions& options,
                         const at::Device& device) {
  at::Generator generator = at::detail::createCPUGenerator(options.seed);
  BatchTensors tensors;
  tensors.input_ids =
      RandomSequences(options.batch, options.src_len, config.vocab_size, generator);
  tensors.attention_mask = tensors.input_ids.ne(kBenchPad).to(at::kLong);
  tensors.labels = RandomSequences(options.batch, options.tgt_len, config.vocab_size, generator);
  tensors.decoder_input_ids = ShiftRight(tensors.labels, config.decoder_start_token_id);
  tensors.task_ids = at::randint(0, options.n_tasks, {options.batch}, generator, at::kLong);
  for (at::Tensor* t : {&tensors.input_ids, &tensors.attention_mask, &tensors.labels,
                        &tensors.decoder_input_ids, &tensors.task_ids}) {
    *t = t->to(device);
  }
  return tensors;
}

absl::StatusOr<BenchModel> MakeBenchModel(const BenchModelOptions& options,
                                          const at::Device& device) {
  TASKMOE_ASSIGN_OR_RETURN(const BartConfig config,
                           PresetConfig(options.preset, options.dropout));
  MoeOptions moe_options;
  moe_options.experts = options.experts;
  moe_options.concurrent_experts = options.concurrent_experts;
  moe_options.batched_experts = options.batched_experts;
  moe_options.route_gradient = options.route_gradient == "selected"
                                   ? RouteGradient::kSelectedExperts
                                   : RouteGradient::kAllExperts;
  moe_options.expert_execution = options.expert_execution == "merge"
                                     ? ExpertExecution::kMergeParameters
                                     : ExpertExecution::kMixOutputs;
  TASKMOE_ASSIGN_OR_RETURN(MoeBart moe, MoeBart::Create(config, moe_options));
  TASKMOE_ASSIGN_OR_RETURN(std::shared_ptr<RoutingPlugin> router,
                           MakeRouter(moe.shape(), options));
  at::Tensor task_table = at::randn({options.n_tasks, options.task_dim});
  moe.model()->to(device);
  router->to(device);
  task_table = task_table.to(device).requires_grad_();
  BenchModel bench{std::move(moe), std::move(router), task_table,
                   RandomBatch(config, options, device)};
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

RouteWeights BenchRoutes(BenchModel& bench, const at::Tensor& task_ids, int64_t step) {
  RoutingInput input;
  input.task_ids = task_ids;
  input.task_vectors = bench.task_table.index_select(0, task_ids);
  input.step = step;
  return bench.router->Route(input);
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace taskmoe
