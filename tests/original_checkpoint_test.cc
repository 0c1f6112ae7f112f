// Conversion of the original CrossTaskMoE code's checkpoints (tools/original_checkpoint.h) on
// the committed fixture tests/fixtures/original_checkpoint: a model.pt written by Python's
// torch.save with the original's parameter names, and the logits its model computes
// (make_fixture.py, plain tensor operations in float64). The converted checkpoint, loaded as
// any TaskMoE checkpoint, must give the same router outputs and LM logits.

#include <ATen/ATen.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "moe/base/file_io.h"
#include "moe/formats/npy.h"
#include "moe/model/route_weights.h"
#include "moe/routing/routing.h"
#include "moe/train/checkpoint.h"
#include "moe/train/model_builder.h"
#include "routing_plugins/learned/learned.pb.h"
#include "tools/original_checkpoint.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const char kFixture[] = "tests/fixtures/original_checkpoint";
const char kOriginalDir[] = "tests/fixtures/original_checkpoint/run/best";
const char kConfigPath[] = "tests/fixtures/original_checkpoint/run/config.json";
constexpr double kTolerance = 1e-5;

std::string TempDir(const std::string& name) {
  const std::string dir = (fs::path(::testing::TempDir()) / name).string();
  fs::remove_all(dir);
  return dir;
}

at::Tensor Expected(const std::string& name) {
  absl::StatusOr<at::Tensor> array = ReadNpy(std::string(kFixture) + "/expected/" + name + ".npy");
  EXPECT_TRUE(array.ok()) << array.status();
  return array.ok() ? *array : at::Tensor();
}

// A copy of the fixture's checkpoint directory with its config.json beside model.pt.
std::string FlatCopy(const std::string& name) {
  const std::string dir = TempDir(name);
  fs::create_directories(dir);
  for (const char* file : {"model.pt", "id2task.json", "task_vecs.npy"}) {
    fs::copy_file(std::string(kOriginalDir) + "/" + file, dir + "/" + file);
  }
  fs::copy_file(kConfigPath, dir + "/config.json");
  return dir;
}

ConvertOriginalOptions Options(const std::string& original, const std::string& output) {
  ConvertOriginalOptions options;
  options.original_dir = original;
  options.output_dir = output;
  return options;
}

// The converted checkpoint's logits for the fixture batch under its own evaluation routes.
at::Tensor ConvertedLogits(const std::string& dir, at::Tensor* task_routes) {
  absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(dir);
  EXPECT_TRUE(checkpoint.ok()) << checkpoint.status();
  if (!checkpoint.ok()) return at::Tensor();
  const ModelShape shape = checkpoint->model->shape();
  *task_routes = TaskRoutes(*checkpoint->plugin, checkpoint->tasks->vectors(), /*step=*/0);
  const RouteWeights routes = RoutesForTasks(*task_routes, Expected("task_ids"), shape);
  absl::StatusOr<BartOutput> output = checkpoint->model->Forward(
      Expected("input_ids"), Expected("attention_mask"), Expected("decoder_input_ids"), routes);
  EXPECT_TRUE(output.ok()) << output.status();
  return output.ok() ? output->logits : at::Tensor();
}

void ExpectClose(const at::Tensor& actual, const at::Tensor& expected, const std::string& what) {
  ASSERT_TRUE(actual.defined()) << what;
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  EXPECT_LT((actual.to(at::kDouble) - expected.to(at::kDouble)).abs().max().item<double>(),
            kTolerance)
      << what;
}

TEST(OriginalCheckpointTest, SoftmaxRoutesAndLogitsMatchTheOriginal) {
  const std::string out = TempDir("converted_softmax");
  ConvertOriginalOptions options = Options(kOriginalDir, out);
  options.selection.set_function(RouteSelectionParams::SOFTMAX);
  options.selection.set_initial_tau(1.0);  // routes at step 0 = softmax(router logits)
  absl::StatusOr<ConvertedOriginal> converted = ConvertOriginalCheckpoint(options);
  ASSERT_TRUE(converted.ok()) << converted.status();
  // run_v2.py's layout: config.json one level up, next to the checkpoint directories.
  EXPECT_EQ(fs::path(converted->config_path), fs::absolute(kConfigPath).lexically_normal());
  EXPECT_EQ(converted->tasks, 3);
  EXPECT_EQ(converted->router_tensors, 4);  // the stacked layer-specific weights and biases

  at::Tensor task_routes;
  const at::Tensor logits = ConvertedLogits(out, &task_routes);
  // [layers, tasks, experts] -> the per-task layout [tasks, layers, experts]
  ExpectClose(task_routes, at::softmax(Expected("router_logits"), -1).transpose(0, 1),
              "routes of every task");
  ExpectClose(logits, Expected("logits_soft"), "LM logits under softmax routes");

  absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(out);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ(checkpoint->tasks->names(),
            (std::vector<std::string>{"glue-sst2", "ai2_arc", "superglue-rte"}));
  EXPECT_EQ(checkpoint->experiment.routing().plugin(), "learned");
  EXPECT_EQ(checkpoint->model->shape().experts, 2);
  EXPECT_EQ(checkpoint->model->options().encoder_vanilla_layers, std::vector<int64_t>{1});
  EXPECT_EQ(checkpoint->model->options().decoder_vanilla_layers, std::vector<int64_t>{1});
  EXPECT_TRUE(fs::exists(out + "/" + kRoutesImageFile));
}

TEST(OriginalCheckpointTest, GumbelStraightThroughArgmaxRoutesMatchTheOriginal) {
  const std::string original = FlatCopy("original_flat");
  const std::string out = TempDir("converted_gumbel");
  ConvertOriginalOptions options = Options(original, out);
  options.selection.set_eval_route(RouteSelectionParams::ARGMAX);
  absl::StatusOr<ConvertedOriginal> converted = ConvertOriginalCheckpoint(options);
  ASSERT_TRUE(converted.ok()) << converted.status();
  EXPECT_EQ(converted->config_path, original + "/config.json");

  at::Tensor task_routes;
  const at::Tensor logits = ConvertedLogits(out, &task_routes);
  const at::Tensor argmax = at::one_hot(Expected("router_logits").argmax(-1), 2).transpose(0, 1);
  ExpectClose(task_routes, argmax, "one-hot evaluation routes");
  ExpectClose(logits, Expected("logits_hard"), "LM logits under one-hot routes");
}

TEST(OriginalCheckpointTest, DefaultsAreTheOriginalsCommandLineDefaults) {
  const std::string out = TempDir("converted_default");
  ASSERT_TRUE(ConvertOriginalCheckpoint(Options(kOriginalDir, out)).ok());
  absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(out);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  LearnedRoutingParams params;
  ASSERT_TRUE(checkpoint->experiment.routing().params().UnpackTo(&params));
  EXPECT_EQ(params.router().architecture(), RouterNetworkParams::LINEAR_LAYER_SPECIFIC);
  EXPECT_EQ(params.router().hidden_dim(), 8);
  EXPECT_EQ(params.selection().function(), RouteSelectionParams::GUMBEL_SOFTMAX_ST);
  EXPECT_EQ(params.selection().eval_route(), RouteSelectionParams::SAMPLE);
  EXPECT_FLOAT_EQ(params.selection().initial_tau(), 2.0f);
  EXPECT_FLOAT_EQ(params.selection().minimum_tau(), 0.1f);
  EXPECT_FLOAT_EQ(params.selection().anneal_rate(), 3e-4f);
  EXPECT_FLOAT_EQ(params.exploration_epsilon(), 0.0f);
  // Whatever the selection function, the tau-1 and argmax views show the router's logits.
  const RouteViews views =
      TaskRouteViews(*checkpoint->plugin, checkpoint->tasks->vectors(), /*step=*/0);
  ExpectClose(views.soft_t1, at::softmax(Expected("router_logits"), -1).transpose(0, 1),
              "tau-1 view");
  ExpectClose(views.argmax,
              at::one_hot(Expected("router_logits").argmax(-1), 2).transpose(0, 1), "argmax view");
}

// Rewrites <dir>/model.pt with `edit` applied to its tensors (pickle_save writes the zip format
// torch.save does).
void EditStateDict(const std::string& dir, const std::function<void(TensorMap&)>& edit) {
  const std::string path = dir + "/model.pt";
  absl::StatusOr<TensorMap> tensors = ReadTorchStateDict(path);
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  edit(*tensors);
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, tensor] : *tensors) dict.insert(name, tensor);
  const std::vector<char> bytes = torch::jit::pickle_save(dict);
  ASSERT_TRUE(WriteFileAtomically(path, std::string(bytes.begin(), bytes.end())).ok());
}

// Converts `original` into a fresh directory, expecting an error; nothing may be written.
absl::Status FailedConversion(const std::string& original, const std::string& name) {
  const std::string out = TempDir(name);
  absl::StatusOr<ConvertedOriginal> converted = ConvertOriginalCheckpoint(Options(original, out));
  EXPECT_FALSE(converted.ok());
  EXPECT_FALSE(fs::exists(out)) << out;
  EXPECT_FALSE(fs::exists(out + ".staging"));
  return converted.status();
}

TEST(OriginalCheckpointTest, UnknownMissingAndMisShapedTensorsAreListedByName) {
  const std::string original = FlatCopy("original_edited");
  EditStateDict(original, [](TensorMap& tensors) {
    tensors["model.encoder.layers.0.blocks.2.fc1.bias"] = at::zeros({16});  // a third expert
    tensors.erase("model.decoder.layers.0.blocks.1.fc2.bias");
    tensors["model.encoder.layers.0.blocks.0.fc1.weight"] = at::zeros({31, 16});
  });
  const absl::Status status = FailedConversion(original, "edited_out");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr(original + "/model.pt does not fit the model"));
  EXPECT_THAT(status.message(), HasSubstr("unknown tensors: model.encoder.layers.0.blocks.2.fc1.bias"));
  EXPECT_THAT(status.message(), HasSubstr("missing tensors: model.decoder.layers.0.blocks.1.fc2.bias"));
  EXPECT_THAT(status.message(),
              HasSubstr("model.encoder.layers.0.blocks.0.fc1.weight has shape [31, 16], the config "
                        "implies [16, 16]"));

  const std::string router = FlatCopy("original_edited_router");
  EditStateDict(router, [](TensorMap& tensors) {
    tensors["router.model.extra.weight"] = at::zeros({2});
    tensors.erase("router.model.router_units.3.linear2.bias");
  });
  const absl::Status router_status = FailedConversion(router, "edited_router_out");
  EXPECT_THAT(router_status.message(), HasSubstr("does not fit the router"));
  EXPECT_THAT(router_status.message(), HasSubstr("unknown tensors: router.model.extra.weight"));
  EXPECT_THAT(router_status.message(),
              HasSubstr("missing tensors: router.model.router_units.3.linear2.bias"));
}

// Every other router_nn_type: the router tensors torch.nn modules built as router_v2.py builds
// them saved, and their logits for the fixture's task vectors.
TEST(OriginalCheckpointTest, EveryRouterArchitectureGivesTheOriginalsLogits) {
  absl::StatusOr<OriginalModelConfig> original =
      ParseOriginalConfig(*ReadFileBytes(kConfigPath), kConfigPath);
  ASSERT_TRUE(original.ok()) << original.status();
  absl::StatusOr<at::Tensor> task_vectors = ReadNpy(std::string(kOriginalDir) + "/task_vecs.npy");
  ASSERT_TRUE(task_vectors.ok()) << task_vectors.status();
  RouteSelectionParams selection;
  selection.set_function(RouteSelectionParams::SOFTMAX);
  selection.set_initial_tau(1.0);
  RoutingContext context;
  context.shape = {/*encoder_layers=*/2, /*decoder_layers=*/2, /*experts=*/2};
  context.task_vector_dim = 8;
  context.num_tasks = 3;
  for (const auto& [type, architecture] :
       std::vector<std::pair<std::string, RouterNetworkParams::Architecture>>{
           {"linear", RouterNetworkParams::LINEAR},
           {"rnn", RouterNetworkParams::RNN},
           {"gru", RouterNetworkParams::GRU},
           {"lstm", RouterNetworkParams::LSTM},
           {"rnn_layer_specific", RouterNetworkParams::RNN_LAYER_SPECIFIC},
           {"gru_layer_specific", RouterNetworkParams::GRU_LAYER_SPECIFIC},
           {"lstm_layer_specific", RouterNetworkParams::LSTM_LAYER_SPECIFIC},
           {"transformer", RouterNetworkParams::TRANSFORMER},
           {"transformer_layer_specific", RouterNetworkParams::TRANSFORMER_LAYER_SPECIFIC}}) {
    SCOPED_TRACE(type);
    original->router_architecture = architecture;
    absl::StatusOr<std::shared_ptr<RoutingPlugin>> plugin =
        CreateRoutingPlugin(ConvertedRoutingConfig(*original, selection), context);
    ASSERT_TRUE(plugin.ok()) << plugin.status();
    const std::string path = std::string(kFixture) + "/routers/" + type + ".pt";
    absl::StatusOr<TensorMap> tensors = ReadTorchStateDict(path);
    ASSERT_TRUE(tensors.ok()) << tensors.status();
    const absl::Status loaded = LoadOriginalRouter(*tensors, architecture, path, **plugin);
    ASSERT_TRUE(loaded.ok()) << loaded;
    ExpectClose(TaskRoutes(**plugin, *task_vectors, /*step=*/0),
                at::softmax(Expected("routers/" + type), -1).transpose(0, 1), type);
  }
}

TEST(OriginalCheckpointTest, TiedEmbeddingsMustAgree) {
  const std::string original = FlatCopy("original_untied");
  EditStateDict(original, [](TensorMap& tensors) {
    tensors["lm_head.weight"] = tensors.at("model.shared.weight") + 1;
  });
  EXPECT_THAT(FailedConversion(original, "untied_out").message(), HasSubstr("lm_head.weight"));
}

TEST(OriginalCheckpointTest, AWrongConfigShapeNamesTheTensor) {
  const std::string original = FlatCopy("original_wide_router");
  std::string config = *ReadFileBytes(original + "/config.json");
  const std::string from = "\"router_hidden_dim\": 8";
  ASSERT_NE(config.find(from), std::string::npos);
  config.replace(config.find(from), from.size(), "\"router_hidden_dim\": 6");
  ASSERT_TRUE(WriteFileAtomically(original + "/config.json", config).ok());
  const absl::Status status = FailedConversion(original, "wide_router_out");
  EXPECT_THAT(status.message(),
              HasSubstr("router.model.router_units.0.linear1.weight has shape [8, 8], the config "
                        "implies [6, 8]"));
}

TEST(OriginalCheckpointTest, MissingFilesAreNamed) {
  const std::string no_model = FlatCopy("original_no_model");
  fs::remove(no_model + "/model.pt");
  EXPECT_THAT(FailedConversion(no_model, "no_model_out").message(),
              HasSubstr(no_model + "/model.pt"));

  const std::string no_vectors = FlatCopy("original_no_vectors");
  fs::remove(no_vectors + "/task_vecs.npy");
  EXPECT_THAT(FailedConversion(no_vectors, "no_vectors_out").message(),
              HasSubstr(no_vectors + "/task_vecs.npy"));

  const std::string no_config = FlatCopy("original_no_config");
  fs::remove(no_config + "/config.json");
  const absl::Status status = FailedConversion(no_config, "no_config_out");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr(no_config + "/config.json"));
}

TEST(OriginalCheckpointTest, AnExistingOutputIsKeptOnError) {
  const std::string out = TempDir("kept_out");
  fs::create_directories(out);
  ASSERT_TRUE(WriteFileAtomically(out + "/marker", "old").ok());
  EXPECT_EQ(ConvertOriginalCheckpoint(Options(kOriginalDir, out)).status().code(),
            absl::StatusCode::kAlreadyExists);

  const std::string broken = FlatCopy("original_broken");
  fs::remove(broken + "/model.pt");
  ConvertOriginalOptions options = Options(broken, out);
  options.overwrite = true;
  EXPECT_FALSE(ConvertOriginalCheckpoint(options).ok());
  EXPECT_EQ(*ReadFileBytes(out + "/marker"), "old");
  EXPECT_FALSE(fs::exists(out + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(out + ".staging"));

  options.original_dir = kOriginalDir;
  ASSERT_TRUE(ConvertOriginalCheckpoint(options).ok());
  EXPECT_FALSE(fs::exists(out + "/marker"));
  EXPECT_TRUE(LoadCheckpoint(out).ok());
}

TEST(OriginalCheckpointTest, ConfigErrors) {
  const std::string config = *ReadFileBytes(kConfigPath);
  auto with = [&config](const std::string& from, const std::string& to) {
    std::string edited = config;
    edited.replace(edited.find(from), from.size(), to);
    return ParseOriginalConfig(edited, "cfg.json");
  };
  absl::StatusOr<OriginalModelConfig> parsed = ParseOriginalConfig(config, "cfg.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->experts, 2);
  EXPECT_EQ(parsed->router_architecture, RouterNetworkParams::LINEAR_LAYER_SPECIFIC);
  EXPECT_EQ(parsed->encoder_vanilla_layers, std::vector<int32_t>{1});

  absl::StatusOr<OriginalModelConfig> list = with("\"encoder_vanilla_layers\": \"1\"",
                                                  "\"encoder_vanilla_layers\": [1]");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->encoder_vanilla_layers, std::vector<int32_t>{1});

  EXPECT_THAT(with("\"linear_layer_specific\"", "\"mlp\"").status().message(),
              HasSubstr("cfg.json: field 'router_nn_type' must be one of"));
  EXPECT_THAT(with("\"encoder_vanilla_layers\": \"1\"", "\"encoder_vanilla_layers\": \"1,x\"")
                  .status()
                  .message(),
              HasSubstr("'encoder_vanilla_layers'"));
  EXPECT_THAT(with("\"decoder_vanilla_layers\": \"1\"", "\"decoder_vanilla_layers\": \"0\"")
                  .status()
                  .message(),
              HasSubstr("builds the decoder's layers from encoder_layers"));
  EXPECT_THAT(with("\"router_block_num\": 2", "\"router_block_num\": 0").status().message(),
              HasSubstr("'router_block_num' must be a positive integer"));
}

TEST(OriginalCheckpointTest, StateDictReaderErrors) {
  const std::string dir = TempDir("state_dicts");
  fs::create_directories(dir);
  ASSERT_TRUE(WriteFileAtomically(dir + "/legacy.pt", std::string("\x80\x02\x8a\x0a", 4)).ok());
  EXPECT_THAT(ReadTorchStateDict(dir + "/legacy.pt").status().message(),
              HasSubstr(dir + "/legacy.pt is not in torch.save's zip format"));
  const std::vector<char> list = torch::jit::pickle_save(c10::List<int64_t>({1, 2}));
  ASSERT_TRUE(WriteFileAtomically(dir + "/list.pt", std::string(list.begin(), list.end())).ok());
  EXPECT_THAT(ReadTorchStateDict(dir + "/list.pt").status().message(),
              HasSubstr("not a dict of tensors"));
  EXPECT_THAT(SelectionFunctionFromRouterMode("hardmax").status().message(),
              HasSubstr("'hardmax'"));
}

TEST(OriginalCheckpointTest, ToolConvertsAndRejectsBadFlags) {
  const std::string out = TempDir("tool_out");
  const std::string tool = "tools/convert_original_checkpoint --original=" +
                           std::string(kOriginalDir) + " --output_dir=" + out;
  EXPECT_NE(std::system((tool + " --router_mode=hardmax 2>/dev/null").c_str()), 0);
  EXPECT_NE(std::system((tool + " --eval_route=first 2>/dev/null").c_str()), 0);
  EXPECT_FALSE(fs::exists(out));
  ASSERT_EQ(std::system((tool + " --router_mode=softmax --initial_tau=1").c_str()), 0);
  absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(out);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  ExpectClose(TaskRoutes(*checkpoint->plugin, checkpoint->tasks->vectors(), 0),
              at::softmax(Expected("router_logits"), -1).transpose(0, 1), "the tool's routes");
}

}  // namespace
}  // namespace taskmoe
