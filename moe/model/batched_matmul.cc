#include "moe/model/batched_matmul.h"

#include <dlfcn.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include <ATen/Parallel.h>
#include <glog/logging.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/grad_mode.h>

namespace taskmoe {
namespace {

// The Fortran-interface gemm of the BLAS library that LibTorch loaded (libblas.so.3 on Debian),
// found at run time so that no link flag ties the build to one BLAS package; nullptr if absent.
template <typename T>
using Gemm = void (*)(const char* transa, const char* transb, const int* m, const int* n,
                      const int* k, const T* alpha, const T* a, const int* lda, const T* b,
                      const int* ldb, const T* beta, T* c, const int* ldc);

template <typename T>
Gemm<T> BlasGemm();

// Looks `name` up once; its absence is worth one warning, as every product then takes the slower
// at::matmul path.
template <typename T>
Gemm<T> FindGemm(const char* name) {
  const auto gemm = reinterpret_cast<Gemm<T>>(dlsym(RTLD_DEFAULT, name));
  LOG_IF(WARNING, gemm == nullptr) << "BatchedMatmul: no BLAS " << name
                                   << " in the process; products go to at::matmul";
  return gemm;
}

template <>
Gemm<float> BlasGemm<float>() {
  static const Gemm<float> gemm = FindGemm<float>("sgemm_");
  return gemm;
}

template <>
Gemm<double> BlasGemm<double>() {
  static const Gemm<double> gemm = FindGemm<double>("dgemm_");
  return gemm;
}

// A matrix [rows, cols] of a tensor's last two dimensions as a column-major BLAS operand. BLAS
// reads a matrix with contiguous rows as its transpose ('N' hands that transpose on unchanged)
// and one with contiguous columns (a transposed view) as itself ('T').
struct Operand {
  char trans = 'N';
  int ld = 1;
};

std::optional<Operand> AsOperand(const at::Tensor& t) {
  const int64_t rows = t.size(-2);
  const int64_t cols = t.size(-1);
  const int64_t row_stride = t.stride(-2);
  const int64_t col_stride = t.stride(-1);
  if (col_stride == 1 || cols == 1) {
    const int64_t ld = rows == 1 ? std::max<int64_t>(cols, 1) : row_stride;
    if (ld >= std::max<int64_t>(cols, 1) && ld <= INT_MAX) {
      return Operand{'N', static_cast<int>(ld)};
    }
  }
  if (row_stride == 1 || rows == 1) {
    const int64_t ld = cols == 1 ? std::max<int64_t>(rows, 1) : col_stride;
    if (ld >= std::max<int64_t>(rows, 1) && ld <= INT_MAX) {
      return Operand{'T', static_cast<int>(ld)};
    }
  }
  return std::nullopt;
}

// The element offset of every matrix of `t` [..., rows, cols], batch indices in row-major order.
std::vector<int64_t> MatrixOffsets(const at::Tensor& t) {
  std::vector<int64_t> offsets = {0};
  for (int64_t d = 0; d + 2 < t.dim(); ++d) {
    std::vector<int64_t> next;
    next.reserve(offsets.size() * t.size(d));
    for (const int64_t base : offsets) {
      for (int64_t i = 0; i < t.size(d); ++i) next.push_back(base + i * t.stride(d));
    }
    offsets = std::move(next);
  }
  return offsets;
}

// Multiply-adds a thread takes at least per task: below that, splitting the batch costs more
// than it gains.
constexpr int64_t kWorkPerTask = 1 << 15;

// out[i] = a[i] b[i] for every matrix i, out contiguous. In column-major terms out[i]^T =
// b[i]^T a[i]^T, so b is BLAS's first operand.
template <typename T>
void RunGemms(const at::Tensor& a, const Operand& a_op, const at::Tensor& b, const Operand& b_op,
              at::Tensor& out) {
  const int m = static_cast<int>(b.size(-1));
  const int n = static_cast<int>(a.size(-2));
  const int k = static_cast<int>(a.size(-1));
  const int ldc = std::max(m, 1);
  const std::vector<int64_t> a_offsets = MatrixOffsets(a);
  const std::vector<int64_t> b_offsets = MatrixOffsets(b);
  const T* a_data = a.data_ptr<T>();
  const T* b_data = b.data_ptr<T>();
  T* out_data = out.data_ptr<T>();
  const int64_t matrix_size = static_cast<int64_t>(m) * n;
  const T one = 1;
  const T zero = 0;
  const Gemm<T> gemm = BlasGemm<T>();
  const int64_t matrices = static_cast<int64_t>(a_offsets.size());
  const int64_t grain = std::max<int64_t>(1, kWorkPerTask / std::max<int64_t>(1, matrix_size * k));
  at::parallel_for(0, matrices, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      gemm(&b_op.trans, &a_op.trans, &m, &n, &k, &one, b_data + b_offsets[i], &b_op.ld,
           a_data + a_offsets[i], &a_op.ld, &zero, out_data + i * matrix_size, &ldc);
    }
  });
}

bool FitsInt(const at::Tensor& t) {
  return t.size(-2) <= INT_MAX && t.size(-1) <= INT_MAX;
}

// How BLAS reads a and b, or nullopt where the product goes to at::matmul.
std::optional<std::pair<Operand, Operand>> BlasOperands(const at::Tensor& a, const at::Tensor& b) {
  const at::ScalarType type = a.scalar_type();
  const int64_t batch_dims = a.dim() - 2;
  const bool blas_shapes =
      a.dim() >= 3 && a.dim() == b.dim() &&
      a.sizes().slice(0, batch_dims).equals(b.sizes().slice(0, batch_dims)) &&
      a.size(-1) == b.size(-2) && a.numel() > 0 && b.numel() > 0 && FitsInt(a) && FitsInt(b);
  const bool blas_types = a.device().is_cpu() && b.device().is_cpu() &&
                          a.layout() == at::kStrided && b.layout() == at::kStrided &&
                          b.scalar_type() == type &&
                          ((type == at::kFloat && BlasGemm<float>() != nullptr) ||
                           (type == at::kDouble && BlasGemm<double>() != nullptr));
  if (!blas_shapes || !blas_types) return std::nullopt;
  const std::optional<Operand> a_op = AsOperand(a);
  const std::optional<Operand> b_op = AsOperand(b);
  if (!a_op || !b_op) return std::nullopt;
  return std::make_pair(*a_op, *b_op);
}

// The product without autograd.
at::Tensor Product(const at::Tensor& a, const at::Tensor& b) {
  const auto operands = BlasOperands(a, b);
  if (!operands) return at::matmul(a, b);
  std::vector<int64_t> shape(a.sizes().begin(), a.sizes().end());
  shape.back() = b.size(-1);
  at::Tensor out = at::empty(shape, a.options());
  if (a.scalar_type() == at::kFloat) {
    RunGemms<float>(a, operands->first, b, operands->second, out);
  } else {
    RunGemms<double>(a, operands->first, b, operands->second, out);
  }
  return out;
}

class BatchedMatmulFunction : public torch::autograd::Function<BatchedMatmulFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& a,
                            const at::Tensor& b) {
    ctx->save_for_backward({a, b});
    return Product(a, b);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& grad = grads[0];
    torch::autograd::variable_list input_grads(2);
    // Through BatchedMatmul, so that a graph of the backward (create_graph) is differentiable too.
    if (ctx->needs_input_grad(0)) input_grads[0] = BatchedMatmul(grad, saved[1].transpose(-2, -1));
    if (ctx->needs_input_grad(1)) input_grads[1] = BatchedMatmul(saved[0].transpose(-2, -1), grad);
    return input_grads;
  }
};

}  // namespace

bool TakesBlasPath(const at::Tensor& a, const at::Tensor& b) {
  return BlasOperands(a, b).has_value();
}

at::Tensor BatchedMatmul(const at::Tensor& a, const at::Tensor& b) {
  if (at::GradMode::is_enabled() && (a.requires_grad() || b.requires_grad())) {
    return BatchedMatmulFunction::apply(a, b);
  }
  return Product(a, b);
}

}  // namespace taskmoe
