// A tool on the shared front door (tools/tool_main.h) for tests of that front door: it prints the
// OpenMP wait setting the tool runs with, then fails as --fail says. --output is its output flag.

#include <ATen/Parallel.h>

#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, fail, "", "status, exception or unknown_exception; empty: succeed");
ABSL_FLAG(std::string, input, "", "a path the probe would read");
ABSL_FLAG(std::vector<std::string>, inputs, {}, "paths the probe would read");
ABSL_FLAG(std::string, output, "", "a path the probe would write (it writes nothing)");

int main(int argc, char** argv) {
  taskmoe::ToolOptions tool;
  tool.name = "tool_main_probe";
  tool.output_flags = {"output"};
  return taskmoe::RunTool(argc, argv, tool, [](const std::vector<std::string>&) {
    const char* policy = std::getenv("OMP_WAIT_POLICY");
    // at::get_num_threads links this probe to LibTorch, hence to the OpenMP runtime.
    std::cout << "OMP_WAIT_POLICY=" << (policy == nullptr ? "(unset)" : policy)
              << " threads=" << at::get_num_threads() << std::endl;
    const std::string fail = absl::GetFlag(FLAGS_fail);
    if (fail == "status") return absl::InvalidArgumentError("--fail=status: as asked");
    if (fail == "exception") throw std::length_error("vector::_M_default_append");
    if (fail == "unknown_exception") throw 42;
    return absl::OkStatus();
  });
}
