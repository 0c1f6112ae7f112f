#ifndef TASKMOE_TESTS_FAULTS_TRAINER_CHILD_H_
#define TASKMOE_TESTS_FAULTS_TRAINER_CHILD_H_

// The trainer tool (tools/trainer, from the test's runfiles) on a tiny gym and a tiny model, run
// as a child process for the fault tests, optionally with tests/faults/fault_preload.cc.

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/faults/child_process.h"
#include "tests/tiny_trainer.h"

namespace taskmoe::testing {

// `path` in the runfiles, absolute: the preloaded library must be found from any directory.
inline std::string RunfilePath(const std::string& path) {
  return (std::filesystem::current_path() / path).string();
}

// The trainer's command line: the tiny run of tests/tiny_trainer.h writing to `output_dir`, then
// `overrides` (path=value, later ones win), and --resume when `resume`.
inline std::vector<std::string> TrainerArgv(const std::string& output_dir,
                                            const std::vector<std::string>& overrides,
                                            bool resume = false) {
  std::vector<std::string> argv = {RunfilePath("tools/trainer"), "--config="};
  for (const std::string& override_text : TinyRunOverrides(output_dir, overrides)) {
    argv.push_back("--set=" + override_text);
  }
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
