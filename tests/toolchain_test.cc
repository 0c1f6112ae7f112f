#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include "absl/strings/str_cat.h"

TEST(Toolchain, MatmulRuns) {
  at::Tensor a = at::ones({4, 4});
  EXPECT_EQ((a.matmul(a)).sum().item<float>(), 64.f);
  EXPECT_EQ(absl::StrCat("a", 1), "a1");
}
