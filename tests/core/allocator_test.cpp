// core/memory.h on the CPU: 64-byte alignment and the allocation statistics.
// (The caching CUDA allocator is tested in cuda_test.cpp.)
#include <gtest/gtest.h>

#include <cstdint>

#include "core/core.h"

using namespace pit;

namespace {

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kCpuAlignment == 0; }

}  // namespace

TEST(CpuAllocator, AllocationsAre64ByteAligned) {
  EXPECT_EQ(kCpuAlignment, 64u);
  for (int64_t n : {1, 3, 63, 64, 65, 1000, 4097, 1 << 20}) {
    const Tensor bytes = Tensor::empty({n}, DType::u8);
    EXPECT_TRUE(aligned(bytes.data_ptr())) << n << " bytes at " << bytes.data_ptr();
    const Tensor doubles = Tensor::empty({n}, DType::f64);
    EXPECT_TRUE(aligned(doubles.data_ptr())) << n << " doubles at " << doubles.data_ptr();
  }
  const auto storage = Storage::allocate(100, Device::cpu(), current_stream(Device::cpu()));
  EXPECT_TRUE(aligned(storage->data()));
  EXPECT_EQ(storage->nbytes(), 100u);
  EXPECT_EQ(storage->device(), Device::cpu());
}

TEST(CpuAllocator, AllocatedFollowsTensorLifetimes) {
  const MemoryStats s0 = memory_stats(Device::cpu());
  {
    const Tensor a = Tensor::empty({1000}, DType::f32);
    const MemoryStats s1 = memory_stats(Device::cpu());
    EXPECT_EQ(s1.allocated, s0.allocated + 4000);
    EXPECT_EQ(s1.allocations, s0.allocations + 1);
    {
      const Tensor b = Tensor::empty({10}, DType::i64);
      EXPECT_EQ(memory_stats(Device::cpu()).allocated, s0.allocated + 4080);
    }
    EXPECT_EQ(memory_stats(Device::cpu()).allocated, s0.allocated + 4000) << "b was freed";
    // Views share the storage: no allocation, and the storage lives while a view does.
    Tensor view = a.view({10, 100}).t().slice(0, 0, 50);
    EXPECT_EQ(memory_stats(Device::cpu()).allocations, s0.allocations + 2);
    EXPECT_EQ(memory_stats(Device::cpu()).allocated, s0.allocated + 4000);
  }
  EXPECT_EQ(memory_stats(Device::cpu()).allocated, s0.allocated) << "all freed";
}

TEST(CpuAllocator, StorageOutlivesTheTensorThroughViews) {
  const MemoryStats s0 = memory_stats(Device::cpu());
  Tensor view;
  {
    const Tensor a = zeros({256});
    view = a.slice(0, 10, 20);
  }
  EXPECT_EQ(memory_stats(Device::cpu()).allocated, s0.allocated + 1024) << "held by the view";
  view = Tensor();
  EXPECT_EQ(memory_stats(Device::cpu()).allocated, s0.allocated);
}

TEST(CpuAllocator, ZeroSizeTensorsAllocateNothing) {
  const MemoryStats s0 = memory_stats(Device::cpu());
  const Tensor z = zeros({0, 5});
  const MemoryStats s1 = memory_stats(Device::cpu());
  EXPECT_EQ(s1.allocated, s0.allocated);
  EXPECT_EQ(s1.allocations, s0.allocations);
}

TEST(CpuAllocator, PeakAndReset) {
  reset_peak_memory(Device::cpu());
  const MemoryStats s0 = memory_stats(Device::cpu());
  EXPECT_EQ(s0.peak_allocated, s0.allocated) << "reset sets the peak to what is allocated now";
  {
    const Tensor big = Tensor::empty({1 << 18}, DType::f32);  // 1 MiB
    const Tensor small = Tensor::empty({16}, DType::u8);
    EXPECT_EQ(memory_stats(Device::cpu()).peak_allocated, s0.allocated + (1 << 20) + 16);
  }
  const MemoryStats s1 = memory_stats(Device::cpu());
  EXPECT_EQ(s1.allocated, s0.allocated);
  EXPECT_EQ(s1.peak_allocated, s0.allocated + (1 << 20) + 16) << "the peak survives the frees";
  {
    const Tensor smaller = Tensor::empty({100}, DType::u8);
    EXPECT_EQ(memory_stats(Device::cpu()).peak_allocated, s1.peak_allocated)
        << "a smaller allocation leaves the peak alone";
  }
  reset_peak_memory(Device::cpu());
  EXPECT_EQ(memory_stats(Device::cpu()).peak_allocated, s0.allocated);
}

TEST(CpuAllocator, CpuStatsHaveNoCache) {
  const Tensor a = zeros({100});
  const MemoryStats s = memory_stats(Device::cpu());
  EXPECT_EQ(s.cached, 0u);
  EXPECT_EQ(s.reserved, s.allocated);
  EXPECT_GE(s.allocated, 400u);
  EXPECT_EQ(s.device_mallocs, s.allocations) << "every CPU allocation is a real one";
  EXPECT_NO_THROW(empty_cache());
}
