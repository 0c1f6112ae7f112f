#include "tools/tool_main.h"

#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <iostream>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "glog/logging.h"
#include "moe/base/file_io.h"
#include "moe/base/cpu_runtime.h"
#include "tools/config_flags.h"

namespace taskmoe {

int RunTool(int argc, char** argv, const ToolOptions& options,
            const std::function<absl::Status(const std::vector<std::string>& overrides)>& run) {
  // Before any thread or tensor exists.
  const std::string cpu_runtime = ConfigureCpuRuntime();
  if (*options.usage != '\0') absl::SetProgramUsageMessage(options.usage);
  std::vector<std::string> overrides;
  if (options.config_overrides) overrides = TakeConfigOverrides(&argc, argv);
  absl::ParseCommandLine(argc, argv);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = !options.log_files;
  FLAGS_alsologtostderr = options.log_files;
  if (options.runs_models) LOG(INFO) << cpu_runtime;
  const auto fail = [&options](const std::string& message) {
    std::cerr << options.name << ": " << message << std::endl;
    return 1;
  };
  // `bazel run` starts binaries in their runfiles tree; paths are the user's.
  if (const char* dir = std::getenv("BUILD_WORKING_DIRECTORY")) {
    if (chdir(dir) != 0) return fail(std::string("cannot enter ") + dir);
  }
  try {
    const absl::Status status = run(overrides);
    if (!status.ok()) return fail(std::string(status.message()));
  } catch (const std::exception& e) {
    return fail(std::string("internal error: ") + e.what());
  }
  return 0;
}

absl::Status WriteToolOutput(const std::string& path, const std::string& text) {
  if (!path.empty()) return WriteFileAtomically(path, text);
  std::cout << text << std::flush;
  return std::cout ? absl::OkStatus() : absl::DataLossError("writing to stdout failed");
}

}  // namespace taskmoe
