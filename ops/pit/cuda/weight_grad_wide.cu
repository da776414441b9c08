// The weight gradient of the M-gather in the lean kernel's case (weight_grad_lean.cu, lean_takes)
// with 128 x 256 tiles: one block an SM walking its tiles, a producer warpgroup loading (TMA for
// compact stages, cp.async for gathered rows) and two consumer warpgroups that only wait, multiply
// and hand their tiles to TMA stores.
//
// Why: the lean kernel runs the MoE weight gradients at 0.59-0.64x of cuBLAS strided-batched in the
// experts' own shapes (H100, 2026-12-06: dW1 top-2 0.65-0.71 ms against 0.42), and under Nsight
// its warps wait mostly on their own wgmmas and on the block barrier of every k-step, not on the
// L2 (67% of its peak). CUTLASS-style kernels keep the tensor cores fed with no block barrier in
// the loop: the loads come from one producer through a ring of mbarriers.
//
// History: the first version of this kernel (the same tiles and MMAs, the loads by cp.async from
// every thread with a block barrier per k-step, one block an SM) was correct but 1.4-1.6x slower
// than the lean kernel: with one block an SM nothing covered its barriers and epilogues.
//
// Measured (H100, `PIT_BENCH_MOE_PARTS=1 pit-bench moe`, 2026-12-06, T = 16384, d = 1024, ffn =
// 4096, E = 64): dW1 and dW2 0.33-0.36 ms at top-1 (lean kernel 0.43-0.45, cuBLAS strided-batched
// in the experts' shapes 0.259), 0.55-0.63 at top-2 (lean 0.67-0.78, cuBLAS 0.417): 0.66-0.79x of
// cuBLAS's rate, the lean kernel's 0.58-0.60x. Under Nsight (top-2) the consumers wait on `full`
// most (the loads land too late for 4 stages); an L2 prefetch of the compact operand's boxes 4
// stages ahead made it slower (docs/BENCHMARKS.md, twenty-ninth session).
//
// The ring: 4 stages of 48 KB (X: 64 entries x 128 columns as two 64-column strips of 8 KB; Y: 64
// x 256 as four), each with a `full` mbarrier and an `empty` one (one arrival per consumer warp
// once its wgmmas of the stage are done). A producer warpgroup walks the block's tiles in the
// consumers' order, the stages of all of them one sequence, so the next tile's stages load under
// this tile's last MMAs and epilogue:
// - a compact operand's whole stage: one 64 x 64 TMA box per strip, issued by one thread, whose
//   arrival on `full` expects their bytes;
// - a gathered operand, and both operands in a segment's last, partial stage: 16-byte cp.asyncs
//   from the 128 producer threads (8 chunks of X and 16 of Y each), written at their places in the
//   swizzled strips; entries past the segment and columns past the matrix read no bytes (zeros).
//   Every producer thread arrives on `full` once its copies have landed (cp.async.mbarrier.arrive),
//   so `full` completes with 129 arrivals and the TMA bytes. Each thread reads its entries' rows of
//   the index (8 for X, 16 for Y) a stage ahead, the next tile's segment offsets a tile ahead.
//   (The first TMA version gathered rows as one-row TMA boxes: correct, but 4-6x slower than the
//   lean kernel (H100, dW1 top-1 2.55 against 0.44 ms): a one-row box costs the TMA unit about as
//   much as a whole one.)
// The consumers: per stage, wait on `full`, fence the cp.async writes for the async proxy, issue 4
// m64n256k16 (warpgroup w: tile rows 64 w .. 64 w + 63), commit, wait for the previous stage's
// wgmmas and release its slot (kDrain, where an operand is gathered: wait for this stage's and
// release it at once, so three stages load instead of two: wide_core.cuh wide_drain). The epilogue: each warpgroup rounds its 64 x 256 accumulators to T
// into its own 16 KB staging tile, 128 columns at a time, and one of its threads stores them by
// TMA (two 64 x 64 boxes of a rank-3 map of dB: rows and columns past dB's are not written), so
// the stores drain while the next tile's MMAs run. Each output element sums the same products in
// the same order (k16 steps of 64-entry stages) as the wgmma engine and the lean kernel, so it is
// bit-identical to them (the tests assert it).
#include <type_traits>

#include "ops/cuda/device_utils.cuh"
#include "ops/cuda/mbarrier_ptx.cuh"
#include "ops/cuda/mma_ptx.cuh"
#include "ops/cuda/tensor_map.h"
#include "ops/cuda/tma_ptx.cuh"
#include "ops/cuda/wgmma_ptx.cuh"
#include "ops/pit/cuda/gemm_core.cuh"
#include "ops/pit/cuda/launch.cuh"
#include "ops/pit/cuda/weight_grad_core.cuh"
#include "ops/pit/cuda/wide_core.cuh"

namespace pit::sparse::cuda {
namespace {

using namespace wide;
constexpr int kXStrips = BM / 64, kYStrips = BN / 64;  // 64-column strips of a stage's tiles
constexpr int kOutCols = 128;                          // a warpgroup's staging tile: 64 rows x 128 columns
constexpr int kOutElems = 64 * kOutCols;               // (two 64 x 64 boxes of 8 KB)
constexpr int kXChunks = BM / 8, kYChunks = BN / 8;    // 16-byte chunks of a stage row
constexpr int kXLoads = BK * kXChunks / kProducers, kYLoads = BK * kYChunks / kProducers;  // a producer's: 8, 16
template <typename T>
constexpr size_t kSmem =
    (size_t{kStages} * (kAElems + kBElems) + 2 * size_t{kOutElems}) * sizeof(T) + WideCfg<T>::kAlign - 16;

template <typename T>
struct WideParams {
  WgradParams<T> p;
  int n_tiles;  // column tiles of 256
  int tiles;    // segments x row tiles x column tiles
};

// The TMA maps: X's and Y's whole stages (BK rows x 64 columns) and dB's 64 x 64 boxes.
struct WideMaps {
  CUtensorMap x_stage, y_stage, out;
};

// Work tile t: its segment's entries and its corner.
struct Tile {
  int s, e0, count, num_k;
  int64_t m0, n0;
};

template <typename T>
__device__ __forceinline__ Tile describe(const WideParams<T>& w, int t) {
  Tile d;
  const int nt = t % w.n_tiles, rest = t / w.n_tiles;
  const int mt = rest % w.p.m_tiles;
  d.s = rest / w.p.m_tiles;
  d.e0 = w.p.offsets[d.s];
  d.count = w.p.offsets[d.s + 1] - d.e0;
  d.num_k = (d.count + BK - 1) / BK;
  d.m0 = int64_t{mt} * BM;
  d.n0 = int64_t{nt} * BN;
  return d;
}

// Producer thread `pt` (0-127)'s copies of one operand's stage: chunk column `cc` of rows r0,
// r0 + kStep, ... (kLoads of them) of the stage, into the swizzled strips at `dst`. row(i): the
// matrix row of the i-th (< 0: none, zeros).
template <int kLoads, int kStep, class Row>
__device__ __forceinline__ void copy_rows(uint32_t dst, const char* col, bool col_in, uint32_t row_bytes, int cc,
                                          int r0, Row&& row) {
#pragma unroll
  for (int i = 0; i < kLoads; ++i) {
    const int r = r0 + i * kStep;
    const int64_t m = row(i);
    const uint32_t at = static_cast<uint32_t>((cc / 8) * kStripBytes + r * 128 + (((cc % 8) ^ (r % 8)) * 16));
    const bool in = col_in && m >= 0;
    pit::cuda::ptx::cp_async_16(dst + at, col + (in ? uint64_t(m) * row_bytes : 0), in ? 16 : 0);
  }
}

// The producer warpgroup: every stage of the block's tiles, in order, into the ring.
template <typename T, bool kXg, bool kYg>
__device__ __forceinline__ void produce(const WideParams<T>& w, const WideMaps& maps, T* sa, T* sb, uint64_t* full,
                                        uint64_t* empty) {
  namespace tma = pit::cuda::tma;
  namespace mbar = pit::cuda::mbar;
  const int pt = static_cast<int>(threadIdx.x) - kConsumers;
  if (pt == 0 && w.p.x_rows > 0 && w.p.y_rows > 0) {  // (else the maps are not built: no stage loads)
    tma::prefetch(&maps.x_stage);
    tma::prefetch(&maps.y_stage);
  }
  // This thread's chunks: X's chunk column xc of stage rows xr0 + 8 i, Y's yc of rows yr0 + 4 i.
  const int xc = pt % kXChunks, xr0 = pt / kXChunks, yc = pt % kYChunks, yr0 = pt / kYChunks;
  constexpr int kXStep = kProducers / kXChunks, kYStep = kProducers / kYChunks;
  const uint32_t x_row_bytes = static_cast<uint32_t>(w.p.ldx * sizeof(T)), y_row_bytes = static_cast<uint32_t>(w.p.ldy * sizeof(T));
  // The gathered rows of this thread's entries in the next stage issued (-1 past the segment).
  int32_t xn[kXLoads], yn[kYLoads];
  const auto fetch = [&](const Tile& of, int kt) {
    const int j0 = kt * BK;
    if constexpr (kXg) {
#pragma unroll
      for (int i = 0; i < kXLoads; ++i) {
        const int j = j0 + xr0 + i * kXStep;
        xn[i] = j < of.count ? w.p.rows[of.e0 + j] : -1;
      }
    }
    if constexpr (kYg) {
#pragma unroll
      for (int i = 0; i < kYLoads; ++i) {
        const int j = j0 + yr0 + i * kYStep;
        yn[i] = j < of.count ? w.p.rows[of.e0 + j] : -1;
      }
    }
  };
  const int grid = static_cast<int>(gridDim.x);
  uint32_t g = 0;  // stages so far, over the block's tiles
  Tile tile = describe(w, static_cast<int>(blockIdx.x));  // (the grid has no more blocks than tiles)
  if (tile.num_k > 0) fetch(tile, 0);
  for (int t = static_cast<int>(blockIdx.x); t < w.tiles; t += grid) {
    // The next tile's segment, read under this tile's stages.
    const bool more = t + grid < w.tiles;
    const Tile next = more ? describe(w, t + grid) : tile;
    const bool x_in = tile.m0 + 8 * xc < w.p.p, y_in = tile.n0 + 8 * yc < w.p.q;  // whole chunks or none
    const char* const x_col = reinterpret_cast<const char*>(w.p.x + (x_in ? tile.m0 + 8 * xc : 0));
    const char* const y_col = reinterpret_cast<const char*>(w.p.y + (y_in ? tile.n0 + 8 * yc : 0));
    for (int kt = 0; kt < tile.num_k; ++kt, ++g) {
      const int j0 = kt * BK;
      const bool whole = j0 + BK <= tile.count;
      const int slot = static_cast<int>(g % kStages);
      mbar::wait(&empty[slot], ((g / kStages) & 1) ^ 1);
      const uint32_t xs = pit::cuda::ptx::smem_u32(sa + slot * kAElems);
      const uint32_t ys = pit::cuda::ptx::smem_u32(sb + slot * kBElems);
      const bool x_box = whole && !kXg, y_box = whole && !kYg;
      if (pt == 0) {
        const uint32_t bar = pit::cuda::ptx::smem_u32(&full[slot]);
        mbar::arrive_expect_tx(&full[slot], (x_box ? kXStrips : 0) * kStripBytes + (y_box ? kYStrips : 0) * kStripBytes);
        const int32_t xm = static_cast<int32_t>(tile.m0), yn0 = static_cast<int32_t>(tile.n0), e = tile.e0 + j0;
        if (x_box) {
#pragma unroll
          for (int c = 0; c < kXStrips; ++c) tma::load_2d(xs + c * kStripBytes, &maps.x_stage, xm + 64 * c, e, bar);
        }
        if (y_box) {
#pragma unroll
          for (int c = 0; c < kYStrips; ++c) tma::load_2d(ys + c * kStripBytes, &maps.y_stage, yn0 + 64 * c, e, bar);
        }
      }
      // The entry's row of a compact operand (by entry), of a gathered one (by the index).
      const auto compact = [&](int r) { return j0 + r < tile.count ? int64_t{tile.e0} + j0 + r : int64_t{-1}; };
      if (!x_box)
        copy_rows<kXLoads, kXStep>(xs, x_col, x_in, x_row_bytes, xc, xr0, [&](int i) {
          if constexpr (kXg) return int64_t{xn[i]};
          else return compact(xr0 + i * kXStep);
        });
      if (!y_box)
        copy_rows<kYLoads, kYStep>(ys, y_col, y_in, y_row_bytes, yc, yr0, [&](int i) {
          if constexpr (kYg) return int64_t{yn[i]};
          else return compact(yr0 + i * kYStep);
        });
      mbar::arrive_on_cp_async(&full[slot]);
      // The next stage's rows, read under the wait for its slot.
      if (kt + 1 < tile.num_k) fetch(tile, kt + 1);
      else if (more && next.num_k > 0) fetch(next, 0);
    }
    if (tile.num_k == 0 && more && next.num_k > 0) fetch(next, 0);
    tile = next;
  }
  mbar::cp_async_wait_all();
}

template <typename T, bool kXg, bool kYg, bool kDrain>
__global__ void __launch_bounds__(kThreads, 1)
    weight_grad_wide_kernel(const __grid_constant__ WideParams<T> w, const __grid_constant__ WideMaps maps) {
  using namespace pit::cuda;
  extern __shared__ uint4 smem_raw[];
  __shared__ uint64_t full[kStages], empty[kStages];
  T* const sa = dev::tile_base<WideCfg<T>>(smem_raw);
  T* const sb = sa + kStages * kAElems;
  init_ring(full, empty, kProducers + 1);  // every producer's copies, and the TMA bytes' arrival
  __syncthreads();  // (the last block-wide barrier: the producers leave below)
  if (threadIdx.x >= kConsumers) {
    produce<T, kXg, kYg>(w, maps, sa, sb, full, empty);
    return;
  }
  // This warpgroup's rows of the tile (wgmma's accumulator layout, m64n256: rows 16 warp + lane / 4
  // and 8 below, columns 8 j + 2 (lane % 4)), and its A descriptor's start: the M-major strip of
  // its 64 rows.
  const int wg = threadIdx.x / 128, lane = threadIdx.x % 32, wt = threadIdx.x % 128;
  const int rw = ((threadIdx.x / 32) % 4) * 16 + lane / 4;  // the thread's row in the warpgroup's 64
  const uint32_t a_base = ptx::smem_u32(sa) + wg * kStripBytes, b_base = ptx::smem_u32(sb);
  // The warpgroup's staging tile, and this thread's place in it (its row's 128-byte line, the
  // column pair's 4 bytes in its 16-byte chunk: the chunk itself XORed with row % 8 below).
  const uint32_t staged = ptx::smem_u32(sb + kStages * kBElems + wg * kOutElems);
  const uint32_t st_at = staged + static_cast<uint32_t>(rw * 128 + 4 * (lane % 4));
  const int swz = lane / 4;  // rw % 8 (and (rw + 8) % 8)
  constexpr bool kHalf = std::is_same_v<T, Half>;
  float acc[128];
  uint32_t g = 0;  // stages so far, over the block's tiles (the producers' count)
  const int grid = static_cast<int>(gridDim.x);
  Tile tile = describe(w, static_cast<int>(blockIdx.x));  // (the grid has no more blocks than tiles)
  for (int t = static_cast<int>(blockIdx.x); t < w.tiles; t += grid) {
    // The next tile's segment, read under this tile's stages.
    const Tile next = t + grid < w.tiles ? describe(w, t + grid) : tile;
#pragma unroll
    for (int i = 0; i < 128; ++i) acc[i] = 0.f;
    for (int kt = 0; kt < tile.num_k; ++kt, ++g) {
      const int slot = static_cast<int>(g % kStages);
      mbar::wait(&full[slot], (g / kStages) & 1);
      wgmma::fence_smem_for_async();  // the stage's cp.async writes (generic proxy) before wgmma's reads
      wgmma::fence();
#pragma unroll
      for (int kk = 0; kk < BK / 16; ++kk)  // a k16 step: two 8-row atoms on, in both tiles
        wgmma::mma_m64n256k16<kHalf, 1, 1>(
            acc, wgmma::desc_sw128(a_base + slot * kAElems * sizeof(T) + kk * 2048, BK * 128, 1024),
            wgmma::desc_sw128(b_base + slot * kBElems * sizeof(T) + kk * 2048, BK * 128, 1024), 1);
      wgmma::commit();
      // The previous stage's wgmmas are done: its slot goes back to the producers.
      if constexpr (kDrain) {
        wgmma::wait<0>();
        if (lane == 0) mbar::arrive(&empty[g % kStages]);
      } else {
        wgmma::wait<1>();
        if (kt > 0 && lane == 0) mbar::arrive(&empty[(g - 1) % kStages]);
      }
    }
    if constexpr (!kDrain) {
      wgmma::wait<0>();
      if (tile.num_k > 0 && lane == 0) mbar::arrive(&empty[(g - 1) % kStages]);
    }
    // The warpgroup's 64 rows of dB, 128 columns at a time through its staging tile (zeros for a
    // segment without entries).
    const int32_t row = static_cast<int32_t>(tile.m0) + 64 * wg;
#pragma unroll
    for (int h = 0; h < BN / kOutCols; ++h) {
      const int32_t col = static_cast<int32_t>(tile.n0) + kOutCols * h;
      if (col >= w.p.q) continue;
      if (wt == 0) tma::wait_bulk<0>();  // the previous stores have read the staging tile
      mbar::sync_named(1 + wg, 128);
#pragma unroll
      for (int jj = 0; jj < kOutCols / 8; ++jj) {
        const int j = h * (kOutCols / 8) + jj;
        const uint32_t at = st_at + static_cast<uint32_t>((jj / 8) * 8192 + (((jj % 8) ^ swz) * 16));
        ptx::st_shared_u32(at, dev::pack2<T>(acc[4 * j], acc[4 * j + 1]));
        ptx::st_shared_u32(at + 8 * 128, dev::pack2<T>(acc[4 * j + 2], acc[4 * j + 3]));
      }
      wgmma::fence_smem_for_async();  // the staging writes before the TMA's reads
      mbar::sync_named(1 + wg, 128);
      if (wt == 0 && row < w.p.p) {
#pragma unroll
        for (int b = 0; b < kOutCols / 64; ++b)
          if (col + 64 * b < w.p.q) tma::store_3d(&maps.out, col + 64 * b, row, tile.s, staged + b * 8192);
        tma::commit_bulk();
      }
    }
    tile = next;
  }
  if (wt == 0) tma::wait_bulk<0, false>();  // (the staging tiles stay until the stores are done)
}

}  // namespace

template <typename T>
bool wide_takes(const WgradParams<T>& p) {
  // TMA: rows and columns addressed in 32 bits, and the maps' row strides (16-byte multiples:
  // lean_takes' aligned rows and dB's 16-byte aligned start and Q % 8 == 0).
  return lean_takes(p) && p.q > 128 && p.x_rows < INT32_MAX && p.y_rows < INT32_MAX && p.p < INT32_MAX &&
         p.q < INT32_MAX;
}

template <typename T>
void launch_weight_grad_wide(const WgradParams<T>& p, StreamRef stream) {
  PIT_CHECK(wide_takes(p), "cuda::gather_weight_grad: the wide kernel was launched for a case it does not take");
  WideParams<T> w{p, static_cast<int>((p.q + BN - 1) / BN), 0};
  const int64_t tiles = int64_t{p.segments} * p.m_tiles * w.n_tiles;
  PIT_CHECK(tiles < INT32_MAX, "cuda::gather_weight_grad: too many output tiles (", tiles, ")");
  w.tiles = static_cast<int>(tiles);
  if (w.tiles == 0) return;  // no segments
  WideMaps maps{};
  constexpr DType kType = std::is_same_v<T, Half> ? DType::f16 : DType::bf16;
  if (p.x_rows > 0 && p.y_rows > 0) {  // (else no entries: no stage is loaded)
    maps.x_stage = pit::cuda::tensor_map_2d(kType, p.x, p.x_rows, p.p, p.ldx, BK, "gather_weight_grad's X");
    maps.y_stage = pit::cuda::tensor_map_2d(kType, p.y, p.y_rows, p.q, p.ldy, BK, "gather_weight_grad's Y");
  }
  maps.out = pit::cuda::tensor_map_3d(kType, p.out, p.segments, p.p, p.q, p.q, p.p * p.q, 64, "gather_weight_grad's dB");
  const auto run = [&]<bool kXg, bool kYg>() {
    auto* kernel = wide_drain(kXg || kYg) ? weight_grad_wide_kernel<T, kXg, kYg, true> : weight_grad_wide_kernel<T, kXg, kYg, false>;
    const int per_sm = allow_smem(kernel, kSmem<T>, kThreads);
    const auto grid = static_cast<unsigned>(persistent_grid(tiles, per_sm));
    kernel<<<grid, kThreads, kSmem<T>, native(stream)>>>(w, maps);
    check_launch("cuda::gather_weight_grad (wide kernel)");
  };
  if (p.x_gathered && p.y_gathered) run.template operator()<true, true>();
  else if (p.x_gathered) run.template operator()<true, false>();
  else if (p.y_gathered) run.template operator()<false, true>();
  else run.template operator()<false, false>();
}

template bool wide_takes<Half>(const WgradParams<Half>&);
template bool wide_takes<BFloat16>(const WgradParams<BFloat16>&);
template void launch_weight_grad_wide<Half>(const WgradParams<Half>&, StreamRef);
template void launch_weight_grad_wide<BFloat16>(const WgradParams<BFloat16>&, StreamRef);

}  // namespace pit::sparse::cuda
