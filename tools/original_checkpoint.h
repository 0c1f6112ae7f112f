#ifndef TASKMOE_TOOLS_ORIGINAL_CHECKPOINT_H_
#define TASKMOE_TOOLS_ORIGINAL_CHECKPOINT_H_

// Conversion of a checkpoint of the original CrossTaskMoE code (run_v2.py) into a TaskMoE
// checkpoint. The original leaves, per saved checkpoint,
//
//   <output_dir>/config.json          RoutingBartConfig (BART fields + router_block_num,
//                                     router_nn_type, router_input_dim, router_hidden_dim,
//                                     encoder/decoder_vanilla_layers, exploration_epsilon)
//   <output_dir>/<name>/model.pt      torch.save of MyRoutingBart's state dict (zip format)
//   <output_dir>/<name>/id2task.json  + task_vecs.npy   (Task2Vec.save_to_disk)
//
// and the conversion writes a checkpoint with routing plugin "learned" (the router of
// router_nn_type, its weights as routing state), experts per layer = router_block_num, the same
// vanilla layers and the task table. The selection function and temperature schedule are not in
// config.json (the original takes them from its command line), so they are options here.
//
// This lives in tools/, not in the core, because it names the "learned" plugin and the router
// network's parameter names.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "moe/formats/bart_config.h"
#include "moe/formats/safetensors.h"
#include "moe/routing/routing.h"
#include "routing_plugins/router/router.pb.h"

namespace taskmoe {

// config.json of the original: the BART config plus the RoutingBartConfig fields the model's
// structure depends on. Absent fields take RoutingBartConfig's defaults, as from_pretrained does.
struct OriginalModelConfig {
  BartConfig bart;
  int64_t experts = 3;  // router_block_num
  RouterNetworkParams::Architecture router_architecture = RouterNetworkParams::RNN;
  int64_t router_input_dim = 768;
  int64_t router_hidden_dim = 64;
  // "0,3" strings in the original (its command line); lists of integers are accepted too.
  std::vector<int32_t> encoder_vanilla_layers;
  std::vector<int32_t> decoder_vanilla_layers;
  double exploration_epsilon = 0.0;
};

// Parses the original's config.json text; errors name `source_name` and the field. A config
// the original cannot have trained (routing_bart_v2.py builds the decoder's layers from
// encoder_layers and encoder_vanilla_layers, but runs them by decoder_vanilla_layers) is an
// error too.
absl::StatusOr<OriginalModelConfig> ParseOriginalConfig(const std::string& json_text,
                                                        const std::string& source_name);

// The original's config.json for a checkpoint directory: <dir>/config.json, else the run's
// <dir>/../config.json (where run_v2.py writes it). NotFound names both paths.
absl::StatusOr<std::string> FindOriginalConfig(const std::string& original_dir);

// A dict {name: tensor} saved by Python's torch.save in its default zip format (model.pt).
// Errors name the path: unreadable, the legacy non-zip format, not a dict of tensors.
absl::StatusOr<TensorMap> ReadTorchStateDict(const std::string& path);

// The original's --router_mode: "softmax", "gumbel_softmax" or "gumbel_softmax_st".
absl::StatusOr<RouteSelectionParams::Function> SelectionFunctionFromRouterMode(
    const std::string& router_mode);

// The routing section of the converted checkpoint: plugin "learned" with the router network
// of `original` (router_nn_type, router_hidden_dim; router_v2.py's transformer routers use 4
// heads and a feed-forward width of 64), `selection` and the original's exploration_epsilon.
RoutingConfig ConvertedRoutingConfig(const OriginalModelConfig& original,
                                     const RouteSelectionParams& selection);

// Copies the original's router tensors ("router.model.*" of model.pt, a network of
// `architecture`) into the router of `plugin`, a learned plugin built from
// ConvertedRoutingConfig. Every router tensor of `plugin` needs one, with the original's shape;
// the error names `source` and lists unknown, missing and mis-shaped names.
absl::Status LoadOriginalRouter(const TensorMap& router_tensors,
                                RouterNetworkParams::Architecture architecture,
                                const std::string& source, RoutingPlugin& plugin);

struct ConvertOriginalOptions {
  // Holds model.pt, id2task.json and task_vecs.npy (e.g. <original output_dir>/best).
  std::string original_dir;
  // The original's config.json; empty: FindOriginalConfig(original_dir).
  std::string config_path;
  std::string output_dir;
  // The original's --router_mode, --initial_tau, --minimum_tau, --anneal_rate; the defaults are
  // the original's (gumbel_softmax_st, 2.0, 0.1, 3e-4).
  RouteSelectionParams selection;
  // An existing output_dir is an error unless this is set (then it is replaced atomically).
  bool overwrite = false;
};

struct ConvertedOriginal {
  std::string config_path;     // the config.json used
  int64_t model_tensors = 0;   // tensors of the TaskMoE model written
  int64_t router_tensors = 0;  // tensors of the routing state written
  int64_t tasks = 0;
};

// Reads and checks everything first, then writes the checkpoint (model.safetensors,
// config.json, experiment.pbtxt, routing_state.safetensors, id2task.json, task_vecs.npy, and
// the route files of every task of the table at step 0, WriteRouteFiles) atomically: on any error nothing is written. Every tensor of model.pt must have a place in
// the converted model or router and every parameter of them a tensor in model.pt, with the
// shape config.json implies; errors list unknown, missing and mis-shaped names under the
// original's names (the model's first, then the router's).
absl::StatusOr<ConvertedOriginal> ConvertOriginalCheckpoint(const ConvertOriginalOptions& options);

}  // namespace taskmoe

#endif  // TASKMOE_TOOLS_ORIGINAL_CHECKPOINT_H_
