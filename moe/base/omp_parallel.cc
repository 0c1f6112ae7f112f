#include "moe/base/omp_parallel.h"

#include <atomic>
#include <exception>
#include <mutex>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
// GCC applies the attribute to the region's outlined function too.
#define TASKMOE_NOT_TSAN_INSTRUMENTED __attribute__((no_sanitize("thread")))
#else
#define TASKMOE_NOT_TSAN_INSTRUMENTED
#endif

namespace taskmoe {
namespace {

// The happens-before edges of a region's fork (the starting thread's Fork() before every worker's
// Enter()) and join (every worker's Leave() before the starting thread's Join()).
class ForkJoin {
 public:
  void Fork() { Release(&fork_); }
  void Enter() { Acquire(&fork_); }
  void Leave() { Release(&join_); }
  void Join() { Acquire(&join_); }

 private:
#if defined(__SANITIZE_THREAD__)
  static void Release(char* address) { __tsan_release(address); }
  static void Acquire(char* address) { __tsan_acquire(address); }
#else
  static void Release(char*) {}
  static void Acquire(char*) {}
#endif
  char fork_ = 0;
  char join_ = 0;
};

}  // namespace

TASKMOE_NOT_TSAN_INSTRUMENTED
void ParallelForEach(int64_t count, const std::function<void(int64_t)>& fn) {
  ForkJoin fork_join;
  fork_join.Fork();
#pragma omp parallel
  {
    fork_join.Enter();
#pragma omp for schedule(dynamic)
    for (int64_t i = 0; i < count; ++i) fn(i);
    fork_join.Leave();
  }
  fork_join.Join();
}

// Using the OpenMP team itself (not threads of our own) matters on a few cores: an idle OpenMP
// team spins for a while after each parallel region and would take CPU from other threads.
TASKMOE_NOT_TSAN_INSTRUMENTED
void RunOnWorkers(int64_t jobs, int64_t workers, const std::function<void(int64_t)>& fn) {
  std::atomic<int64_t> next_job{0};
  std::mutex error_mutex;
  std::exception_ptr error;
  ForkJoin fork_join;
  fork_join.Fork();
#pragma omp parallel num_threads(workers)
  {
    fork_join.Enter();
    for (int64_t job = next_job++; job < jobs; job = next_job++) {
      try {
        fn(job);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
    fork_join.Leave();
  }
  fork_join.Join();
  if (error) std::rethrow_exception(error);
}

}  // namespace taskmoe
