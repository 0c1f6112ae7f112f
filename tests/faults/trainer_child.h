#ifndef TASKMOE_TESTS_FAULTS_TRAINER_CHILD_H_
#define TASKMOE_TESTS_FAULTS_TRAINER_CHILD_H_

// The trainer tool (tools/trainer, from the test's runfiles) on a tiny gym and a tiny model, run
// as a child process for the fault tests, optionally with tests/faults/fault_preload.cc.

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "data/gym/gym_writer.h"
#include "tests/faults/child_process.h"
#include "tests/tiny_gym.h"

namespace taskmoe::testing {

// One small gym shared by the runs of a test binary (the size of tests/trainer_test.cc's).
inline const std::string& FaultGymDir() {
  static const std::string* dir = [] {
    gym::GymOptions options;
    options.train_examples = 48;
    options.upstream_dev_examples = 4;
    options.upstream_test_examples = 4;
    options.fewshot_pool_examples = 64;
    options.fewshot_test_examples = 8;
    return new std::string(MakeTinyGym("gym", options));
  }();
  return *dir;
}

// `path` in the runfiles, absolute: the preloaded library must be found from any directory.
inline std::string RunfilePath(const std::string& path) {
  return (std::filesystem::current_path() / path).string();
}

// The trainer's command line: the tiny run writing to `output_dir`, then `overrides`
// (path=value, later ones win), and --resume when `resume`.
inline std::vector<std::string> TrainerArgv(const std::string& output_dir,
                                            const std::vector<std::string>& overrides,
                                            bool resume = false) {
  std::vector<std::string> argv = {
      RunfilePath("tools/trainer"),
      "--config=",
      "--set=output_dir=" + output_dir,
      "--set=data.data_dir=" + FaultGymDir(),
      "--set=routing.plugin=learned",
      "--set=model.random_init={d_model: 16 encoder_layers: 1 decoder_layers: 1 "
      "attention_heads: 2 ffn_dim: 32 max_position_embeddings: 64}",
      "--set=model.experts=2",
      "--set=model.init_eps=0.01",
      "--set=model.dropout=0.1",
      "--set=task_vectors.random=true",
      "--set=task_vectors.dim=8",
      "--set=optimizer.lr=1e-3",
      "--set=training.warmup_ratio=0.25",
      "--set=training.gradient_accumulation_steps=2",
      "--set=training.train_batch_size=8",
      "--set=training.threads=1",
      "--set=evaluation.num_beams=1",
      "--set=evaluation.max_dev_examples=2",
      "--set=evaluation.do_predict=false",
      "--set=data.max_input_length=40",
      "--set=data.max_output_length=12",
  };
  for (const std::string& override_text : overrides) argv.push_back("--set=" + override_text);
  if (resume) argv.push_back("--resume");
  return argv;
}

// Child options running the trainer with the faults of tests/faults/fault_preload.cc, set by
// its TASKMOE_FAULT_* variables in `faults`.
inline ChildOptions TrainerWithFaults(std::vector<std::string> argv,
                                      std::vector<std::string> faults) {
  ChildOptions options;
  options.argv = std::move(argv);
  options.environment = std::move(faults);
  options.environment.push_back("LD_PRELOAD=" + RunfilePath("tests/faults/libfault_preload.so"));
  // Under --config=asan the sanitizer runtime would refuse to come after the preloaded library.
  const char* asan_options = std::getenv("ASAN_OPTIONS");
  options.environment.push_back(std::string("ASAN_OPTIONS=") +
                                (asan_options != nullptr ? std::string(asan_options) + ":" : "") +
                                "verify_asan_link_order=0");
  return options;
}

}  // namespace taskmoe::testing

#endif  // TASKMOE_TESTS_FAULTS_TRAINER_CHILD_H_
