#include "moe/cpu_runtime.h"

#include <cstdlib>
#include <string>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace taskmoe {
namespace {

// A float GEMM after switching kernels agrees with a double-precision product.
void ExpectGemmCorrect(const std::string& note) {
  at::manual_seed(1);
  const at::Tensor a = at::randn({301, 257});
  const at::Tensor b = at::randn({257, 129});
  const at::Tensor expected = at::mm(a.to(at::kDouble), b.to(at::kDouble)).to(at::kFloat);
  EXPECT_TRUE(at::allclose(at::mm(a, b), expected, 1e-4, 1e-4)) << note;
  EXPECT_TRUE(at::allclose(at::mm(a.t().contiguous().t(), b), expected, 1e-4, 1e-4)) << note;
}

TEST(ConfigureCpuRuntime, ChoosesOpenBlasKernelsAndKeepsGemmCorrect) {
  setenv("TASKMOE_BLAS_CORETYPE", "Haswell", 1);
  std::string note = ConfigureCpuRuntime();
  if (absl::StrContains(note, "not a dynamic-architecture OpenBLAS")) {
    GTEST_SKIP() << note;  // e.g. a LibTorch with MKL: nothing to choose
  }
  EXPECT_TRUE(absl::EndsWith(note, "-> haswell (TASKMOE_BLAS_CORETYPE)")) << note;
  ExpectGemmCorrect(note);

  setenv("TASKMOE_BLAS_CORETYPE", "keep", 1);
  note = ConfigureCpuRuntime();
  EXPECT_EQ(note, "OpenBLAS kernels: haswell (TASKMOE_BLAS_CORETYPE=keep)");

  unsetenv("TASKMOE_BLAS_CORETYPE");
  note = ConfigureCpuRuntime();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
    EXPECT_EQ(note, "OpenBLAS kernels: haswell -> skylakex (CPU has AVX-512)");
  } else {
    EXPECT_EQ(note, "OpenBLAS kernels: haswell");
  }
  ExpectGemmCorrect(note);
}

}  // namespace
}  // namespace taskmoe
