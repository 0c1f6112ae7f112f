#include "moe/workflow/two_stage.h"

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <random>
#include <vector>

#include <torch/csrc/autograd/grad_mode.h>
#include <torch/utils.h>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "moe/base/atomic_directory.h"
#include "moe/base/file_io.h"
#include "moe/base/status_macros.h"
#include "moe/formats/bart_config.h"
#include "moe/formats/safetensors.h"
#include "moe/formats/task_table.h"
#include "moe/model/bart_weights.h"
#include "moe/model/moe_model.h"
#include "moe/train/checkpoint.h"
#include "moe/train/experiment_config.h"
#include "moe/train/model_builder.h"

namespace taskmoe {
namespace {

namespace fs = std::filesystem;

constexpr char kHuggingFaceKind[] = "Hugging Face directory";
constexpr char kCheckpointKind[] = "TaskMoE checkpoint";

// The dense BART inside a TaskMoE checkpoint whose MoE layers hold a single expert (or that has
// no MoE layer at all): every route one-hot on expert 0 selects exactly that model.
absl::StatusOr<BartForConditionalGeneration> DenseFromCheckpoint(const std::string& dir) {
  absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(dir);
  if (!checkpoint.ok()) return checkpoint.status();
  const MoeBart& model = *checkpoint->model;
  const ModelShape& shape = model.shape();
  const bool all_vanilla =
      static_cast<int64_t>(model.options().encoder_vanilla_layers.size()) == shape.encoder_layers &&
      static_cast<int64_t>(model.options().decoder_vanilla_layers.size()) == shape.decoder_layers;
  if (shape.experts != 1 && !all_vanilla) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir, " is a TaskMoE checkpoint with ", shape.experts,
        " experts per MoE layer, not a dense model (expected 1 expert, or every layer vanilla)"));
  }
  RouteWeights first_expert;
  first_expert.encoder = at::zeros({shape.encoder_layers, 1, shape.experts});
  first_expert.decoder = at::zeros({shape.decoder_layers, 1, shape.experts});
  first_expert.encoder.select(2, 0).fill_(1);
  first_expert.decoder.select(2, 0).fill_(1);
  return model.ExtractDense(first_expert);
}

// The dense model must fit the router (layer counts) and the tokenizer (vocabulary).
absl::Status CheckDenseFitsStageOne(const BartConfig& dense, const BartConfig& stage_one,
                                    const std::string& dense_dir) {
  if (dense.encoder_layers != stage_one.encoder_layers ||
      dense.decoder_layers != stage_one.decoder_layers) {
    return absl::InvalidArgumentError(absl::StrCat(
        dense_dir, ": ", dense.encoder_layers, " encoder and ", dense.decoder_layers,
        " decoder layers, but the stage-one router routes ", stage_one.encoder_layers, " and ",
        stage_one.decoder_layers));
  }
  if (dense.vocab_size != stage_one.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        dense_dir, ": vocab_size ", dense.vocab_size, ", but stage one's is ", stage_one.vocab_size,
        " (the two models must share the tokenizer)"));
  }
  return absl::OkStatus();
}

// Writes stage one's task table with the vectors of its routed tasks deranged (every routed
// task gets another routed task's vector); returns task -> donor.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> WriteShuffledTaskTable(
    const std::string& stage_one, const TaskTable& table, uint64_t seed,
    const std::string& staging) {
  const std::string routed_file = stage_one + "/" + kRouteTasksFile;
  TASKMOE_ASSIGN_OR_RETURN(const std::vector<std::string> routed,
                           TaskTable::ReadNames(routed_file));
  if (routed.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(routed_file, ": shuffling routes needs at least 2 routed tasks"));
  }
  std::vector<int64_t> rows;
  for (const std::string& task : routed) {
    TASKMOE_ASSIGN_OR_RETURN(const int64_t row, table.Id(task));
    rows.push_back(row);
  }
  // A uniform derangement by rejection: about e (2.7) shuffles on average.
  std::vector<size_t> donor(rows.size());
  std::iota(donor.begin(), donor.end(), 0);
  std::mt19937_64 random(seed);
  auto has_fixed_point = [&donor] {
    for (size_t i = 0; i < donor.size(); ++i) {
      if (donor[i] == i) return true;
    }
    return false;
  };
  do {
    std::shuffle(donor.begin(), donor.end(), random);
  } while (has_fixed_point());
  at::Tensor vectors = table.vectors().clone();
  std::vector<std::pair<std::string, std::string>> donors;
  nlohmann::ordered_json donors_json = nlohmann::ordered_json::object();
  for (size_t i = 0; i < rows.size(); ++i) {
    vectors[rows[i]].copy_(table.vectors()[rows[donor[i]]]);
    donors.emplace_back(routed[i], routed[donor[i]]);
    donors_json[routed[i]] = routed[donor[i]];
  }
  TASKMOE_ASSIGN_OR_RETURN(const TaskTable shuffled, TaskTable::Create(table.names(), vectors));
  TASKMOE_RETURN_IF_ERROR(shuffled.Save(staging));
  TASKMOE_RETURN_IF_ERROR(
      WriteFileAtomically(staging + "/" + kRouteDonorsFile, donors_json.dump(2) + "\n"));
  return donors;
}

}  // namespace

absl::StatusOr<BartForConditionalGeneration> LoadDenseModel(const std::string& dir,
                                                            std::string* kind) {
  const bool is_checkpoint = IsTaskMoeCheckpoint(dir);
  if (kind != nullptr) *kind = is_checkpoint ? kCheckpointKind : kHuggingFaceKind;
  if (is_checkpoint) return DenseFromCheckpoint(dir);
  return LoadBartDirectory(dir);
}

absl::StatusOr<BuiltCheckpoint> BuildStageTwoCheckpoint(const BuildCheckpointOptions& options) {
  if (fs::exists(options.output_dir) && !options.overwrite) {
    return absl::AlreadyExistsError(absl::StrCat(
        "output directory ", options.output_dir, " exists; pass --overwrite to replace it"));
  }
  const std::string stage_one = options.stage_one_dir;
  TASKMOE_RETURN_IF_ERROR(
      CheckOutputsSpareInputs({options.output_dir}, {stage_one, options.dense_dir}));

  // Stage one: its experiment (MoE structure, routing), routing plugin and state, task table.
  absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(stage_one);
  if (!checkpoint.ok()) return checkpoint.status();
  ExperimentConfig* experiment = &checkpoint->experiment;
  BuiltCheckpoint built;
  if (!checkpoint->plugin->RoutesDependOnTaskVectors()) {
    return absl::InvalidArgumentError(absl::StrCat(
        stage_one, "/", kRoutingStateFile, " holds no router: routing plugin '",
        experiment->routing().plugin(), "' routes without task vectors, so there is no learned "
        "routing to carry into stage two; build_checkpoint needs a stage-one checkpoint whose "
        "plugin routes from task vectors (learned routing)"));
  }
  built.routing_state_tensors = static_cast<int64_t>(RoutingState(*checkpoint->plugin).size());
  built.tasks = checkpoint->tasks->size();
  const BartConfig& stage_one_config = checkpoint->model->config();

  absl::StatusOr<BartForConditionalGeneration> dense =
      LoadDenseModel(options.dense_dir, &built.dense_kind);
  if (!dense.ok()) return dense.status();
  const BartConfig& dense_config = (*dense)->config();
  TASKMOE_RETURN_IF_ERROR(
      CheckDenseFitsStageOne(dense_config, stage_one_config, options.dense_dir));

  ModelConfig& model_config = *experiment->mutable_model();
  if (options.init_eps.has_value()) model_config.set_init_eps(*options.init_eps);
  MoeOptions moe_options = ToMoeOptions(model_config);
  torch::manual_seed(options.seed);
  absl::StatusOr<MoeBart> moe = MoeBart::FromDense(*dense, moe_options);
  if (!moe.ok()) return moe.status();
  // The built checkpoint's weights come from the dense model; record where.
  if (built.dense_kind == kCheckpointKind) {
    model_config.set_checkpoint(options.dense_dir);
  } else {
    model_config.set_hf_dir(options.dense_dir);
  }

  absl::StatusOr<AtomicDirectory> out = AtomicDirectory::Begin(options.output_dir);
  if (!out.ok()) return out.status();
  const std::string staging = out->staging();
  TASKMOE_RETURN_IF_ERROR(WriteCheckpointModel(staging, *moe->model(), dense_config, *experiment));
  TASKMOE_RETURN_IF_ERROR(CopyFileAtomically(stage_one + "/" + kRoutingStateFile,
                                             staging + "/" + kRoutingStateFile));
  if (options.shuffle_routes_seed.has_value()) {
    TASKMOE_ASSIGN_OR_RETURN(built.route_donors,
                             WriteShuffledTaskTable(stage_one, *checkpoint->tasks,
                                                    *options.shuffle_routes_seed, staging));
    TASKMOE_RETURN_IF_ERROR(out->Commit());
    return built;
  }
  // Task vectors and their routes are stage one's, byte for byte.
  for (const char* file : {TaskTable::kNamesFile, TaskTable::kVectorsFile, kRoutesFile}) {
    TASKMOE_RETURN_IF_ERROR(CopyFileAtomically(stage_one + "/" + file, staging + "/" + file));
  }
  // The other route views and the heatmaps, where stage one has them.
  for (const char* file : {kRouteTasksFile, kRoutesImageFile, kRoutesT1File, kRoutesT1ImageFile,
                           kRoutesArgmaxFile, kRoutesArgmaxImageFile}) {
    const std::string from = stage_one + "/" + file;
    if (!fs::exists(from)) continue;
    TASKMOE_RETURN_IF_ERROR(CopyFileAtomically(from, staging + "/" + file));
  }
  TASKMOE_RETURN_IF_ERROR(out->Commit());
  return built;
}

}  // namespace taskmoe
