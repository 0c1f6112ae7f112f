#ifndef TASKMOE_MOE_MODEL_BATCHED_MATMUL_H_
#define TASKMOE_MOE_MODEL_BATCHED_MATMUL_H_

// Products of many small matrices, as attention takes them per head: a [..., M, K] times
// b [..., K, N] with the same batch dimensions, [..., M, N] out (contiguous).
//
// LibTorch's CPU bmm (built without MKL, as Debian's) loops over the batch with a select and a
// full addmm per matrix, whose overhead outweighs the product of attention's small per-head
// matrices, and matmul first copies inputs whose heads are split from a [B, T, H * D] tensor
// into contiguous ones. Here each matrix is one BLAS gemm call straight on the inputs' strides,
// the batch split over the intra-op threads; every product runs single-threaded in BLAS, so a
// result does not depend on the thread count. Other devices, dtypes (CPU float and double take
// this path) and layouts (a matrix whose rows and columns are both strided) go to at::matmul.
// Differentiable, twice too: the backward products are BatchedMatmul calls themselves.

#include <ATen/ATen.h>

namespace taskmoe {

at::Tensor BatchedMatmul(const at::Tensor& a, const at::Tensor& b);

// Whether BatchedMatmul(a, b) runs its own BLAS calls (false: at::matmul).
bool TakesBlasPath(const at::Tensor& a, const at::Tensor& b);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_MODEL_BATCHED_MATMUL_H_
