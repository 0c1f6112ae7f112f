#ifndef TASKMOE_MOE_BASE_CPU_RUNTIME_H_
#define TASKMOE_MOE_BASE_CPU_RUNTIME_H_

#include <string>

#include "absl/status/status.h"

namespace taskmoe {

// Process-wide CPU settings for training and benchmarking; call first thing in main, before any
// tensor work or thread. Returns a one-line note for the log: the malloc setting, the tensor
// memory, the OpenMP wait setting and the BLAS kernels in use.
//
// - One glibc malloc arena: the OpenMP threads that run a layer's experts concurrently would
//   otherwise get arenas of their own, whose heaps glibc unmaps when they empty, page-faulting
//   them back in on every step (about 1,500 faults per small training step).
// - The tensor memory cache (tensor_memory.h): freed large tensor blocks are kept for the next
//   step instead of being page-faulted and zeroed again by the kernel.
// - The BLAS kernels are left as the machine chose them. A dynamic-architecture OpenBLAS picks
//   its kernels by CPU model, or takes the ones OPENBLAS_CORETYPE names; administrators set that
//   variable on processors where some kernels of older OpenBLAS builds compute wrong results.
//   TaskMoE never changes it: to run other kernels, set OPENBLAS_CORETYPE yourself (at your
//   own risk on such machines). The note names the kernels so that speed figures can say them.
// - The OpenMP wait policy is read by the OpenMP runtime before main; the tools set a passive
//   one before that when the environment sets none (tools/tool_main.cc). The note says what is
//   set.
std::string ConfigureCpuRuntime();

// The OpenMP wait setting of the environment, e.g. "OMP_WAIT_POLICY=PASSIVE".
std::string OpenMpWaitNote();

// More intra-op threads than this is a typing error, not a machine (each thread has a stack).
inline constexpr int kMaxThreads = 1024;

// An error naming `setting` (e.g. "--threads") unless 0 <= requested <= kMaxThreads.
absl::Status CheckThreadCount(int requested, const std::string& setting);

// The intra-op thread count a `requested` setting means: itself when > 0; 0 (or less): every core
// (at least 1).
int IntraOpThreads(int requested);

// The BLAS kernels in use, e.g. "OpenBLAS kernels: Haswell (OPENBLAS_CORETYPE=Haswell)".
std::string BlasKernelNote();

}  // namespace taskmoe

#endif  // TASKMOE_MOE_BASE_CPU_RUNTIME_H_
