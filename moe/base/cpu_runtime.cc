#include "moe/base/cpu_runtime.h"

#include <dlfcn.h>
#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "moe/base/tensor_memory.h"

namespace taskmoe {

std::string BlasKernelNote() {
  // openblas_get_corename is OpenBLAS's public API; other BLAS libraries do not export it.
  using CoreName = char* (*)();
  const auto corename = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (corename == nullptr) return "BLAS: not OpenBLAS";
  std::string note = absl::StrCat("OpenBLAS kernels: ", corename());
  if (const char* pinned = std::getenv("OPENBLAS_CORETYPE"); pinned != nullptr && *pinned) {
    absl::StrAppend(&note, " (OPENBLAS_CORETYPE=", pinned, ")");
  }
  return note;
}

std::string OpenMpWaitNote() {
  for (const char* name : {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"}) {
    if (const char* value = std::getenv(name); value != nullptr) {
      return absl::StrCat(name, "=", value);
    }
  }
  return "OpenMP waits: the OpenMP runtime's default";
}

std::string ConfigureCpuRuntime() {
  mallopt(M_ARENA_MAX, 1);
  InstallTensorMemoryCache();
  return absl::StrCat("malloc: one arena; ", TensorMemoryNote(), "; ", OpenMpWaitNote(), "; ",
                      BlasKernelNote());
}

absl::Status CheckThreadCount(int requested, const std::string& setting) {
  if (requested >= 0 && requested <= kMaxThreads) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(setting, ": must be in [0, ", kMaxThreads, "] (0 = every core), got ",
                   requested));
}

int IntraOpThreads(int requested) {
  if (requested > 0) return requested;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace taskmoe
