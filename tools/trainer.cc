// Trains a routed MoE model as an experiment config says; with no flags, the embedded default:
// the synthetic skill gym (generated on first use), a small learned-routing MoE, CPU.
//
//   bazel run //:trainer
//   bazel run //:trainer -- --config=configs/average.pbtxt --set=training.total_steps=500
//   bazel run //:trainer -- --config=runs/default/experiment.pbtxt --resume
//   bazel run //:trainer -- --seed=7 --threads=2 --model=runs/dense/best
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "glog/logging.h"
#include "moe/report/report.h"
#include "moe/train/distributed.h"
#include "moe/train/experiment_config.h"
#include "moe/train/trainer.h"
#include "tools/experiment_flags.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, config, "configs/default.pbtxt",
          "Experiment config (text-format taskmoe.ExperimentConfig); relative paths in it and "
          "in flags are relative to the directory the command runs from, except its base: "
          "field, which names a config relative to this file that it extends (fields set here "
          "override the base's field by field, repeated fields are appended, a routing block "
          "replaces the base's whole; see docs/training.md).");
ABSL_FLAG(std::string, set, "",
          "An override path=value, e.g. --set=optimizer.lr=1e-4 or "
          "--set=model.encoder_vanilla_layers=0,1; repeat the flag for several.");
ABSL_FLAG(bool, resume, false, "Continue the run in output_dir from its last checkpoint.");
ABSL_FLAG(bool, save_initial_model, false,
          "With training.total_steps 0: also save the model that predicted (from model.hf_dir: "
          "with its fresh router and task table) as <output_dir>/last, step 0, for the tools "
          "that read a checkpoint; an error with more steps.");

namespace {

// The main process writes <output_dir>/report.html (moe/report): the run is done whatever
// happens here, so a report that fails is a warning, not a failed run.
void WriteRunReport(const std::string& output_dir) {
  const absl::StatusOr<taskmoe::DistributedEnv> env = taskmoe::DistributedEnvFromEnvironment();
  if (env.ok() && env->rank != 0) return;
  const absl::StatusOr<taskmoe::WrittenReport> report = taskmoe::WriteReport(output_dir);
  if (report.ok()) {
    std::cout << "report: " << report->path << "\n";
  } else {
    LOG(WARNING) << "no run report: " << report.status().message();
  }
}

}  // namespace

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "trainer";
  tool.runs_models = true;
  tool.usage = "Trains a task-level mixture-of-experts model.";
  tool.config_overrides = true;
  tool.log_files = true;
  return taskmoe::RunTool(
      argc, argv, tool, [](const std::vector<std::string>& overrides) -> absl::Status {
        absl::StatusOr<taskmoe::ExperimentConfig> config =
            taskmoe::LoadExperimentConfig(absl::GetFlag(FLAGS_config),
                                          taskmoe::WithExperimentFlagOverrides(overrides));
        if (!config.ok()) return config.status();
        taskmoe::TrainerOptions options;
        options.resume = absl::GetFlag(FLAGS_resume);
        options.save_initial_model = absl::GetFlag(FLAGS_save_initial_model);
        absl::StatusOr<taskmoe::RunSummary> summary = taskmoe::RunExperiment(*config, options);
        if (!summary.ok()) return summary.status();
        std::cout << summary->text;
        WriteRunReport(config->output_dir());
        return absl::OkStatus();
      });
}
