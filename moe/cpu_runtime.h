#ifndef TASKMOE_MOE_CPU_RUNTIME_H_
#define TASKMOE_MOE_CPU_RUNTIME_H_

#include <string>

namespace taskmoe {

// Process-wide CPU settings for training and benchmarking; call first thing in main, before any
// tensor work or thread. Returns a one-line note of what it chose, for the log.
//
// - One glibc malloc arena: the OpenMP threads that run a layer's experts concurrently would
//   otherwise get arenas of their own, whose heaps glibc unmaps when they empty, page-faulting
//   them back in on every step (about 1,500 faults per small training step).
// - The widest OpenBLAS GEMM kernels the CPU runs. A dynamic-architecture OpenBLAS picks its
//   kernels by CPU model, and older releases (Debian 12's 0.3.21) do not know recent AVX-512
//   CPUs such as AMD Zen 4/5, which then get AVX2 (Haswell) kernels, or whatever
//   OPENBLAS_CORETYPE names. On a CPU with AVX-512 F/DQ/BW/VL this switches to the SkylakeX
//   kernels (about 1.8x the fp32 GEMM throughput on Zen 5). TASKMOE_BLAS_CORETYPE overrides
//   the choice: "keep" leaves OpenBLAS's own, any other value is passed as OPENBLAS_CORETYPE.
//   Without a dynamic-architecture OpenBLAS (e.g. a LibTorch with MKL) nothing changes.
std::string ConfigureCpuRuntime();

}  // namespace taskmoe

#endif  // TASKMOE_MOE_CPU_RUNTIME_H_
