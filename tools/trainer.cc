// Trains a routed MoE model as an experiment config says; with no flags, the embedded default:
// the synthetic skill gym (generated on first use), a small learned-routing MoE, CPU.
//
//   bazel run //:trainer
//   bazel run //:trainer -- --config=configs/average.pbtxt --set=training.total_steps=500
//   bazel run //:trainer -- --config=runs/default/experiment.pbtxt --resume
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "glog/logging.h"
#include "moe/base/cpu_runtime.h"
#include "moe/train/experiment_config.h"
#include "moe/train/trainer.h"
#include "tools/config_flags.h"

ABSL_FLAG(std::string, config, "configs/default.pbtxt",
          "Experiment config (text-format taskmoe.ExperimentConfig); relative paths in it and "
          "in flags are relative to the directory the command runs from.");
ABSL_FLAG(std::string, set, "",
          "An override path=value, e.g. --set=optimizer.lr=1e-4 or "
          "--set=model.encoder_vanilla_layers=0,1; repeat the flag for several.");
ABSL_FLAG(bool, resume, false, "Continue the run in output_dir from its last checkpoint.");

int main(int argc, char** argv) {
  const std::string cpu_runtime = taskmoe::ConfigureCpuRuntime();
  absl::SetProgramUsageMessage("Trains a task-level mixture-of-experts model.");
  const std::vector<std::string> overrides = taskmoe::TakeConfigOverrides(&argc, argv);
  absl::ParseCommandLine(argc, argv);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = false;
  FLAGS_alsologtostderr = true;
  LOG(INFO) << cpu_runtime;
  // `bazel run` starts binaries in their runfiles tree; paths are the user's.
  if (const char* dir = std::getenv("BUILD_WORKING_DIRECTORY")) {
    if (chdir(dir) != 0) {
      std::cerr << "cannot enter " << dir << "\n";
      return 1;
    }
  }
  absl::StatusOr<taskmoe::ExperimentConfig> config = taskmoe::LoadExperimentConfig(
      absl::GetFlag(FLAGS_config), overrides);
  if (!config.ok()) {
    std::cerr << "error: " << config.status().message() << "\n";
    return 2;
  }
  taskmoe::TrainerOptions options;
  options.resume = absl::GetFlag(FLAGS_resume);
  absl::StatusOr<taskmoe::RunSummary> summary = taskmoe::RunExperiment(*config, options);
  if (!summary.ok()) {
    std::cerr << "error: " << summary.status().message() << "\n";
    return 1;
  }
  std::cout << summary->text;
  return 0;
}
