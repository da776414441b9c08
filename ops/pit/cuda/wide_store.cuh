#pragma once
// The wide M-gather's epilogue (gather_wide.cu) where C is compact (row e of the index's entries,
// not scattered) and stored once: MoE's up GEMM (pre and gate * act(pre)) and its gu GEMM (the sums
// as they are). A warpgroup's 64 x 256 f32 accumulators (wgmma's m64n256 layout) go out 64
// columns at a time: the chunk's values (scaled, as SWrite scales them) rounded to T in registers
// and written into a 64 x 64 staging unit in the 128-byte swizzle, which one thread hands to a TMA
// store; with pre, the chunk's pre first, then its activation's output (act and the gate after it
// out of line, as swrite.cuh's store8_act). The stores drain while the next unit is written and the
// next tile's MMAs run, where SWrite (swrite.cuh swrite_staged) makes every thread wait for its own
// stores, through an f32 staging tile, 32 columns at a time. The same values rounded the same way:
// bit for bit SWrite's output (the tests assert it).
//
// A warpgroup's staging: two 8 KB units (1024-byte aligned), which the units of output (a chunk of
// C, or of pre) take in turn: one unit's store reads it while the next is written into the other.
// Only whole 64-row slices of a tile go this way: TMA writes whole boxes, and rows past an expert's
// entries are the next expert's (the caller SWrites such a slice). No bias (the caller SWrites).
//
// History: a first version of the pre + activation case wrote both outputs of a chunk into the two
// units, waiting each chunk for the previous chunk's stores, with the activation inlined at every
// element of the unrolled chunks, and ran the MoE up GEMM 3.3x slower than SWrite (H100, top-2:
// 2.59 against 0.80 ms; docs/BENCHMARKS.md, thirty-second session), though correct.
#include <cuda.h>

#include <cstdint>

#include "ops/cuda/mbarrier_ptx.cuh"
#include "ops/cuda/mma_ptx.cuh"
#include "ops/cuda/tma_ptx.cuh"
#include "ops/cuda/wgmma_ptx.cuh"
#include "ops/pit/cuda/swrite.cuh"

namespace pit::sparse::cuda::wide {

constexpr uint32_t kStoreUnit = 64 * 64 * 2;       // a 64 x 64 staging unit of 16-bit elements
constexpr uint32_t kStoreStaging = 2 * kStoreUnit;  // a warpgroup's two

// Eight values (four adjacent pairs of one row) through the activation, times `post`: out of line,
// so that the unrolled chunks carry one call each rather than four activations' code (swrite.cuh
// store8_act: inlined, they doubled gather_ws.cu's object and slowed every engine).
struct Vals8 {
  float4 lo, hi;
};
__device__ __noinline__ Vals8 activate8_post(dev::Act act, float4 lo, float4 hi, float post) {
  dev::activate8(act, lo, hi);
  if (post != 1.f) {
    lo = make_float4(lo.x * post, lo.y * post, lo.z * post, lo.w * post);
    hi = make_float4(hi.x * post, hi.y * post, hi.z * post, hi.w * post);
  }
  return {lo, hi};
}

// The TMA maps of the outputs: C's, and pre's with EpiArgs::pre (boxes of 64 rows x 64 columns).
struct StoreMaps {
  const CUtensorMap* c;
  const CUtensorMap* pre;
};

// Stores warpgroup `wg`'s 64 rows of a tile (compact rows row0 .. row0 + 63, all the segment's
// entries; columns n0 .. n0 + 255, those >= n clipped by the maps) from its accumulators, as
// swrite_staged would with epilogue e (store mode, no bias) and the rows' scales: scale0 for this
// thread's row rw, scale1 for rw + 8 (1 without entry weights). staging: the warpgroup's
// shared-memory units; units: its units stored so far (which is next). All 128 threads of the
// warpgroup call it; its thread 0 issues the stores.
template <typename T>
__device__ __forceinline__ void store_rows(const float (&acc)[128], StoreMaps maps, int32_t row0, int32_t n0,
                                           int32_t n, const dev::EpiArgs& e, float scale0, float scale1,
                                           uint32_t staging, uint32_t& units, int wg) {
  namespace tma = pit::cuda::tma;
  namespace mbar = pit::cuda::mbar;
  const int wt = static_cast<int>(threadIdx.x % 128), lane = static_cast<int>(threadIdx.x % 32);
  const int rw = (wt / 32) * 16 + lane / 4, q = lane % 4;  // rows rw and rw + 8, columns 8 j + 2 q (+1)
  // This thread's 4 bytes in a unit's rows rw (and rw + 8, 1024 bytes on): its 16-byte chunk XORed
  // with the row within the 1024-byte atom (rw % 8 = lane / 4), as TMA's 128-byte swizzle reads it.
  const uint32_t at = static_cast<uint32_t>(rw * 128 + 4 * q);
  const int swz = lane / 4;
  // As swrite_staged: the scale multiplies the sums unless it comes after the activation.
  const bool pre_scale = !e.scale_after;
  const float post0 = e.scale_after ? scale0 : 1.f, post1 = e.scale_after ? scale1 : 1.f;
  // One unit of output: v (v[2 jj], v[2 jj + 1]: row rw's pair jj of the chunk; v[16 + ...]: row
  // rw + 8's) rounded into the next staging unit, stored at (col0, row0) through `map`.
  const auto put = [&](const float (&v)[32], const CUtensorMap* map, int32_t col0) {
    const uint32_t unit = staging + (units % 2) * kStoreUnit;
    if (wt == 0) tma::wait_bulk<1>();  // the unit free again: the store before last has read it
    mbar::sync_named(1 + wg, 128);
#pragma unroll
    for (int jj = 0; jj < 8; ++jj) {
      const uint32_t to = unit + at + static_cast<uint32_t>((jj ^ swz) * 16);
      pit::cuda::ptx::st_shared_u32(to, dev::pack2<T>(v[2 * jj], v[2 * jj + 1]));
      pit::cuda::ptx::st_shared_u32(to + 8 * 128, dev::pack2<T>(v[16 + 2 * jj], v[17 + 2 * jj]));
    }
    pit::cuda::wgmma::fence_smem_for_async();  // the staging writes before the TMA's reads
    mbar::sync_named(1 + wg, 128);
    if (wt == 0) {
      tma::store_2d(map, col0, row0, unit);
      tma::commit_bulk();
    }
    ++units;
  };
#pragma unroll  // (the accumulators are indexed by constants only)
  for (int h = 0; h < 4; ++h) {
    const int32_t col0 = n0 + 64 * h;
    if (col0 >= n) break;  // uniform over the warpgroup (columns past n are clipped by the stores)
    float v[32];
#pragma unroll
    for (int jj = 0; jj < 8; ++jj) {
      const int j = 8 * h + jj;
      v[2 * jj] = acc[4 * j];
      v[2 * jj + 1] = acc[4 * j + 1];
      v[16 + 2 * jj] = acc[4 * j + 2];
      v[17 + 2 * jj] = acc[4 * j + 3];
    }
    if (pre_scale && (scale0 != 1.f || scale1 != 1.f)) {
#pragma unroll
      for (int i = 0; i < 16; ++i) {
        v[i] *= scale0;
        v[16 + i] *= scale1;
      }
    }
    if (e.act == dev::Act::none) {
      put(v, maps.c, col0);
      continue;
    }
    if (e.pre) put(v, maps.pre, col0);
#pragma unroll
    for (int b = 0; b < 4; ++b) {  // four runs of 8: row rw's pairs 0-3 and 4-7, then row rw + 8's
      float* r = v + 8 * b;
      const Vals8 o = activate8_post(e.act, make_float4(r[0], r[1], r[2], r[3]), make_float4(r[4], r[5], r[6], r[7]),
                                     b < 2 ? post0 : post1);
      r[0] = o.lo.x, r[1] = o.lo.y, r[2] = o.lo.z, r[3] = o.lo.w;
      r[4] = o.hi.x, r[5] = o.hi.y, r[6] = o.hi.z, r[7] = o.hi.w;
    }
    put(v, maps.c, col0);
  }
}

}  // namespace pit::sparse::cuda::wide
