#ifndef TASKMOE_MOE_BASE_TENSOR_MEMORY_H_
#define TASKMOE_MOE_BASE_TENSOR_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace taskmoe {

// LibTorch's CPU tensors take their memory from malloc, which returns large freed blocks to the
// kernel; taking them again costs a page fault per page and the kernel's zeroing of the page.
// A training or decoding step allocates the same large tensors as the step before, so the tensor
// memory cache keeps freed blocks of at least kMinCachedBytes for the next request of their
// size class instead (classes: eight per doubling, so a block is at most 1/8 larger than asked).
// The cache holds no more than the most large-block memory in use at once so far, so a process
// never keeps more than twice its working set; beyond that, freed blocks go back to malloc.
inline constexpr std::size_t kMinCachedBytes = std::size_t{1} << 20;

struct TensorMemoryStats {
  int64_t requests = 0;      // allocations of at least kMinCachedBytes
  int64_t reused = 0;        // of those, served from a cached block
  int64_t in_use_bytes = 0;  // large blocks handed out now (class sizes)
  int64_t cached_bytes = 0;  // freed large blocks held for reuse now
  // The most in use at once since caching was last turned on: the bound of cached_bytes.
  int64_t peak_in_use_bytes = 0;
};

// Makes the tensor memory cache LibTorch's CPU allocator, caching on. Idempotent; tensors
// allocated before keep the allocator they were made with.
void InstallTensorMemoryCache();

// Turns caching on or off. Off: the cached blocks are freed at once, and later large blocks go
// back to malloc when freed. Blocks in use stay valid either way. Turning it on again starts the
// bound afresh from the memory in use then.
void SetTensorMemoryCaching(bool on);

TensorMemoryStats GetTensorMemoryStats();

// One line for the log: "tensor memory: freed blocks of 1 MiB and more cached for reuse" when
// the cache is installed and on, else "tensor memory: malloc".
std::string TensorMemoryNote();

}  // namespace taskmoe

#endif  // TASKMOE_MOE_BASE_TENSOR_MEMORY_H_
