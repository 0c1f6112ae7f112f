#ifndef TASKMOE_TOOLS_MODEL_FLAGS_H_
#define TASKMOE_TOOLS_MODEL_FLAGS_H_

// Flags of every tool that runs a model, defined once so that one name means one thing:
//   --model    the model input: a TaskMoE checkpoint directory (with experiment.pbtxt) or a
//              Hugging Face BART directory (config.json, model.safetensors, vocab.json, ...)
//   --device   cpu, cuda, cuda:<index> or auto (cuda when LibTorch sees a GPU, else cpu)
//   --threads  LibTorch intra-op CPU threads; 0: all cores
// --device and --threads left unset mean cpu and all cores, except in the tools that run an
// experiment config (trainer, finetune_tasks), where they keep the config's values.

#include <optional>
#include <string>
#include <vector>

#include <c10/core/Device.h>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "moe/train/checkpoint.h"

ABSL_DECLARE_FLAG(std::string, model);
ABSL_DECLARE_FLAG(std::optional<std::string>, device);
ABSL_DECLARE_FLAG(std::optional<int>, threads);

namespace taskmoe {

// The model directory of --model. A tool's older flag for it (`old_name`, e.g. "model_dir",
// with its value) still works, with a warning line on stderr; giving both, or neither when
// `required`, is an error.
absl::StatusOr<std::string> ModelFlag(absl::string_view old_name = "",
                                      const std::string& old_value = "", bool required = true);

// ModelFlag for tools that run Hugging Face BART directories: a TaskMoE checkpoint is an error
// that says how to export one of its tasks as such a directory.
absl::StatusOr<std::string> HuggingFaceModelFlag(absl::string_view old_name = "",
                                                 const std::string& old_value = "");

// Sets LibTorch's intra-op threads from --threads and returns the --device (checked: a cuda
// device needs a CUDA build of LibTorch and that GPU).
absl::StatusOr<c10::Device> SetUpDeviceAndThreads();

// --model, --device and --threads as experiment-config overrides (model.checkpoint or
// model.hf_dir, training.device, training.threads), only those given on the command line.
std::vector<std::string> ModelFlagConfigOverrides();

}  // namespace taskmoe

#endif  // TASKMOE_TOOLS_MODEL_FLAGS_H_
