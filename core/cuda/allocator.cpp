// The caching CUDA allocator. Blocks are rounded to size classes and, once freed, kept per
// (device, stream) for reuse by later allocations on the same stream: work on one stream runs in
// order, so a block is never handed out while a kernel queued earlier may still use it (a tensor
// used on another stream too must have that work waited for before it dies: core/memory.h).
// cudaMalloc and cudaFree happen only on a cache miss and in empty_cache(), so a training step
// that repeats its allocations makes no driver allocation after the first step.
#include <cuda_runtime.h>

#include <set>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "core/cuda/backend.h"
#include "core/cuda/runtime.h"

namespace pit::cuda {
namespace {

constexpr size_t kSmallLimit = size_t{1} << 20;    // below 1 MiB: 512-byte classes
constexpr size_t kSmallRound = 512;                // cudaMalloc alignment is 256; 512 halves classes
constexpr size_t kLargeRound = size_t{2} << 20;    // 2 MiB: the driver's large page size
constexpr size_t kMiB = size_t{1} << 20;

size_t round_size(size_t n) {
  const size_t r = n < kSmallLimit ? kSmallRound : kLargeRound;
  return (n + r - 1) / r * r;
}

// A cached block may serve a request up to this much smaller than itself: bounded waste.
bool fits(size_t block, size_t want) {
  return block >= want && (want < kSmallLimit ? block <= 2 * want : block <= want + want / 4);
}

struct Block {
  int device;
  void* stream;
  size_t size;
};

class CachingAllocator {
 public:
  void* allocate(size_t nbytes, int device, void* stream) {
    const size_t size = round_size(nbytes);
    std::lock_guard lock(mutex_);
    MemoryStats& st = stats(device);
    ++st.allocations;
    // Best fit among this stream's free blocks.
    auto it = free_.lower_bound({device, stream, size, nullptr});
    if (it != free_.end() && std::get<0>(*it) == device && std::get<1>(*it) == stream &&
        fits(std::get<2>(*it), size)) {
      void* p = std::get<3>(*it);
      const size_t got = std::get<2>(*it);
      free_.erase(it);
      st.cached -= got;
      mark_used(st, got);
      return p;
    }
    void* p = device_malloc(size, device);
    live_[p] = Block{device, stream, size};
    ++st.device_mallocs;
    st.reserved += size;
    mark_used(st, size);
    return p;
  }

  void deallocate(void* p) noexcept {
    std::lock_guard lock(mutex_);
    const auto it = live_.find(p);
    if (it == live_.end()) return;  // not ours: nothing sensible to do in a destructor path
    const Block& b = it->second;
    MemoryStats& st = stats(b.device);
    st.allocated -= b.size;
    st.cached += b.size;
    free_.insert({b.device, b.stream, b.size, p});
  }

  MemoryStats memory_stats(int device) {
    std::lock_guard lock(mutex_);
    return stats(device);
  }

  void reset_peak(int device) {
    std::lock_guard lock(mutex_);
    MemoryStats& st = stats(device);
    st.peak_allocated = st.allocated;
  }

  void empty_cache() {
    std::lock_guard lock(mutex_);
    release_free_blocks(-1);
  }

 private:
  using FreeKey = std::tuple<int, void*, size_t, void*>;  // device, stream, size, pointer

  MemoryStats& stats(int device) { return stats_[device]; }

  static void mark_used(MemoryStats& st, size_t size) {
    st.allocated += size;
    if (st.allocated > st.peak_allocated) st.peak_allocated = st.allocated;
  }

  // Frees cached blocks of one device (all when device < 0). cudaFree waits for the device, so
  // no kernel still uses them. Called with mutex_ held.
  void release_free_blocks(int device) {
    for (auto it = free_.begin(); it != free_.end();) {
      const auto& [dev, stream, size, p] = *it;
      if (device >= 0 && dev != device) {
        ++it;
        continue;
      }
      DeviceGuard guard(dev);
      PIT_CUDA_CHECK(cudaFree(p));
      MemoryStats& st = stats(dev);
      st.cached -= size;
      st.reserved -= size;
      live_.erase(p);
      it = free_.erase(it);
    }
  }

  void* device_malloc(size_t size, int device) {
    DeviceGuard guard(device);
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, size);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // clear it, give the cache back, try once more
      release_free_blocks(device);
      err = cudaMalloc(&p, size);
    }
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      size_t free_bytes = 0, total_bytes = 0;
      (void)cudaMemGetInfo(&free_bytes, &total_bytes);
      const MemoryStats& st = stats(device);
      PIT_THROW("CUDA out of memory on cuda:", device, " allocating ", size / kMiB, " MiB; pit holds ",
                st.allocated / kMiB, " MiB in tensors and ", st.cached / kMiB,
                " MiB cached; the device has ", free_bytes / kMiB, " MiB free of ",
                total_bytes / kMiB, " MiB. Reduce the batch size or model size");
    }
    PIT_CUDA_CHECK(err);
    return p;
  }

  std::mutex mutex_;
  std::set<FreeKey> free_;
  std::unordered_map<void*, Block> live_;  // every block obtained from cudaMalloc, used or free
  std::unordered_map<int, MemoryStats> stats_;
};

CachingAllocator& allocator() {
  // Never destroyed: storages held by static objects may be freed after static destructors ran,
  // and the CUDA context may already be gone at exit.
  static CachingAllocator* a = new CachingAllocator();
  return *a;
}

}  // namespace

void* allocate(size_t nbytes, int device, void* stream) {
  return allocator().allocate(nbytes, device, stream);
}
void deallocate(void* ptr) noexcept { allocator().deallocate(ptr); }
MemoryStats memory_stats(int device) { return allocator().memory_stats(device); }
void reset_peak_memory(int device) { allocator().reset_peak(device); }
void empty_cache() { allocator().empty_cache(); }

}  // namespace pit::cuda
