#pragma once
// The wide M-gather's epilogue (gather_wide.cu) where C is compact (row e of the index's entries,
// not scattered) and stored once as it is (no activation, bias or entry scales): MoE's gu GEMM. A
// warpgroup's 64 x 256 f32 accumulators (wgmma's m64n256 layout) are rounded to T in registers and
// written into 64 x 64 staging units in the 128-byte swizzle, which one thread hands to TMA stores:
// the stores drain while the next chunk is written and the next tile's MMAs run, where SWrite
// (swrite.cuh swrite_staged) makes every thread wait for its own stores, through an f32 staging
// tile, 32 columns at a time. The same accumulators rounded the same way: bit for bit SWrite's
// output (the tests assert it).
//
// A warpgroup's staging: two 8 KB units (1024-byte aligned), which the 64-column chunks take in
// turn: one chunk's stores read a unit while the next chunk is written into the other. Only whole
// 64-row slices of a tile go this way: TMA writes whole boxes, and rows past an expert's entries
// are the next expert's (the caller SWrites such a slice).
//
// Not for an activation and its pre (the up GEMM): a version that also took the entry scales and the
// bias, and wrote pre and gate * act(pre)
// into both units per chunk, waiting each chunk for the previous chunk's stores, with the
// activation inlined at every element, ran the MoE up GEMM 3.3x slower than SWrite (H100, top-2:
// 2.59 against 0.80 ms; docs/BENCHMARKS.md, thirty-second session); which of the two (or both)
// did it is not established. Correct, though: the tests passed bit for bit.
#include <cuda.h>

#include <cstdint>

#include "ops/cuda/mbarrier_ptx.cuh"
#include "ops/cuda/mma_ptx.cuh"
#include "ops/cuda/tma_ptx.cuh"
#include "ops/cuda/wgmma_ptx.cuh"
#include "ops/pit/cuda/swrite.cuh"

namespace pit::sparse::cuda::wide {

constexpr uint32_t kStoreUnit = 64 * 64 * 2;          // a 64 x 64 staging unit of 16-bit elements
constexpr uint32_t kStoreStaging = 2 * kStoreUnit;     // a warpgroup's two

// Stores warpgroup `wg`'s 64 rows of a tile (compact rows row0 .. row0 + 63, all the segment's
// entries; columns n0 .. n0 + 255, those >= n clipped by the map) from its accumulators. c_map: C's
// TMA map (tensor_map_2d: boxes of 64 rows x 64 columns). staging: the warpgroup's shared-memory
// units; chunks: its chunks stored so far (which unit is next). All 128 threads of the warpgroup
// call it; its thread 0 issues the stores.
template <typename T>
__device__ __forceinline__ void store_rows(const float (&acc)[128], const CUtensorMap* c_map, int32_t row0,
                                           int32_t n0, int32_t n, uint32_t staging, uint32_t& chunks, int wg) {
  namespace tma = pit::cuda::tma;
  namespace mbar = pit::cuda::mbar;
  const int wt = static_cast<int>(threadIdx.x % 128), lane = static_cast<int>(threadIdx.x % 32);
  const int rw = (wt / 32) * 16 + lane / 4, q = lane % 4;  // rows rw and rw + 8, columns 8 j + 2 q (+1)
  // This thread's 4 bytes in a unit's rows rw (and rw + 8, 1024 bytes on): its 16-byte chunk XORed
  // with the row within the 1024-byte atom (rw % 8 = lane / 4), as TMA's 128-byte swizzle reads it.
  const uint32_t at = static_cast<uint32_t>(rw * 128 + 4 * q);
  const int swz = lane / 4;
#pragma unroll  // (the accumulators are indexed by constants only)
  for (int h = 0; h < 4; ++h) {
    const int32_t col0 = n0 + 64 * h;
    if (col0 >= n) break;  // uniform over the warpgroup
    // The unit free again: the stores of the chunk before last have read it.
    const uint32_t unit = staging + (chunks % 2) * kStoreUnit;
    if (wt == 0) tma::wait_bulk<1>();
    mbar::sync_named(1 + wg, 128);
#pragma unroll
    for (int jj = 0; jj < 8; ++jj) {
      const int j = 8 * h + jj;  // (columns past n are clipped by the store)
      const uint32_t to = unit + at + static_cast<uint32_t>((jj ^ swz) * 16);
      pit::cuda::ptx::st_shared_u32(to, dev::pack2<T>(acc[4 * j], acc[4 * j + 1]));
      pit::cuda::ptx::st_shared_u32(to + 8 * 128, dev::pack2<T>(acc[4 * j + 2], acc[4 * j + 3]));
    }
    pit::cuda::wgmma::fence_smem_for_async();  // the staging writes before the TMA's reads
    mbar::sync_named(1 + wg, 128);
    if (wt == 0) {
      tma::store_2d(c_map, col0, row0, unit);
      tma::commit_bulk();
    }
    ++chunks;
  }
}

}  // namespace pit::sparse::cuda::wide
