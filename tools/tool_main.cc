#include "tools/tool_main.h"

#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "glog/logging.h"
#include "moe/base/file_io.h"
#include "moe/base/cpu_runtime.h"
#include "tools/config_flags.h"

namespace taskmoe {
namespace {

bool IsSet(char** environment, const char* name) {
  const size_t length = std::strlen(name);
  for (char** entry = environment; *entry != nullptr; ++entry) {
    if (std::strncmp(*entry, name, length) == 0 && (*entry)[length] == '=') return true;
  }
  return false;
}

int FindOpenMp(dl_phdr_info* info, size_t, void*) {
  return std::strstr(info->dlpi_name, "libgomp") != nullptr ? 1 : 0;
}

// Idle OpenMP threads spin by default, which on a shared machine takes the cores other processes
// need (compute_task_embeddings: minutes instead of seconds beside one busy process; see
// docs/performance.md). libgomp reads its wait policy when it is initialised, before main, so
// the policy is put into the environment by restarting the process once, from the executable's
// pre-initialisation hook: it runs before any library is initialised, so the restart costs
// milliseconds, not LibTorch's start-up. A policy or spin count the user or administrator set
// is kept; the restarted process has one, so it never restarts again.
void RestartWithPassiveOpenMpWaits(int, char** argv, char** environment) {
  if (IsSet(environment, "OMP_WAIT_POLICY") || IsSet(environment, "GOMP_SPINCOUNT")) return;
  if (dl_iterate_phdr(FindOpenMp, nullptr) == 0) return;  // no OpenMP in this tool
  std::vector<char*> restarted_environment;
  for (char** entry = environment; *entry != nullptr; ++entry) {
    restarted_environment.push_back(*entry);
  }
  static char passive[] = "OMP_WAIT_POLICY=PASSIVE";
  restarted_environment.push_back(passive);
  restarted_environment.push_back(nullptr);
  // On failure (no /proc), the tool runs on with OpenMP's default policy.
  execve("/proc/self/exe", argv, restarted_environment.data());
}

__attribute__((section(".preinit_array"), used)) void (*const restart_with_passive_waits)(
    int, char**, char**) = RestartWithPassiveOpenMpWaits;

// The paths the flags name: every piece of a string or list flag (split at commas) that names
// an existing file or directory, except the output flags'.
std::vector<std::string> InputPaths(const std::vector<const char*>& output_flags) {
  std::vector<std::string> paths;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!flag->IsOfType<std::string>() && !flag->IsOfType<std::vector<std::string>>()) continue;
    if (std::find(output_flags.begin(), output_flags.end(), name) != output_flags.end()) continue;
    for (const absl::string_view piece : absl::StrSplit(flag->CurrentValue(), ',')) {
      std::error_code error;
      if (!piece.empty() && std::filesystem::exists(std::string(piece), error)) {
        paths.emplace_back(piece);
      }
    }
  }
  return paths;
}

absl::Status CheckOutputFlags(const std::vector<const char*>& output_flags) {
  std::vector<std::string> outputs;
  for (const char* name : output_flags) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    CHECK(flag != nullptr) << "ToolOptions::output_flags names no flag --" << name;
    if (!flag->CurrentValue().empty()) outputs.push_back(flag->CurrentValue());
  }
  if (outputs.empty()) return absl::OkStatus();
  return CheckOutputsSpareInputs(outputs, InputPaths(output_flags));
}

}  // namespace

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
  if (const absl::Status outputs = CheckOutputFlags(options.output_flags); !outputs.ok()) {
    return fail(std::string(outputs.message()));
  }
  try {
    const absl::Status status = run(overrides);
    if (!status.ok()) return fail(std::string(status.message()));
  } catch (const std::exception& e) {
    return fail(std::string("internal error: ") + e.what());
  } catch (...) {
    return fail("internal error: an unknown exception");
  }
  return 0;
}

absl::Status WriteToolOutput(const std::string& path, const std::string& text) {
  if (!path.empty()) return WriteFileAtomically(path, text);
  std::cout << text << std::flush;
  return std::cout ? absl::OkStatus() : absl::DataLossError("writing to stdout failed");
}

}  // namespace taskmoe
