#ifndef TASKMOE_TESTS_TOOL_RUNNER_H_
#define TASKMOE_TESTS_TOOL_RUNNER_H_

// Runs a tool binary of the test's runfiles and captures what it prints, for tests of the
// tools' command lines.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace taskmoe::testing {

struct ToolResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line and captures what it prints.
inline ToolResult RunCommand(const std::string& command_line) {
  const std::string output_path =
      (std::filesystem::path(::testing::TempDir()) / "command_output.txt").string();
  const std::string command = command_line + " >" + output_path + " 2>&1";
  ToolResult result;
  result.exit_code = std::system(command.c_str());
  std::ifstream file(output_path);
  std::stringstream content;
  content << file.rdbuf();
  result.output = content.str();
  return result;
}

// Runs `tools/<tool> <arguments>` (arguments as a shell would split them).
inline ToolResult RunToolBinary(const std::string& tool, const std::string& arguments) {
  return RunCommand("tools/" + tool + " " + arguments);
}

}  // namespace taskmoe::testing

#endif  // TASKMOE_TESTS_TOOL_RUNNER_H_
