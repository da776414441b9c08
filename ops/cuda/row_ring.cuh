#pragma once
// A block's ring of row slots kept loading by bulk copies (sm_90), for kernels that stream rows
// (ops/cuda/norm_bulk.cu). Device-only but for the constants and runs_on.
//
// One block an SM: one thread of a producer warp fills slot i % kS with the operands of the block's
// local row i (cp.async.bulk, the TMA without a tensor map, completing on the slot's `full`
// mbarrier), and kConsumers consumer warps take the rows in turn (local row i to warp
// i % kConsumers); kS is a multiple of kConsumers, so a slot always serves the same warp, which
// releases it (its `empty` mbarrier) once its lanes hold the row in registers. Up to the whole ring
// is in flight, at one instruction an operand a row.
//
// Block b of G takes rows b, b + G, b + 2 G, ... (local row i is row b + i G): the rows the L2
// still holds from earlier work (those last touched, at the end) are shared evenly. (With a
// contiguous run each, on an H100 in a loop over 16384 x 1024 bf16, the blocks of the last rows
// finished at 6 us and the others at 36.)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

#include "core/cuda/runtime.h"
#include "ops/cuda/device_utils.cuh"
#include "ops/cuda/mbarrier_ptx.cuh"
#include "ops/cuda/mma_ptx.cuh"
#include "ops/cuda/tma_ptx.cuh"

namespace pit::cuda::row_ring {

inline constexpr int kConsumers = 8;                      // consumer warps
inline constexpr int kThreads = (kConsumers + 1) * kWarp;  // and one producer warp
inline constexpr size_t kRingBytes = 192 * 1024;
inline constexpr int kMaxSlots = 256;
inline constexpr int kBarrierId = 1;  // the consumer warps' named barrier

// Slots of a ring whose slot holds `slot_bytes`: as many as fit, a multiple of kConsumers.
constexpr int slots(size_t slot_bytes) {
  return static_cast<int>(std::min<size_t>(kRingBytes / slot_bytes, kMaxSlots) / kConsumers * kConsumers);
}

// This block's rows: row(i) for i < n.
struct Rows {
  int64_t b, g, n;
  __device__ int64_t row(int64_t i) const { return b + i * g; }
};
__device__ __forceinline__ Rows block_rows(int64_t rows) {
  const int64_t b = blockIdx.x, g = gridDim.x;
  return {b, g, (rows - b + g - 1) / g};
}

// The ring's barriers: full[kS], then empty[kS]. Templates, so that only sm_90 kernel bodies
// instantiate them.
template <int kS>
struct Ring {
  uint64_t* full;
  uint64_t* empty;

  // Thread 0, then a __syncthreads before any use.
  __device__ void init() const {
    for (int s = 0; s < kS; ++s) {
      mbar::init(full + s, 1);   // the producer's arrival (and the copies' bytes)
      mbar::init(empty + s, 1);  // the consumer warp's release
    }
    mbar::fence_init();
  }

  // The producer thread: for each local row i < n, waits for slot i % kS to be released (fill k
  // of a slot waits for the release of fill k - 1), expects `bytes` on it and calls
  // issue(i, s, bar) to issue the row's bulk copies onto the barrier at shared address bar.
  template <typename Issue>
  __device__ void produce(int64_t n, uint32_t bytes, Issue&& issue) const {
    for (int64_t i = 0; i < n; ++i) {
      const int s = static_cast<int>(i % kS);
      const uint32_t k = static_cast<uint32_t>(i / kS);
      mbar::wait(empty + s, (k & 1) ^ 1);
      mbar::arrive_expect_tx(full + s, bytes);
      issue(i, s, ptx::smem_u32(full + s));
    }
  }

  // A consumer warp: waits until local row i has landed; returns its slot.
  __device__ int acquire(int64_t i) const {
    const int s = static_cast<int>(i % kS);
    mbar::wait(full + s, static_cast<uint32_t>(i / kS) & 1);
    return s;
  }

  // A consumer warp, every lane done reading slot s.
  __device__ void release(int s) const {
    __syncwarp();
    if (threadIdx.x % kWarp == 0) mbar::arrive(empty + s);
  }
};

// Whether `kernel` (one of this build's bulk-copy kernels) runs on `device`: compiled for sm_90 or
// later, and the device is one (an instance built for an older architecture is empty). Once per
// kernel and device; `device` must be current (cudaFuncGetAttributes asks the current one).
inline bool runs_on(const void* kernel, int device) {
  static std::mutex mu;
  static std::map<std::pair<const void*, int>, bool> known;
  const std::lock_guard<std::mutex> lock(mu);
  const std::pair<const void*, int> key{kernel, device};
  if (const auto it = known.find(key); it != known.end()) return it->second;
  int major = 0;
  PIT_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  cudaFuncAttributes attr{};
  PIT_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));
  return known[key] = major >= 9 && attr.binaryVersion >= 90;
}

}  // namespace pit::cuda::row_ring
