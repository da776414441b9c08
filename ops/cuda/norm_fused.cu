// Layernorm / rmsnorm backward in one pass over x and dy, for rows of up to 1024 elements in whole,
// 16-byte aligned packs (f32, f16, bf16), where the bulk-copy kernel (ops/cuda/norm_bulk.cu) does
// not run: a GPU or build older than sm_90, or PIT_NORM_BULK=0.
//
// A warp takes two of its rows at a time (a stage: rows r and r + W of the W warps of the grid)
// and computes dx as ops/cuda/norm.cu's row kernel does. Lane t owns the packs t, t + 32, ... of
// every row, hence the same columns in every row, so it also adds dy * xhat and dy into dweight /
// dbias accumulators in its registers: x and dy are read once, where the general path reads them
// again in a column pass (on an H200, 16384 x 1024 bf16, the whole backward: 0.106 ms -> 0.045
// ms). The rows travel by cp.async into a per-warp shared-memory ring of kDepth stages, with their
// mean and rstd (loaded where they were used, their latency was the kernel's largest stall: 0.0387
// -> 0.0353 ms); each lane copies exactly the packs it reads back, so it waits on its own copies
// only. Two rows a stage interleave two rows' shuffle reductions and loads (with one row a stage,
// 3 blocks an SM: 0.0359 ms). The weight sits in shared memory, and packs past the row read as
// zeros, so the loops over a lane's packs have no bounds checks.
//
// At the end each block adds its warps' accumulators in warp order into one partial row (dweight,
// then dbias), added over the blocks as ops/cuda/norm_finish.cuh says.
#include "ops/cuda/norm_fused.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "core/cuda/runtime.h"
#include "ops/cuda/device_utils.cuh"
#include "ops/cuda/mma_ptx.cuh"
#include "ops/cuda/norm_finish.cuh"

namespace pit::cuda {
namespace {

using norm_finish::Args;

constexpr int kThreads = 128;  // 4 warps; 247-249 registers a thread for 1024 bf16 elements (ptxas)
constexpr int kWarps = kThreads / kWarp;
constexpr int kMinBlocks = 2;  // resident blocks an SM
constexpr int kRows = 2;       // rows a stage
constexpr int kDepth = 2;      // stages in a warp's ring: one in flight while one is used
// Blocks: at most kMinBlocks per SM (all resident) and norm_finish::kMaxBlocks; a warp takes
// kMinRowsPerWarp rows at least.
constexpr int64_t kMinRowsPerWarp = 4;
constexpr int kMaxPacks = 4;  // packs per lane: 1024 elements of f16 / bf16, 512 of f32

// A pack of zeros, and of ones (the weight of a norm without one).
template <typename T>
__device__ __forceinline__ Pack<T> filled_pack(float v) {
  Pack<T> p;
#pragma unroll
  for (int e = 0; e < Pack<T>::kN; ++e) p.v[e] = narrow<T>(v);
  return p;
}

template <typename T>
__device__ __forceinline__ Pack<T> reload(const Pack<T>* p) {
  const uint4 u = ptx::ld_shared_u4(p);
  Pack<T> out;
  static_assert(sizeof(out) == sizeof(u));
  memcpy(&out, &u, sizeof u);
  return out;
}

// a.part [gridDim.x][2][d] (f32): this block's sums over its rows of dy * xhat, then of dy.
// kGridSync (a cooperative launch): after the partials, the grid synchronises and adds them into
// dweight / dbias itself (norm_finish::sync_and_finish), with no second kernel.
template <typename T, int kPacks, bool kGridSync>
__global__ void __launch_bounds__(kThreads, kMinBlocks) fused_backward_kernel(const Args<T> a) {
  const T* __restrict__ const dy = a.dy;
  const T* __restrict__ const x = a.x;
  const float* __restrict__ const mean_in = a.mean;
  const float* __restrict__ const rstd_in = a.rstd;
  const int64_t sdy = a.sdy, sx = a.sx, rows = a.rows;
  const int d = a.d;
  using P = Pack<T>;
  constexpr int kN = P::kN, kSlot = kWarp * kPacks;  // packs of one operand of one row
  constexpr int kStage = kRows * 2 * kSlot;          // [kRows][x, dy][kSlot]
  extern __shared__ uint4 smem_raw[];
  norm_finish::allow_dependents();
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  P* const ring = reinterpret_cast<P*>(smem_raw) + warp * kDepth * kStage;  // [kDepth][kStage]
  const int packs = d / kN;
  // The weight in shared memory, ones without one. Packs past the row get a zero weight and their
  // ring slots (never copied into) zeros, so they add nothing to the sums below: the loops need no
  // bounds checks, only the stores of dx.
  P* const wsh = reinterpret_cast<P*>(smem_raw) + kWarps * kDepth * kStage;  // [kSlot]
  // The stages' statistics, [kDepth][kRows][mean, rstd] a warp.
  float* const stats = reinterpret_cast<float*>(wsh + kSlot) + warp * kDepth * kRows * 2;
  const int64_t first = blockIdx.x * int64_t{kWarps} + warp, step = int64_t{gridDim.x} * kWarps;
  const int64_t hop = kRows * step;  // from one stage's first row to the next's
  // Copies the rows r0, r0 + step, ... of a stage and their mean (lane 0) and rstd (lane 1) into
  // ring stage s. A row past the end reads as zeros, its statistics too, so it adds nothing to
  // the sums.
  const auto issue = [&](int64_t r0, int s) {
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      const int64_t r = r0 + j * step;
      const bool in = r < rows;
      P* const xs = ring + s * kStage + j * 2 * kSlot;
      const P* xr = reinterpret_cast<const P*>(x + r * sx);
      const P* gr = reinterpret_cast<const P*>(dy + r * sdy);
      float* const st = stats + (s * kRows + j) * 2;
      if (lane == 0) {
        if (in && mean_in != nullptr) ptx::cp_async_4(st, mean_in + r);
        else st[0] = 0.f;
      } else if (lane == 1) {
        if (in) ptx::cp_async_4(st + 1, rstd_in + r);
        else st[1] = 0.f;
      }
#pragma unroll
      for (int p = 0; p < kPacks; ++p) {
        const int q = lane + p * kWarp;
        if (q >= packs) continue;
        if (in) {
          ptx::cp_async_16(xs + q, xr + q, 16);
          ptx::cp_async_16(xs + kSlot + q, gr + q, 16);
        } else {
          xs[q] = filled_pack<T>(0.f);
          xs[kSlot + q] = filled_pack<T>(0.f);
        }
      }
    }
    ptx::cp_async_commit();  // empty past the last row: the group count stays uniform
  };
#pragma unroll
  for (int s = 0; s < kDepth - 1; ++s) issue(first + s * hop, s);
  // The weight and the zeros past the row, while the first stage is on its way (they touch other
  // slots than the copies).
  for (int q = threadIdx.x; q < kSlot; q += kThreads)
    wsh[q] = q >= packs ? filled_pack<T>(0.f) : a.w != nullptr ? reinterpret_cast<const P*>(a.w)[q] : filled_pack<T>(1.f);
#pragma unroll
  for (int p = 0; p < kPacks; ++p)
    if (lane + p * kWarp >= packs)
#pragma unroll
      for (int s = 0; s < kDepth * kRows * 2; ++s) ring[s * kSlot + lane + p * kWarp] = filled_pack<T>(0.f);
  __syncthreads();

  float aw[kPacks * kN], ab[kPacks * kN];
#pragma unroll
  for (int i = 0; i < kPacks * kN; ++i) aw[i] = ab[i] = 0.f;
  int it = 0;
  for (int64_t r0 = first; r0 < rows; r0 += hop, ++it) {
    issue(r0 + (kDepth - 1) * hop, (it + kDepth - 1) % kDepth);
    ptx::cp_async_wait<kDepth - 1>();
    // Lanes 0 and 1 copied the statistics. (Their slot is next written two stages on, after every
    // lane has used it and passed the shuffles of warp_sums below.)
    __syncwarp();
    const P* const st = ring + (it % kDepth) * kStage + lane;
    const float* const ms = stats + (it % kDepth) * kRows * 2;
    // xhat = (x - mean) rstd; for 16-bit x as one fma, x rstd + shift (the shift -mean rstd rounded
    // once in f32: well below the 16-bit input's own rounding), in f32 as written.
    float mean[kRows], rstd[kRows], shift[kRows], sums[2 * kRows];  // sums: dy w xhat of each row, then dy w
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      mean[j] = ms[2 * j];
      rstd[j] = ms[2 * j + 1];
      shift[j] = -mean[j] * rstd[j];
      sums[j] = sums[kRows + j] = 0.f;
    }
    const auto xhat = [&](float xv, int j) {
      if constexpr (kN == 8) return fmaf(xv, rstd[j], shift[j]);
      else return (xv - mean[j]) * rstd[j];
    };
#pragma unroll
    for (int p = 0; p < kPacks; ++p) {
      float wf[kN];
      widen_pack(wsh[lane + p * kWarp].v, wf);
#pragma unroll
      for (int j = 0; j < kRows; ++j) {
        float xf[kN], gf[kN];
        widen_pack(st[j * 2 * kSlot + p * kWarp].v, xf);  // one 16-byte shared load each
        widen_pack(st[j * 2 * kSlot + kSlot + p * kWarp].v, gf);
#pragma unroll
        for (int e = 0; e < kN; ++e) {
          const float xh = xhat(xf[e], j), g = gf[e] * wf[e];
          sums[j] += g * xh;
          sums[kRows + j] += g;
          aw[p * kN + e] += gf[e] * xh;
          ab[p * kN + e] += gf[e];
        }
      }
    }
    warp_sums(sums);
    // dx = rstd (g w - c2 - xhat c1) = (g w) rstd + (x - mean) k1 + k0; for 16-bit x,
    // (g w) rstd + x k1 + (k0 - mean k1) (as xhat above).
    float k1[kRows], k0[kRows];
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      const float c1 = sums[j] * a.inv_d, c2 = mean_in != nullptr ? sums[kRows + j] * a.inv_d : 0.f;
      k1[j] = -rstd[j] * rstd[j] * c1;
      k0[j] = -rstd[j] * c2;
      if constexpr (kN == 8) k0[j] -= mean[j] * k1[j];
    }
    // Pack by pack, both rows: the weight widened once for the two.
#pragma unroll
    for (int p = 0; p < kPacks; ++p) {
      float wf[kN];
      widen_pack(wsh[lane + p * kWarp].v, wf);
#pragma unroll
      for (int j = 0; j < kRows; ++j) {
        const int64_t r = r0 + j * step;
        float xf[kN], gf[kN], of[kN];
        widen_pack(reload(st + j * 2 * kSlot + p * kWarp).v, xf);  // not kept in registers since the first loop
        widen_pack(reload(st + j * 2 * kSlot + kSlot + p * kWarp).v, gf);
#pragma unroll
        for (int e = 0; e < kN; ++e) {
          const float xk = kN == 8 ? fmaf(xf[e], k1[j], k0[j]) : fmaf(xf[e] - mean[j], k1[j], k0[j]);
          of[e] = fmaf(gf[e] * wf[e], rstd[j], xk);
        }
        P o;
        narrow_pack(of, o.v);
        if (r < rows && lane + p * kWarp < packs) reinterpret_cast<P*>(a.dx + r * d)[lane + p * kWarp] = o;
      }
    }
  }
  ptx::cp_async_wait<0>();
  if (a.part == nullptr) return;  // no dweight / dbias asked for
  __syncthreads();  // the ring is reused for the warps' sums
  // Each warp's sums in its rows of the rings' space, then the block's.
  constexpr int kCols = kSlot * kN;
  static_assert(size_t{kWarps} * 2 * kCols * sizeof(float) <= size_t{kWarps} * kDepth * kStage * sizeof(P),
                "the warps' sums fit in the rings");
  float* const acc = reinterpret_cast<float*>(smem_raw);
  norm_finish::stash_sums<kPacks, kN>(acc + warp * 2 * kCols, acc + warp * 2 * kCols + kCols, aw, ab);
  __syncthreads();
  norm_finish::finish_block<T, kThreads, kWarps, kGridSync>(a, acc, 2 * kCols, kCols);
}

}  // namespace

bool norm_backward_fused(const cpu::NormArgs& a, const void* dy, int64_t dy_stride, const void* x,
                         int64_t x_stride, const void* weight, const void* mean, const void* rstd,
                         void* dx, void* dweight, void* dbias, StreamRef stream) {
  return norm_finish::one_pass<kMaxPacks>(
      a, dy, dy_stride, x, x_stride, weight, mean, rstd, dx, dweight, dbias, stream,
      [&]<typename T>(int64_t rows) -> int64_t {
        // As many stages a warp as the resident blocks need, then the fewest blocks that take the
        // rows in that many (16384 rows on 132 SMs: 8 stages, 256 blocks; with 264 every other
        // warp's last stage was half empty, and the backward took 0.8 us longer).
        const int64_t most = std::min<int64_t>(norm_finish::kMaxBlocks, int64_t{kMinBlocks} * sm_count(stream.device.index));
        const int64_t stages = std::max(ceil_div(rows, kWarps * kRows * most), ceil_div(kMinRowsPerWarp, kRows));
        return ceil_div(rows, kWarps * kRows * stages);
      },
      // One kernel where the grid may synchronise (0.0354 -> 0.0348 ms on an H200 at 16384 x 1024
      // bf16), else a second one adds the partials.
      [&]<typename T, int kPacks>(const Args<T>& args, int64_t blocks) {
        constexpr size_t ring = size_t{kWarps} * kDepth * kRows * 2 * kWarp * kPacks * sizeof(Pack<T>);
        constexpr size_t smem = ring + kWarp * kPacks * sizeof(Pack<T>) + kWarps * kDepth * kRows * 2 * sizeof(float);  // rings, weight, stats
        norm_finish::launch_backward<T>(fused_backward_kernel<T, kPacks, true>, fused_backward_kernel<T, kPacks, false>,
                                        args, blocks, kThreads, smem, stream);
      });
}

}  // namespace pit::cuda
