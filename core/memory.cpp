#include "core/memory.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>

#include "core/cuda/backend.h"
#include "core/error.h"

namespace pit {
namespace {

struct CpuCounters {
  std::atomic<size_t> allocated{0}, peak{0};
  std::atomic<uint64_t> allocations{0};
};

CpuCounters& cpu_counters() {
  static CpuCounters counters;
  return counters;
}

void* cpu_allocate(size_t nbytes) {
  // aligned_alloc wants a multiple of the alignment.
  const size_t rounded = (nbytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
  void* p = std::aligned_alloc(kCpuAlignment, rounded);
  PIT_CHECK(p != nullptr, "out of CPU memory allocating ", nbytes, " bytes");
  CpuCounters& c = cpu_counters();
  const size_t now = c.allocated.fetch_add(nbytes) + nbytes;
  size_t peak = c.peak.load();
  while (now > peak && !c.peak.compare_exchange_weak(peak, now)) {
  }
  c.allocations.fetch_add(1);
  return p;
}

}  // namespace

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device, StreamRef stream) {
  check_device(device);
  void* data = nullptr;
  if (nbytes > 0) {
    if (device.is_cpu()) {
      data = cpu_allocate(nbytes);
    } else {
      PIT_CHECK(stream.device == device, "allocating on ", device, " with a stream of ",
                stream.device);
      data = cuda::allocate(nbytes, device.index, stream.handle);
    }
  }
  return std::shared_ptr<Storage>(new Storage(data, nbytes, device));
}

Storage::~Storage() {
  if (!data_) return;
  if (device_.is_cpu()) {
    std::free(data_);
    cpu_counters().allocated.fetch_sub(nbytes_);
  } else {
    cuda::deallocate(data_);
  }
}

MemoryStats memory_stats(Device device) {
  if (device.is_cuda()) {
    check_device(device);
    return cuda::memory_stats(device.index);
  }
  const CpuCounters& c = cpu_counters();
  MemoryStats s;
  s.allocated = c.allocated.load();
  s.peak_allocated = c.peak.load();
  s.reserved = s.allocated;
  s.allocations = c.allocations.load();
  s.device_mallocs = s.allocations;
  return s;
}

void reset_peak_memory(Device device) {
  if (device.is_cuda()) {
    check_device(device);
    cuda::reset_peak_memory(device.index);
    return;
  }
  cpu_counters().peak.store(cpu_counters().allocated.load());
}

void empty_cache() {
  if (cuda_device_count() > 0) cuda::empty_cache();
}

}  // namespace pit
