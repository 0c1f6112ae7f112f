#include "moe/base/cpu_runtime.h"

#include <cstdlib>
#include <string>
#include <thread>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace taskmoe {
namespace {

TEST(ConfigureCpuRuntime, KeepsTheMachinesKernelsAndEnvironment) {
  const char* pinned = std::getenv("OPENBLAS_CORETYPE");
  const std::string before = pinned == nullptr ? "" : pinned;
  const std::string note = ConfigureCpuRuntime();
  EXPECT_TRUE(absl::StartsWith(note, "malloc: one arena; tensor memory: freed blocks")) << note;
  // The process environment is untouched.
  const char* after = std::getenv("OPENBLAS_CORETYPE");
  EXPECT_EQ(after == nullptr ? "" : after, before);
  if (absl::StrContains(note, "not OpenBLAS")) GTEST_SKIP() << note;  // e.g. MKL
  if (!before.empty()) {
    // An administrator's pin wins: OpenBLAS runs the kernels it names, and the note says so.
    EXPECT_TRUE(absl::StrContains(absl::AsciiStrToLower(note),
                                  "kernels: " + absl::AsciiStrToLower(before) + " "))
        << note;
    EXPECT_TRUE(absl::EndsWith(note, "(OPENBLAS_CORETYPE=" + before + ")")) << note;
  }
  // GEMM with those kernels agrees with a double-precision product.
  at::manual_seed(1);
  const at::Tensor a = at::randn({301, 257});
  const at::Tensor b = at::randn({257, 129});
  const at::Tensor expected = at::mm(a.to(at::kDouble), b.to(at::kDouble)).to(at::kFloat);
  EXPECT_TRUE(at::allclose(at::mm(a, b), expected, 1e-4, 1e-4)) << note;
}

TEST(IntraOpThreads, ZeroMeansEveryCore) {
  EXPECT_EQ(IntraOpThreads(3), 3);
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  EXPECT_EQ(IntraOpThreads(0), cores > 0 ? cores : 1);
  EXPECT_EQ(IntraOpThreads(-1), IntraOpThreads(0));
}

}  // namespace
}  // namespace taskmoe
