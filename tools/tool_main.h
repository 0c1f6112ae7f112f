#ifndef TASKMOE_TOOLS_TOOL_MAIN_H_
#define TASKMOE_TOOLS_TOOL_MAIN_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace taskmoe {

struct ToolOptions {
  const char* name = "";   // starts every error line
  const char* usage = "";  // --help's first line
  // Takes `--set=path=value` experiment-config overrides out of argv, in order, before the
  // flags are parsed (see config_flags.h); other tools reject --set as an unknown flag.
  bool config_overrides = false;
  // Runs a model: logs the CPU runtime note (malloc arena, BLAS kernels) at start-up, so that
  // speed figures can name the kernels.
  bool runs_models = false;
  // Log to files (the trainer puts them into its output directory) as well as stderr; otherwise
  // log to stderr only.
  bool log_files = false;
  // Flags that name what the tool writes: a file, or a directory it replaces whole. The tool
  // does not start when one of them names a path another flag names (the same file or
  // directory, or one inside a replaced directory), so an output never overwrites an input.
  std::vector<const char*> output_flags;
};

// The front door of every tool: the process-wide CPU set-up (ConfigureCpuRuntime), flags, logging, and the directory `bazel run` was called from as the working
// directory, so relative paths mean what the user typed, and the output flags checked against
// the others. Then `run`; an error it returns, or an exception that escapes it, becomes one line
// "<name>: <message>" on stderr and exit code 1.
int RunTool(int argc, char** argv, const ToolOptions& options,
            const std::function<absl::Status(const std::vector<std::string>& overrides)>& run);

// Writes a tool's text output: to `path` atomically, or to stdout when `path` is empty.
absl::Status WriteToolOutput(const std::string& path, const std::string& text);

}  // namespace taskmoe

#endif  // TASKMOE_TOOLS_TOOL_MAIN_H_
