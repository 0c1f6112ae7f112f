#include "moe/cpu_runtime.h"

#include <dlfcn.h>
#include <malloc.h>

#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace taskmoe {
namespace {

// OpenBLAS's runtime kernel selection (exported by DYNAMIC_ARCH builds): quit forgets the
// chosen kernel table, init chooses again, honouring OPENBLAS_CORETYPE.
struct OpenBlasDynamicArch {
  char* (*corename)() = nullptr;
  void (*init)() = nullptr;
  void (*quit)() = nullptr;

  static OpenBlasDynamicArch Find() {
    OpenBlasDynamicArch api;
    api.corename = reinterpret_cast<char* (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
    api.init = reinterpret_cast<void (*)()>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init"));
    api.quit = reinterpret_cast<void (*)()>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit"));
    return api;
  }
  bool available() const { return corename != nullptr && init != nullptr && quit != nullptr; }
  std::string core() const { return absl::AsciiStrToLower(corename()); }
};

bool HasAvx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

std::string SelectBlasKernels() {
  const OpenBlasDynamicArch openblas = OpenBlasDynamicArch::Find();
  if (!openblas.available()) return "BLAS: not a dynamic-architecture OpenBLAS, kept as is";
  const std::string before = openblas.core();
  const char* requested = std::getenv("TASKMOE_BLAS_CORETYPE");
  std::string target;
  if (requested != nullptr && *requested != '\0') {
    if (std::string(requested) == "keep") {
      return absl::StrCat("OpenBLAS kernels: ", before, " (TASKMOE_BLAS_CORETYPE=keep)");
    }
    target = requested;
  } else if (HasAvx512() && before != "skylakex" && before != "cooperlake" &&
             before != "sapphirerapids") {
    target = "SkylakeX";
  } else {
    return absl::StrCat("OpenBLAS kernels: ", before);
  }
  // OpenBLAS re-reads OPENBLAS_CORETYPE when it chooses again (an unknown name gets its generic
  // fallback kernels, which the note shows).
  setenv("OPENBLAS_CORETYPE", target.c_str(), /*overwrite=*/1);
  openblas.quit();
  openblas.init();
  return absl::StrCat("OpenBLAS kernels: ", before, " -> ", openblas.core(),
                      requested != nullptr && *requested != '\0' ? " (TASKMOE_BLAS_CORETYPE)"
                                                                 : " (CPU has AVX-512)");
}

}  // namespace

std::string ConfigureCpuRuntime() {
  mallopt(M_ARENA_MAX, 1);
  return SelectBlasKernels();
}

}  // namespace taskmoe
