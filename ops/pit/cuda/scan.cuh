#pragma once
// Device-side scans for detection: a block-wide exclusive scan of per-thread counts, a
// single-pass chained scan across CTAs (decoupled look-back, Merrill & Garland 2016) so that
// detection writes compacted lists in one read of the operand, and a one-CTA scan kernel for
// small arrays (transposed offsets). Nothing here synchronizes with the host.
#include <cuda_runtime.h>

#include <cstdint>

namespace pit::sparse::cuda {

inline constexpr int kScanWarp = 32;

// Exclusive prefix of v over the block (threads in order); *total gets the block's sum.
// Every thread must call it. smem: at least 33 ints.
__device__ __forceinline__ int block_exclusive_scan(int v, int* smem, int* total) {
  const int lane = threadIdx.x % kScanWarp, warp = threadIdx.x / kScanWarp;
  const int warps = (blockDim.x + kScanWarp - 1) / kScanWarp;
  int x = v;
#pragma unroll
  for (int d = 1; d < kScanWarp; d *= 2) {
    const int y = __shfl_up_sync(0xffffffffu, x, d);
    if (lane >= d) x += y;
  }
  if (lane == kScanWarp - 1) smem[warp] = x;
  __syncthreads();
  if (warp == 0) {
    int w = lane < warps ? smem[lane] : 0;
#pragma unroll
    for (int d = 1; d < kScanWarp; d *= 2) {
      const int y = __shfl_up_sync(0xffffffffu, w, d);
      if (lane >= d) w += y;
    }
    if (lane < warps) smem[lane] = w;  // inclusive warp totals
    if (lane == warps - 1) smem[kScanWarp] = w;
  }
  __syncthreads();
  const int before = warp > 0 ? smem[warp - 1] : 0;
  *total = smem[kScanWarp];
  const int result = before + x - v;
  __syncthreads();  // smem may be reused by the caller right after
  return result;
}

// Chained scan state: one 64-bit word per tile, zeroed before the launch, plus a ticket
// counter (word 0) that hands out tile ids in order to running blocks, so that every predecessor
// of a tile is already being worked on (detect_tiles hands out only the tiles after each block's
// first, which is its index). Word layout: flag << 32 | value.
inline constexpr unsigned long long kAggregate = 1ull << 32;  // value = this tile's count
inline constexpr unsigned long long kPrefix = 2ull << 32;     // value = inclusive prefix

__device__ __forceinline__ unsigned long long load_state(const unsigned long long* p) {
  unsigned long long v;
  asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
}

// Thread 0 only: takes a ticket (the tile id), returned through smem by the caller.
__device__ __forceinline__ int take_ticket(unsigned long long* state) {
  return static_cast<int>(atomicAdd(state, 1ull));
}

// Every lane of warp 0: publishes `count` for `tile` and returns (in every lane) the exclusive
// prefix of all earlier tiles, then publishes the inclusive prefix. The warp looks back 32
// predecessors a load: it waits until all of a window are published, then adds the aggregates
// from the nearest inclusive prefix on, or all 32 and moves the window back. (One thread walking
// back one predecessor a round trip made the prefixes resolve a few tiles a microsecond, so that
// detection took about 0.03 ms whatever the sparsity.) state + 1 is the tile array.
__device__ __forceinline__ int chained_prefix(unsigned long long* state, int tile, int count) {
  unsigned long long* tiles = state + 1;
  const int lane = static_cast<int>(threadIdx.x % kScanWarp);
  if (tile == 0) {
    if (lane == 0) {
      __threadfence();
      atomicExch(tiles, kPrefix | static_cast<unsigned>(count));
    }
    return 0;
  }
  if (lane == 0) atomicExch(tiles + tile, kAggregate | static_cast<unsigned>(count));
  int prefix = 0;
  for (int end = tile;;) {  // the window is tiles [end - 32, end); lane 31 the nearest
    const int p = end - kScanWarp + lane;
    const unsigned long long s = p >= 0 ? load_state(tiles + p) : kPrefix;  // before tile 0: a prefix of 0
    const unsigned long long flag = s & (3ull << 32);
    if (__any_sync(0xffffffffu, flag == 0)) continue;  // a predecessor still counting: read again
    const unsigned prefixes = __ballot_sync(0xffffffffu, flag == kPrefix);
    const int from = prefixes != 0 ? 31 - __clz(prefixes) : 0;  // the nearest inclusive prefix
    int v = lane >= from ? static_cast<int>(s & 0xffffffffu) : 0;
#pragma unroll
    for (int off = kScanWarp / 2; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
    prefix += v;
    if (prefixes != 0) break;
    end -= kScanWarp;
  }
  if (lane == 0) {
    __threadfence();
    atomicExch(tiles + tile, kPrefix | static_cast<unsigned>(prefix + count));
  }
  return prefix;
}

// One CTA (any power-of-two block size <= 1024): out[i] = sum(in[0..i)) for i <= n (out has
// n + 1 entries). A template so that every translation unit gets its own copy.
template <int kUnused = 0>
__global__ void exclusive_scan_kernel(const int* in, int* out, int n) {
  __shared__ int smem[kScanWarp + 1];
  int carry = 0;
  for (int base = 0; base < n; base += blockDim.x) {
    const int i = base + static_cast<int>(threadIdx.x);
    const int v = i < n ? in[i] : 0;
    int total;
    const int ex = block_exclusive_scan(v, smem, &total);
    if (i < n) out[i] = carry + ex;
    carry += total;
  }
  if (threadIdx.x == 0) out[n] = carry;
}

}  // namespace pit::sparse::cuda
