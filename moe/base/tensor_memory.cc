#include "moe/base/tensor_memory.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace taskmoe {
namespace {

// The size class of a large request: rounded up to a multiple of an eighth of the largest power
// of two not above it.
std::size_t SizeClass(std::size_t bytes) {
  const std::size_t power = std::size_t{1} << (63 - __builtin_clzll(bytes));
  const std::size_t step = power / 8;
  return (bytes + step - 1) / step * step;
}

void FreeAll(const std::vector<void*>& blocks) {
  for (void* block : blocks) c10::free_cpu(block);
}

// Blocks are named by their address (LibTorch's raw_allocate hands out the bare address and gives
// only that back), so the cache keeps the size class of each block it handed out.
class BlockCache {
 public:
  void* Take(std::size_t size) {
    void* block = TakeCached(size);
    if (block == nullptr) block = c10::alloc_cpu(size);  // throws when out of memory
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.requests;
    stats_.in_use_bytes += static_cast<int64_t>(size);
    stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
    in_use_[block] = size;
    return block;
  }

  // Takes back a block of Take, or frees a small one of the allocator's.
  void Give(void* block) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto it = in_use_.find(block);
      if (it != in_use_.end()) {
        const std::size_t size = it->second;
        in_use_.erase(it);
        stats_.in_use_bytes -= static_cast<int64_t>(size);
        if (caching_ &&
            stats_.cached_bytes + static_cast<int64_t>(size) <= stats_.peak_in_use_bytes) {
          free_[size].push_back(block);
          stats_.cached_bytes += static_cast<int64_t>(size);
          return;
        }
      }
    }
    c10::free_cpu(block);
  }

  void SetCaching(bool on) {
    std::vector<void*> released;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (on && !caching_) stats_.peak_in_use_bytes = stats_.in_use_bytes;  // a new bound
      caching_ = on;
      if (on) return;
      for (auto& [size, blocks] : free_) {
        released.insert(released.end(), blocks.begin(), blocks.end());
      }
      free_.clear();
      stats_.cached_bytes = 0;
    }
    FreeAll(released);
  }

  TensorMemoryStats Stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  bool caching() {
    std::lock_guard<std::mutex> lock(mutex_);
    return caching_;
  }

 private:
  void* TakeCached(std::size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = free_.find(size);
    if (it == free_.end() || it->second.empty()) return nullptr;
    void* block = it->second.back();
    it->second.pop_back();
    stats_.cached_bytes -= static_cast<int64_t>(size);
    ++stats_.reused;
    return block;
  }

  std::mutex mutex_;
  bool caching_ = true;
  std::unordered_map<void*, std::size_t> in_use_;               // size class by address
  std::unordered_map<std::size_t, std::vector<void*>> free_;  // by size class
  TensorMemoryStats stats_;
};

// Storages keep a pointer to their allocator and the deleter below may run during static
// destruction, so the cache is never destroyed.
BlockCache& Cache() {
  static auto* cache = new BlockCache;
  return *cache;
}

void GiveBack(void* block) { Cache().Give(block); }

class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(std::size_t bytes) const override {
    const c10::Device cpu(c10::DeviceType::CPU);
    if (bytes < kMinCachedBytes) {
      void* block = c10::alloc_cpu(bytes);
      return {block, block, &c10::free_cpu, cpu};
    }
    void* block = Cache().Take(SizeClass(bytes));
    return {block, block, &GiveBack, cpu};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &GiveBack; }
};

bool Installed() {
  return dynamic_cast<CachingCpuAllocator*>(c10::GetCPUAllocator()) != nullptr;
}

}  // namespace

void InstallTensorMemoryCache() {
  // LibTorch registers its default CPU allocator at priority 0; SetCPUAllocator takes ownership.
  static const bool installed = [] {
    c10::SetCPUAllocator(new CachingCpuAllocator, /*priority=*/1);
    return true;
  }();
  (void)installed;
  SetTensorMemoryCaching(true);
}

void SetTensorMemoryCaching(bool on) { Cache().SetCaching(on); }

TensorMemoryStats GetTensorMemoryStats() { return Cache().Stats(); }

std::string TensorMemoryNote() {
  return Installed() && Cache().caching()
             ? "tensor memory: freed blocks of 1 MiB and more cached for reuse"
             : "tensor memory: malloc";
}

}  // namespace taskmoe
