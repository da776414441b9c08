#pragma once
// Allocators: 64-byte aligned CPU memory and a caching CUDA allocator, behind Storage.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/device.h"

namespace pit {

struct MemoryStats {
  size_t allocated = 0;       // bytes held by live storages
  size_t peak_allocated = 0;  // high-water mark of `allocated` since the last reset
  size_t cached = 0;          // bytes in free blocks kept for reuse (CUDA only)
  size_t reserved = 0;        // bytes obtained from the device: allocated blocks + cached
  uint64_t allocations = 0;   // storage allocations served
  uint64_t device_mallocs = 0;  // of those, served by cudaMalloc (the rest reused a cached block)
};

MemoryStats memory_stats(Device device);
void reset_peak_memory(Device device);
// Returns every cached, unused CUDA block to the driver (all devices).
void empty_cache();

// Alignment of every CPU allocation: a cache line, and enough for any vector load.
inline constexpr size_t kCpuAlignment = 64;

// A block of memory on one device. CUDA blocks belong to the stream they were allocated on:
// after the storage dies the block is reused only by work queued on that same stream, so it is
// never handed out while a kernel on that stream may still read it. That holds while a tensor is
// used only on the stream it was made on: there is no record of other streams' uses (PyTorch's
// record_stream), so work queued on another stream must be waited for (an event, or a
// synchronisation) before the tensor dies. Move-only, via shared_ptr.
class Storage {
 public:
  static std::shared_ptr<Storage> allocate(size_t nbytes, Device device, StreamRef stream);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  Storage(void* data, size_t nbytes, Device device) : data_(data), nbytes_(nbytes), device_(device) {}
  void* data_;
  size_t nbytes_;
  Device device_;
};

}  // namespace pit
