#ifndef TASKMOE_MOE_BASE_OMP_PARALLEL_H_
#define TASKMOE_MOE_BASE_OMP_PARALLEL_H_

// The OpenMP parallel regions of our code, in a form ThreadSanitizer can check.
//
// libgomp is not instrumented and synchronises its team with futexes and atomics TSan does not
// see, and the compiler passes a region its shared variables through a struct on the starting
// thread's stack, written before the region and read by every worker before any of our code runs.
// So, in a -fsanitize=thread build, the two functions below are not instrumented themselves
// (nor their outlined regions), and tell TSan about the region's fork and join with
// __tsan_release/__tsan_acquire; `fn` is instrumented as usual, so races between the calls of fn
// on different threads are still reported. In other builds they are plain OpenMP.
// (docs/sanitizers.md)

#include <cstdint>
#include <functional>

namespace taskmoe {

// Calls fn(i) for every i in [0, count) on the OpenMP team (omp_get_max_threads() threads, one
// index at a time as threads become free). fn must not throw.
void ParallelForEach(int64_t count, const std::function<void(int64_t)>& fn);

// Calls fn(job) for every job in [0, jobs) on `workers` OpenMP threads, taking jobs in turn.
// The first exception fn throws reaches the caller (after every job has run).
void RunOnWorkers(int64_t jobs, int64_t workers, const std::function<void(int64_t)>& fn);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_BASE_OMP_PARALLEL_H_
