#include "moe/base/tensor_memory.h"

#include <thread>
#include <vector>

#include <ATen/ATen.h>
#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>

namespace taskmoe {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

// Float tensors of `bytes` bytes.
at::Tensor Floats(int64_t bytes) { return at::empty({bytes / 4}); }

// Each test starts with an empty cache whose bound is what is in use now (nothing).
class TensorMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    InstallTensorMemoryCache();
    SetTensorMemoryCaching(false);
    SetTensorMemoryCaching(true);
    ASSERT_EQ(GetTensorMemoryStats().in_use_bytes, 0);
    ASSERT_EQ(GetTensorMemoryStats().cached_bytes, 0);
  }
  void TearDown() override { SetTensorMemoryCaching(false); }
};

TEST_F(TensorMemoryTest, ReusesAFreedBlockForARequestOfItsSizeClass) {
  at::Tensor first = Floats(4 * kMiB);
  const void* address = first.data_ptr();
  EXPECT_EQ(GetTensorMemoryStats().in_use_bytes, 4 * kMiB);
  first.reset();
  EXPECT_EQ(GetTensorMemoryStats().in_use_bytes, 0);
  EXPECT_EQ(GetTensorMemoryStats().cached_bytes, 4 * kMiB);

  // 4 MiB - 100 KiB rounds up to the 4 MiB class (steps of 256 KiB between 2 and 4 MiB).
  const int64_t reused_before = GetTensorMemoryStats().reused;
  const at::Tensor second = Floats(4 * kMiB - 100 * 1024);
  EXPECT_EQ(second.data_ptr(), address);
  EXPECT_EQ(GetTensorMemoryStats().reused, reused_before + 1);
  EXPECT_EQ(GetTensorMemoryStats().cached_bytes, 0);

  // The next class up (4.5 MiB) is a new block.
  const at::Tensor third = Floats(4 * kMiB + 4);
  EXPECT_NE(third.data_ptr(), address);
  EXPECT_EQ(GetTensorMemoryStats().in_use_bytes, 4 * kMiB + 4 * kMiB + kMiB / 2);
}

TEST_F(TensorMemoryTest, LeavesSmallTensorsToMalloc) {
  const int64_t requests = GetTensorMemoryStats().requests;
  { const at::Tensor small = Floats(kMiB - 4); }
  EXPECT_EQ(GetTensorMemoryStats().requests, requests);
  EXPECT_EQ(GetTensorMemoryStats().cached_bytes, 0);
  { const at::Tensor large = Floats(kMiB); }
  EXPECT_EQ(GetTensorMemoryStats().requests, requests + 1);
  EXPECT_EQ(GetTensorMemoryStats().cached_bytes, kMiB);
}

TEST_F(TensorMemoryTest, HoldsNoMoreThanTheMostInUseAtOnce) {
  { const at::Tensor a = Floats(4 * kMiB); }  // in use at most 4 MiB so far; cached: 4 MiB
  { const at::Tensor b = Floats(8 * kMiB); }  // at most 8 MiB; caching b too would hold 12 MiB
  EXPECT_EQ(GetTensorMemoryStats().cached_bytes, 4 * kMiB);
  {
    const at::Tensor a = Floats(4 * kMiB);  // reused
    const at::Tensor b = Floats(8 * kMiB);  // now 12 MiB in use at once
  }
  EXPECT_EQ(GetTensorMemoryStats().cached_bytes, 12 * kMiB);
  EXPECT_EQ(GetTensorMemoryStats().peak_in_use_bytes, 12 * kMiB);
}

TEST_F(TensorMemoryTest, OffFreesTheCacheAndStopsCaching) {
  { const at::Tensor a = Floats(2 * kMiB); }
  EXPECT_EQ(GetTensorMemoryStats().cached_bytes, 2 * kMiB);
  const at::Tensor kept = Floats(3 * kMiB);
  SetTensorMemoryCaching(false);
  EXPECT_EQ(GetTensorMemoryStats().cached_bytes, 0);
  EXPECT_EQ(TensorMemoryNote(), "tensor memory: malloc");
  { const at::Tensor b = Floats(2 * kMiB); }
  EXPECT_EQ(GetTensorMemoryStats().cached_bytes, 0);
  // A block handed out while caching was on stays usable and is freed when released.
  kept.fill_(1.0f);
  EXPECT_EQ(kept.sum().item<float>(), 3.0f * kMiB / 4);
  SetTensorMemoryCaching(true);
  EXPECT_EQ(TensorMemoryNote(), "tensor memory: freed blocks of 1 MiB and more cached for reuse");
}

TEST_F(TensorMemoryTest, ReusedBlocksHoldWhatTheOperationWrites) {
  { at::Tensor dirty = Floats(4 * kMiB).fill_(7.0f); }
  const int64_t reused = GetTensorMemoryStats().reused;
  const at::Tensor zeros = at::zeros({kMiB});  // 4 MiB, the dirty block again
  EXPECT_EQ(GetTensorMemoryStats().reused, reused + 1);
  EXPECT_EQ(zeros.abs().max().item<float>(), 0.0f);

  at::manual_seed(3);
  const at::Tensor a = at::randn({700, 600});
  const at::Tensor b = at::randn({600, 800});
  const at::Tensor cached = at::mm(a, b);
  SetTensorMemoryCaching(false);
  EXPECT_TRUE(at::equal(at::mm(a, b), cached));
}

// LibTorch's kernels take scratch memory as bare addresses (e.g. GELU's), given back by address.
TEST_F(TensorMemoryTest, TakesBackRawBlocksByAddress) {
  c10::Allocator* allocator = c10::GetCPUAllocator();
  void* large = allocator->raw_allocate(2 * kMiB);
  void* small = allocator->raw_allocate(1000);
  EXPECT_EQ(GetTensorMemoryStats().in_use_bytes, 2 * kMiB);
  allocator->raw_deallocate(small);
  allocator->raw_deallocate(large);
  EXPECT_EQ(GetTensorMemoryStats().in_use_bytes, 0);
  EXPECT_EQ(GetTensorMemoryStats().cached_bytes, 2 * kMiB);
  EXPECT_EQ(allocator->raw_allocate(2 * kMiB - 4), large);
  allocator->raw_deallocate(large);
}

// Blocks freed by one thread serve the others, however the threads interleave: with one block
// per thread cached first, each thread holds at most one block at a time, so every request finds
// a block in the cache (a fixed count, where a count that depends on scheduling would be flaky).
TEST_F(TensorMemoryTest, ThreadsShareTheCache) {
  constexpr int kThreads = 4;
  constexpr int kRequests = 200;
  {
    std::vector<at::Tensor> warm;
    for (int t = 0; t < kThreads; ++t) warm.push_back(Floats(2 * kMiB));
  }
  const TensorMemoryStats before = GetTensorMemoryStats();
  ASSERT_EQ(before.cached_bytes, kThreads * 2 * kMiB);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < kRequests; ++i) {
        const at::Tensor x = Floats(2 * kMiB).fill_(1.0f);
        ASSERT_EQ(x.sum().item<float>(), static_cast<float>(x.numel()));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const TensorMemoryStats stats = GetTensorMemoryStats();
  EXPECT_EQ(stats.requests - before.requests, kThreads * kRequests);
  EXPECT_EQ(stats.reused - before.reused, kThreads * kRequests);
  EXPECT_EQ(stats.in_use_bytes, 0);
  EXPECT_EQ(stats.cached_bytes, kThreads * 2 * kMiB);
}

}  // namespace
}  // namespace taskmoe
