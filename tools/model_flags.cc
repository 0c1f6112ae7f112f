#include "tools/model_flags.h"

#include <iostream>

#include <ATen/Parallel.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "moe/base/cpu_runtime.h"
#include "moe/base/status_macros.h"
#include "moe/train/checkpoint.h"
#include "moe/train/distributed.h"

ABSL_FLAG(std::string, model, "",
          "The model: a TaskMoE checkpoint directory (with experiment.pbtxt) or a Hugging Face "
          "BART directory.");
ABSL_FLAG(std::optional<std::string>, device, std::nullopt,
          "cpu, cuda, cuda:<index> or auto (cuda when LibTorch sees a GPU, else cpu). Unset: "
          "cpu, or the config's training.device in tools that run a config.");
ABSL_FLAG(std::optional<int>, threads, std::nullopt,
          "LibTorch intra-op CPU threads; 0: all cores. Unset: all cores, or the config's "
          "training.threads in tools that run a config.");

namespace taskmoe {

absl::StatusOr<std::string> ModelFlag(absl::string_view old_name, const std::string& old_value,
                                      bool required) {
  const std::string model = absl::GetFlag(FLAGS_model);
  if (!old_value.empty()) {
    if (!model.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("give --model only (--", old_name, " is its old name)"));
    }
    std::cerr << "warning: --" << old_name << " is deprecated; use --model" << std::endl;
    return old_value;
  }
  if (model.empty() && required) return absl::InvalidArgumentError("--model is required");
  return model;
}

absl::StatusOr<std::string> HuggingFaceModelFlag(absl::string_view old_name,
                                                 const std::string& old_value) {
  absl::StatusOr<std::string> model = ModelFlag(old_name, old_value);
  if (model.ok() && IsTaskMoeCheckpoint(*model)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--model=", *model, " is a TaskMoE checkpoint; this tool runs Hugging Face BART "
        "directories: export a task's model with tools/extract_task_model"));
  }
  return model;
}

absl::StatusOr<c10::Device> SetUpDeviceAndThreads() {
  const int threads = absl::GetFlag(FLAGS_threads).value_or(0);
  TASKMOE_RETURN_IF_ERROR(CheckThreadCount(threads, "--threads"));
  at::set_num_threads(IntraOpThreads(threads));
  return ChooseDevice(absl::GetFlag(FLAGS_device).value_or("cpu"), /*local_rank=*/0, "--device");
}

std::vector<std::string> ModelFlagConfigOverrides() {
  std::vector<std::string> overrides;
  const std::string model = absl::GetFlag(FLAGS_model);
  if (!model.empty()) {
    overrides.push_back((IsTaskMoeCheckpoint(model) ? "model.checkpoint=" : "model.hf_dir=") +
                        model);
  }
  if (const std::optional<std::string> device = absl::GetFlag(FLAGS_device)) {
    overrides.push_back("training.device=" + *device);
  }
  if (const std::optional<int> threads = absl::GetFlag(FLAGS_threads)) {
    overrides.push_back(absl::StrCat("training.threads=", *threads));
  }
  return overrides;
}

}  // namespace taskmoe
