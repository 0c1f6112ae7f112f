#ifndef TASKMOE_MOE_BASE_CPU_RUNTIME_H_
#define TASKMOE_MOE_BASE_CPU_RUNTIME_H_

#include <string>

namespace taskmoe {

// Process-wide CPU settings for training and benchmarking; call first thing in main, before any
// tensor work or thread. Returns a one-line note for the log: the malloc setting and the BLAS
// kernels in use.
//
// - One glibc malloc arena: the OpenMP threads that run a layer's experts concurrently would
//   otherwise get arenas of their own, whose heaps glibc unmaps when they empty, page-faulting
//   them back in on every step (about 1,500 faults per small training step).
// - The BLAS kernels are left as the machine chose them. A dynamic-architecture OpenBLAS picks
//   its kernels by CPU model, or takes the ones OPENBLAS_CORETYPE names; administrators set that
//   variable on processors where some kernels of older OpenBLAS builds compute wrong results.
//   TaskMoE never changes it: to run other kernels, set OPENBLAS_CORETYPE yourself (at your
//   own risk on such machines). The note names the kernels so that speed figures can say them.
std::string ConfigureCpuRuntime();

// The intra-op thread count a `requested` setting means: itself when > 0; 0 (or less): every core
// (at least 1).
int IntraOpThreads(int requested);

// The BLAS kernels in use, e.g. "OpenBLAS kernels: Haswell (OPENBLAS_CORETYPE=Haswell)".
std::string BlasKernelNote();

}  // namespace taskmoe

#endif  // TASKMOE_MOE_BASE_CPU_RUNTIME_H_
