#include "moe/model/batched_matmul.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <cstdint>
#include <vector>

namespace taskmoe {
namespace {

void ExpectNear(const at::Tensor& actual, const at::Tensor& expected, double tolerance) {
  ASSERT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(at::allclose(actual, expected, tolerance, tolerance))
      << "max difference " << (actual - expected).abs().max().item<double>();
}

// Heads split from a [batch, length, heads * head_dim] projection, as attention does:
// [batch, heads, length, head_dim], a strided view.
at::Tensor SplitHeads(const at::Tensor& x, int64_t heads) {
  return x.view({x.size(0), x.size(1), heads, -1}).transpose(1, 2);
}

TEST(BatchedMatmul, AttentionLayoutsMatchMatmul) {
  at::manual_seed(1);
  const at::Tensor q = SplitHeads(at::randn({3, 7, 12}), 3);
  const at::Tensor k = SplitHeads(at::randn({3, 5, 12}), 3);
  const at::Tensor v = SplitHeads(at::randn({3, 5, 12}), 3);
  ASSERT_TRUE(TakesBlasPath(q, k.transpose(2, 3)));
  const at::Tensor scores = BatchedMatmul(q, k.transpose(2, 3));
  ExpectNear(scores, at::matmul(q, k.transpose(2, 3)), 1e-5);
  EXPECT_TRUE(scores.is_contiguous());
  const at::Tensor probs = at::softmax(scores, -1);
  ExpectNear(BatchedMatmul(probs, v), at::matmul(probs, v), 1e-5);
}

TEST(BatchedMatmul, EveryOperandLayoutAndShape) {
  at::manual_seed(2);
  // (batch dims, M, K, N), including single rows, columns and inner dimensions.
  const std::vector<std::vector<int64_t>> cases = {
      {2, 3, 4, 5, 6}, {4, 1, 8, 9}, {4, 6, 1, 3}, {4, 6, 5, 1}, {2, 2, 1, 1, 1}, {1, 7, 3, 2}};
  for (const std::vector<int64_t>& c : cases) {
    std::vector<int64_t> batch(c.begin(), c.end() - 3);
    const int64_t m = c[c.size() - 3];
    const int64_t k = c[c.size() - 2];
    const int64_t n = c[c.size() - 1];
    const auto shape = [&](int64_t rows, int64_t cols) {
      std::vector<int64_t> s = batch;
      s.push_back(rows);
      s.push_back(cols);
      return s;
    };
    for (const bool a_transposed : {false, true}) {
      for (const bool b_transposed : {false, true}) {
        // A transposed operand is the transpose view of a contiguous tensor: contiguous columns.
        const at::Tensor a = a_transposed ? at::randn(shape(k, m)).transpose(-2, -1)
                                          : at::randn(shape(m, k));
        const at::Tensor b = b_transposed ? at::randn(shape(n, k)).transpose(-2, -1)
                                          : at::randn(shape(k, n));
        SCOPED_TRACE(testing::Message() << a.sizes() << " x " << b.sizes() << " transposed "
                                        << a_transposed << b_transposed);
        EXPECT_TRUE(TakesBlasPath(a, b));
        ExpectNear(BatchedMatmul(a, b), at::matmul(a, b), 1e-5);
      }
    }
  }
}

TEST(BatchedMatmul, DoublePrecision) {
  at::manual_seed(3);
  const at::Tensor a = SplitHeads(at::randn({2, 6, 8}, at::kDouble), 2);
  const at::Tensor b = SplitHeads(at::randn({2, 9, 8}, at::kDouble), 2).transpose(2, 3);
  ASSERT_TRUE(TakesBlasPath(a, b));
  const at::Tensor product = BatchedMatmul(a, b);
  EXPECT_EQ(product.scalar_type(), at::kDouble);
  ExpectNear(product, at::matmul(a, b), 1e-12);
}

TEST(BatchedMatmul, GradientsMatchMatmul) {
  at::manual_seed(4);
  const at::Tensor x = at::randn({2, 6, 8}).requires_grad_();
  const at::Tensor y = at::randn({2, 5, 8}).requires_grad_();
  const at::Tensor grad = at::randn({2, 2, 6, 5});
  const auto grads_of = [&](bool ours) {
    const at::Tensor a = SplitHeads(x, 2);
    const at::Tensor b = SplitHeads(y, 2).transpose(2, 3);
    EXPECT_TRUE(TakesBlasPath(a, b));
    const at::Tensor out = ours ? BatchedMatmul(a, b) : at::matmul(a, b);
    return torch::autograd::grad({out}, {x, y}, {grad});
  };
  const auto ours = grads_of(true);
  const auto expected = grads_of(false);
  ExpectNear(ours[0], expected[0], 1e-5);
  ExpectNear(ours[1], expected[1], 1e-5);
}

// A gradient penalty differentiates the backward pass: d/dx of |d(sum(out * w))/dy|^2.
TEST(BatchedMatmul, SecondDerivativesMatchMatmul) {
  at::manual_seed(7);
  const at::Tensor x = at::randn({2, 6, 8}, at::kDouble).requires_grad_();
  const at::Tensor y = at::randn({2, 5, 8}, at::kDouble).requires_grad_();
  const at::Tensor w = at::randn({2, 2, 6, 5}, at::kDouble);
  const auto second_grads_of = [&](bool ours) {
    const at::Tensor a = SplitHeads(x, 2);
    const at::Tensor b = SplitHeads(y, 2).transpose(2, 3);
    const at::Tensor out = ours ? BatchedMatmul(a, b) : at::matmul(a, b);
    const at::Tensor dy = torch::autograd::grad({(out * w).sum()}, {y}, {}, true, true)[0];
    return torch::autograd::grad({dy.pow(2).sum()}, {x, y}, {}, {}, false, true);
  };
  const auto ours = second_grads_of(true);
  const auto expected = second_grads_of(false);
  ASSERT_TRUE(ours[0].defined());
  ExpectNear(ours[0], expected[0], 1e-10);
  // dy does not depend on y: its gradient is undefined on both sides.
  EXPECT_EQ(ours[1].defined(), expected[1].defined());
}

TEST(BatchedMatmul, ResultDoesNotDependOnTheThreadCount) {
  at::manual_seed(5);
  const at::Tensor a = SplitHeads(at::randn({8, 48, 256}), 4);
  const at::Tensor b = SplitHeads(at::randn({8, 40, 256}), 4).transpose(2, 3);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const at::Tensor one_thread = BatchedMatmul(a, b);
  at::set_num_threads(2);
  const at::Tensor two_threads = BatchedMatmul(a, b);
  at::set_num_threads(threads);
  EXPECT_TRUE(at::equal(one_thread, two_threads));
  ExpectNear(one_thread, at::matmul(a, b), 1e-4);
}

TEST(BatchedMatmul, OtherInputsGoToMatmul) {
  at::manual_seed(6);
  // Broadcast batch dimensions, rows and columns both strided, integers, an empty inner
  // dimension: at::matmul's own result.
  const at::Tensor a = at::randn({2, 3, 4, 5});
  const at::Tensor broadcast = at::randn({1, 3, 5, 6});
  EXPECT_FALSE(TakesBlasPath(a, broadcast));
  EXPECT_TRUE(at::equal(BatchedMatmul(a, broadcast), at::matmul(a, broadcast)));
  const at::Tensor strided = at::randn({2, 3, 8, 10}).slice(2, 0, 8, 2).slice(3, 0, 10, 2);
  EXPECT_FALSE(TakesBlasPath(strided, strided.transpose(2, 3)));
  EXPECT_TRUE(at::equal(BatchedMatmul(strided, strided.transpose(2, 3)),
                        at::matmul(strided, strided.transpose(2, 3))));
  const at::Tensor integers = at::randint(-5, 5, {2, 3, 4}, at::kLong);
  EXPECT_FALSE(TakesBlasPath(integers, integers.transpose(1, 2)));
  EXPECT_TRUE(at::equal(BatchedMatmul(integers, integers.transpose(1, 2)),
                        at::matmul(integers, integers.transpose(1, 2))));
  const at::Tensor empty = BatchedMatmul(at::randn({2, 3, 0}), at::randn({2, 0, 4}));
  EXPECT_TRUE(at::equal(empty, at::zeros({2, 3, 4})));
}

}  // namespace
}  // namespace taskmoe
