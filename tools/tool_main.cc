#include "tools/tool_main.h"

#include <link.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
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
