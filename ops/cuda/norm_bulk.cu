// Layernorm / rmsnorm backward in one pass over x and dy with the rows brought in by bulk copies
// (sm_90), for rows of up to 1024 elements in whole, 16-byte aligned packs (f32, f16, bf16).
//
// The op streams: it reads x and dy once and writes dx once. ops/cuda/norm_fused.cu (the path on
// GPUs without bulk copies) keeps one stage of two rows a warp in flight by cp.async, at two
// blocks of four warps an SM. Here the rows come through a ring of ~190 KB an SM kept loading by
// bulk copies (ops/cuda/row_ring.cuh; a slot holds one row's x and dy), rows interleaved over
// the blocks. A consumer lane owns packs lane, lane + 32, ... of every row: it computes dx by the
// expressions of norm_fused.cu (bit for bit the same dx) and adds dy * xhat and dy into dweight /
// dbias accumulators in registers. The slot is released as soon as the lanes hold the row in registers.
// Each lane loads the mean and rstd of its warp's next 32 rows in one go, a batch ahead of their
// use, and the warp shuffles them out row by row.
//
// At the end each warp stashes its accumulators as soon as its rows are done, the block adds them
// in warp order into one partial row (dweight, then dbias), and the blocks' rows are added as
// ops/cuda/norm_finish.cuh says.
//
// H100, 16384 x 1024 bf16 (`build-gpu/pit-bench dense`, alternating with PIT_NORM_BULK=0 in one
// call): 0.0420-0.0427 ms, 79-80% of the copy bandwidth, against 0.0445-0.0452 ms for the cp.async
// kernel. In the loop (timestamps, before the early stash), the blocks' rows ended at 30-35.5 us,
// their partial rows were written 2 us later, the grid synchronised at 38 us, and dweight / dbias
// were done at 39.4 us; without dweight / dbias the op took 0.0395 ms.
#include "ops/cuda/norm_bulk.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>

#include "core/cuda/runtime.h"
#include "ops/cuda/device_utils.cuh"
#include "ops/cuda/mbarrier_ptx.cuh"
#include "ops/cuda/mma_ptx.cuh"
#include "ops/cuda/norm_finish.cuh"
#include "ops/cuda/row_ring.cuh"
#include "ops/cuda/tma_ptx.cuh"

namespace pit::cuda {
namespace {

using norm_finish::Args;
using row_ring::kConsumers;
using row_ring::kThreads;

constexpr int kMaxPacks = 4;  // packs a lane: 1024 elements of f16 / bf16, 512 of f32
constexpr int64_t kMinRowsPerWarp = 4;
constexpr int kStatBatch = kWarp;  // rows whose statistics a warp loads at once

std::atomic<int64_t> bulk_launches{0};  // norm_backward_bulk_launches()

// Slots of the ring for rows of kPacks packs a lane (x and dy).
template <typename T, int kPacks>
constexpr int kSlots = row_ring::slots(2 * kWarp * kPacks * sizeof(Pack<T>));

template <typename T, int kPacks>
constexpr size_t smem_bytes() {
  const size_t ring = size_t{kSlots<T, kPacks>} * 2 * kWarp * kPacks * sizeof(Pack<T>);
  // The ring, the weight, the full and empty barriers.
  return ring + kWarp * kPacks * sizeof(Pack<T>) + 2 * size_t{kSlots<T, kPacks>} * sizeof(uint64_t);
}

template <typename T, int kPacks, bool kGridSync>
__global__ void __launch_bounds__(kThreads, 1) bulk_backward_kernel(const Args<T> a) {
#if __CUDA_ARCH__ >= 900
  using P = Pack<T>;
  constexpr int kN = P::kN, kSlot = kWarp * kPacks;  // packs of one operand of one row
  constexpr int kS = kSlots<T, kPacks>;
  static_assert(kS >= kConsumers && kS % kConsumers == 0);
  extern __shared__ uint4 smem_raw[];
  norm_finish::allow_dependents();
  P* const ring = reinterpret_cast<P*>(smem_raw);  // [kS][x, dy][kSlot]
  // The weight's packs, ones without one; zeros past the row, whose packs are not loaded (their
  // slot contents are not read) and so add nothing.
  P* const wsh = ring + kS * 2 * kSlot;
  const row_ring::Ring<kS> rr{reinterpret_cast<uint64_t*>(wsh + kSlot), reinterpret_cast<uint64_t*>(wsh + kSlot) + kS};
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int packs = a.d / kN;
  const row_ring::Rows rows = row_ring::block_rows(a.rows);
  const int64_t n = rows.n;
  if (threadIdx.x == 0) rr.init();
  __syncthreads();  // the barriers initialised: the producer starts at once

  float aw[kPacks * kN], ab[kPacks * kN];  // this lane's columns of dweight / dbias
#pragma unroll
  for (int i = 0; i < kPacks * kN; ++i) aw[i] = ab[i] = 0.f;
  if (warp == kConsumers) {
    const uint32_t bytes = static_cast<uint32_t>(a.d) * sizeof(T);
    if (lane == 0)
      rr.produce(n, 2 * bytes, [&](int64_t i, int s, uint32_t bar) {
        const uint32_t dst = ptx::smem_u32(ring + s * 2 * kSlot);
        tma::load_bulk(dst, a.x + rows.row(i) * a.sx, bytes, bar);
        tma::load_bulk(dst + kSlot * sizeof(P), a.dy + rows.row(i) * a.sdy, bytes, bar);
      });
  } else {
    // The weight, while the first rows load; the consumer warps then synchronise among themselves.
    for (int q = threadIdx.x; q < kSlot; q += kConsumers * kWarp) {
      P p;
#pragma unroll
      for (int e = 0; e < kN; ++e) p.v[e] = narrow<T>(q < packs && a.w == nullptr ? 1.f : 0.f);
      wsh[q] = q < packs && a.w != nullptr ? reinterpret_cast<const P*>(a.w)[q] : p;
    }
    mbar::sync_named(row_ring::kBarrierId, kConsumers * kWarp);
    // Lane j holds the statistics of the warp's row j of the current batch (cur) and of the next.
    const auto stat_of = [&](int64_t batch, const float* v) {
      const int64_t i = warp + int64_t{kConsumers} * (batch * kStatBatch + lane);
      return v != nullptr && i < n ? v[rows.row(i)] : 0.f;
    };
    float mean_next = stat_of(0, a.mean), rstd_next = stat_of(0, a.rstd), mean_cur = 0.f, rstd_cur = 0.f;
    int64_t it = 0;
    for (int64_t i = warp; i < n; i += kConsumers, ++it) {
      const int j = static_cast<int>(it % kStatBatch);
      if (j == 0) {
        mean_cur = mean_next;
        rstd_cur = rstd_next;
        mean_next = stat_of(it / kStatBatch + 1, a.mean);
        rstd_next = stat_of(it / kStatBatch + 1, a.rstd);
      }
      const float mean = __shfl_sync(kFullMask, mean_cur, j), rstd = __shfl_sync(kFullMask, rstd_cur, j);
      const int s = rr.acquire(i);
      const P* const st = ring + s * 2 * kSlot + lane;
      P xs[kPacks], gs[kPacks];
#pragma unroll
      for (int p = 0; p < kPacks; ++p) {
        if (lane + p * kWarp < packs) {
          const uint4 u = ptx::ld_shared_u4(st + p * kWarp), v = ptx::ld_shared_u4(st + kSlot + p * kWarp);
          memcpy(&xs[p], &u, sizeof u);
          memcpy(&gs[p], &v, sizeof v);
        } else {
          memset(&xs[p], 0, sizeof xs[p]);
          memset(&gs[p], 0, sizeof gs[p]);
        }
      }
      rr.release(s);
      // xhat = (x - mean) rstd; for 16-bit x as one fma, x rstd + shift (as norm_fused.cu).
      const float shift = -mean * rstd;
      const auto xhat = [&](float xv) {
        if constexpr (kN == 8) return fmaf(xv, rstd, shift);
        else return (xv - mean) * rstd;
      };
      float sums[2] = {0.f, 0.f};  // dy w xhat, dy w
#pragma unroll
      for (int p = 0; p < kPacks; ++p) {
        float wf[kN], xf[kN], gf[kN];
        widen_pack(wsh[lane + p * kWarp].v, wf);
        widen_pack(xs[p].v, xf);
        widen_pack(gs[p].v, gf);
#pragma unroll
        for (int e = 0; e < kN; ++e) {
          const float xh = xhat(xf[e]), g = gf[e] * wf[e];
          sums[0] += g * xh;
          sums[1] += g;
          aw[p * kN + e] += gf[e] * xh;
          ab[p * kN + e] += gf[e];
        }
      }
      warp_sums(sums);
      // dx = (g w) rstd + (x - mean) k1 + k0; for 16-bit x, (g w) rstd + x k1 + (k0 - mean k1).
      const float c1 = sums[0] * a.inv_d, c2 = a.mean != nullptr ? sums[1] * a.inv_d : 0.f;
      const float k1 = -rstd * rstd * c1;
      const float k0 = kN == 8 ? -rstd * c2 - mean * k1 : -rstd * c2;
      P* const out = reinterpret_cast<P*>(a.dx + rows.row(i) * a.d);
#pragma unroll
      for (int p = 0; p < kPacks; ++p) {
        if (lane + p * kWarp >= packs) break;
        float wf[kN], xf[kN], gf[kN], of[kN];
        widen_pack(wsh[lane + p * kWarp].v, wf);
        widen_pack(xs[p].v, xf);
        widen_pack(gs[p].v, gf);
#pragma unroll
        for (int e = 0; e < kN; ++e) {
          const float xk = kN == 8 ? fmaf(xf[e], k1, k0) : fmaf(xf[e] - mean, k1, k0);
          of[e] = fmaf(gf[e] * wf[e], rstd, xk);
        }
        P o;
        narrow_pack(of, o.v);
        out[lane + p * kWarp] = o;
      }
    }
  }
  if (a.part == nullptr) return;  // no dweight / dbias asked for
  // A consumer warp stashes its sums as soon as its rows are done, in two of its own slots (w and
  // w + kConsumers: only warp w reads slot w's rows, and it has waited for every one of them, so
  // no copy is left to land there), while the other warps may still be at their rows.
  float* const acc = reinterpret_cast<float*>(smem_raw);
  constexpr int kSlotFloats = 2 * kSlot * static_cast<int>(sizeof(P) / sizeof(float));
  static_assert(kSlot * kN <= kSlotFloats && kS >= 2 * kConsumers, "a warp's sums fit in two of its slots");
  if (warp < kConsumers)
    norm_finish::stash_sums<kPacks, kN>(acc + warp * kSlotFloats, acc + (warp + kConsumers) * kSlotFloats, aw, ab);
  __syncthreads();
  norm_finish::finish_block<T, kThreads, kConsumers, kGridSync>(a, acc, kSlotFloats, kConsumers * kSlotFloats);
#endif
}

}  // namespace

bool norm_backward_bulk(const cpu::NormArgs& a, const void* dy, int64_t dy_stride, const void* x,
                        int64_t x_stride, const void* weight, const void* mean, const void* rstd,
                        void* dx, void* dweight, void* dbias, StreamRef stream) {
  const char* env = std::getenv("PIT_NORM_BULK");
  if (env != nullptr && env[0] == '0') return false;
  const int device = stream.device.index;
  const bool ran = norm_finish::one_pass<kMaxPacks>(
      a, dy, dy_stride, x, x_stride, weight, mean, rstd, dx, dweight, dbias, stream,
      [&]<typename T>(int64_t rows) -> int64_t {
        if (!row_ring::runs_on(reinterpret_cast<const void*>(bulk_backward_kernel<T, kMaxPacks, false>), device)) return 0;
        // One block an SM, fewer where the warps would get fewer than kMinRowsPerWarp rows.
        return std::min({norm_finish::kMaxBlocks, int64_t{sm_count(device)}, ceil_div(rows, kConsumers * kMinRowsPerWarp)});
      },
      [&]<typename T, int kPacks>(const Args<T>& args, int64_t blocks) {
        norm_finish::launch_backward<T>(bulk_backward_kernel<T, kPacks, true>, bulk_backward_kernel<T, kPacks, false>,
                                        args, blocks, kThreads, smem_bytes<T, kPacks>(), stream);
      });
  if (ran) bulk_launches.fetch_add(1, std::memory_order_relaxed);
  return ran;
}

int64_t norm_backward_bulk_launches() { return bulk_launches.load(std::memory_order_relaxed); }

}  // namespace pit::cuda
