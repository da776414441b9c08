// The weight gradient of the M-gather in the lean kernel's case (weight_grad_lean.cu, lean_takes)
// with 128 x 256 tiles: one block an SM walking its tiles, a producer warp loading by TMA and two
// consumer warpgroups that only wait, multiply and store.
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
// STATUS: this TMA version is written and compiled, NOT yet run on a GPU (no device time was left
// in the session that wrote it).
//
// The ring: 4 stages of 48 KB (X: 64 entries x 128 columns as two 64-column strips of 8 KB; Y: 64
// x 256 as four), each with a `full` mbarrier (the producer's arrival with the stage's bytes, then
// the TMA bytes) and an `empty` one (one arrival per consumer warp once its wgmmas of the stage
// are done). The producer warp walks the block's tiles in the consumers' order, the stages of all
// of them one sequence, so the next tile's stages load under this tile's last MMAs and epilogue:
// - a compact operand's whole stage: one 64 x 64 box per strip (tma_ptx.cuh);
// - a gathered operand, and both operands in a segment's last, partial stage: a box of one row
//   per entry and strip, at the row's place in the swizzled strip; entries past the segment read
//   row `rows` of the matrix, past its end: zeros, so they add nothing.
//   Each lane reads its entries' rows of the index (entries lane and lane + 32) a stage ahead, and
//   the next tile's segment offsets a tile ahead, so those loads' latency hides under the waits.
// The consumers: per stage, wait on `full`, issue 4 m64n256k16 (warpgroup w: tile rows 64 w ..
// 64 w + 63), commit, wait for the previous stage's wgmmas and release its slot. The epilogue
// stores the accumulators from registers, two elements a store, while the producer already loads
// the next tile. Each output element sums the same products in the same order (k16 steps of
// 64-entry stages) as the wgmma engine and the lean kernel, so it is bit-identical to them (the
// tests assert it).
#include <type_traits>

#include "ops/cuda/device_utils.cuh"
#include "ops/cuda/mbarrier_ptx.cuh"
#include "ops/cuda/mma_ptx.cuh"
#include "ops/cuda/tensor_map.h"
#include "ops/cuda/tma_ptx.cuh"
#include "ops/cuda/wgmma_ptx.cuh"
#include "ops/pit/cuda/gemm_core.cuh"
#include "ops/pit/cuda/launch.cuh"
#include "ops/pit/cuda/sread.cuh"
#include "ops/pit/cuda/weight_grad_core.cuh"

namespace pit::sparse::cuda {
namespace {

constexpr int kConsumers = 256;              // two warpgroups
constexpr int kThreads = kConsumers + 32;    // and the producer warp
constexpr int BM = 128, BN = 256, BK = 64;
constexpr int kStages = 4;
constexpr int kXStrips = BM / 64, kYStrips = BN / 64;  // 64-column strips of a stage's tiles
constexpr int kAElems = BK * BM, kBElems = BK * BN;    // 16 and 32 KB (16-bit): stages stay 1024-aligned
constexpr uint32_t kStripBytes = BK * 64 * 2;          // one strip: 64 entry rows of 128 bytes
constexpr uint32_t kStageBytes = (kXStrips + kYStrips) * kStripBytes;
// What dev::tile_base needs: the element type and the stages' alignment.
template <typename T>
struct WideCfg {
  using Elem = T;
  static constexpr size_t kAlign = 1024;
};
template <typename T>
constexpr size_t kSmem = size_t{kStages} * (kAElems + kBElems) * sizeof(T) + WideCfg<T>::kAlign - 16;

template <typename T>
struct WideParams {
  WgradParams<T> p;
  int n_tiles;  // column tiles of 256
  int tiles;    // segments x row tiles x column tiles
};

// The TMA maps of X and Y: boxes of one row and of a whole stage (BK rows), 64 columns each.
struct WideMaps {
  CUtensorMap x_row, x_stage, y_row, y_stage;
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

// The producer warp: every stage of the block's tiles, in order, into the ring.
template <typename T, bool kXg, bool kYg>
__device__ __forceinline__ void produce(const WideParams<T>& w, const WideMaps& maps, T* sa, T* sb, uint64_t* full,
                                        uint64_t* empty) {
  namespace tma = pit::cuda::tma;
  namespace mbar = pit::cuda::mbar;
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (lane == 0 && w.p.x_rows > 0 && w.p.y_rows > 0) {  // (else the maps are not built: no stage loads)
    tma::prefetch(&maps.x_row);
    tma::prefetch(&maps.x_stage);
    tma::prefetch(&maps.y_row);
    tma::prefetch(&maps.y_stage);
  }
  const int32_t x_end = static_cast<int32_t>(w.p.x_rows), y_end = static_cast<int32_t>(w.p.y_rows);
  // This lane's entries of stage kt of a tile (lane, lane + 32): their rows of X and Y (past the
  // segment: the row past the matrix's end, read as zeros).
  int32_t xr[2], yr[2];
  const auto rows_of = [&](const Tile& of, int kt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int j = kt * BK + lane + 32 * h;
      const bool in = j < of.count;
      const int32_t e = of.e0 + j;
      const int32_t named = (kXg || kYg) && in ? w.p.rows[e] : e;
      xr[h] = in ? (kXg ? named : e) : x_end;
      yr[h] = in ? (kYg ? named : e) : y_end;
    }
  };
  const int grid = static_cast<int>(gridDim.x);
  uint32_t g = 0;  // stages so far, over the block's tiles
  Tile tile = describe(w, static_cast<int>(blockIdx.x));  // (the grid has no more blocks than tiles)
  for (int t = static_cast<int>(blockIdx.x); t < w.tiles; t += grid) {
    // The next tile's segment, read under this tile's stages.
    const Tile next = t + grid < w.tiles ? describe(w, t + grid) : tile;
    const int32_t xc = static_cast<int32_t>(tile.m0), yc = static_cast<int32_t>(tile.n0);
    if (tile.num_k > 0) rows_of(tile, 0);
    for (int kt = 0; kt < tile.num_k; ++kt, ++g) {
      const int j0 = kt * BK;
      const bool whole = j0 + BK <= tile.count;
      const int slot = static_cast<int>(g % kStages);
      mbar::wait(&empty[slot], ((g / kStages) & 1) ^ 1);
      if (lane == 0) mbar::arrive_expect_tx(&full[slot], kStageBytes);
      __syncwarp();
      const uint32_t xs = pit::cuda::ptx::smem_u32(sa + slot * kAElems);
      const uint32_t ys = pit::cuda::ptx::smem_u32(sb + slot * kBElems);
      const uint32_t bar = pit::cuda::ptx::smem_u32(&full[slot]);
      if (whole && !kXg && lane < kXStrips)
        tma::load_2d(xs + lane * kStripBytes, &maps.x_stage, xc + 64 * lane, tile.e0 + j0, bar);
      if (whole && !kYg && lane < kYStrips)
        tma::load_2d(ys + lane * kStripBytes, &maps.y_stage, yc + 64 * lane, tile.e0 + j0, bar);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint32_t row_at = static_cast<uint32_t>(lane + 32 * h) * 128;  // the row's place in each strip
        if (kXg || !whole)
#pragma unroll
          for (int c = 0; c < kXStrips; ++c)
            tma::load_2d(xs + c * kStripBytes + row_at, &maps.x_row, xc + 64 * c, xr[h], bar);
        if (kYg || !whole)
#pragma unroll
          for (int c = 0; c < kYStrips; ++c)
            tma::load_2d(ys + c * kStripBytes + row_at, &maps.y_row, yc + 64 * c, yr[h], bar);
      }
      // The next stage's rows, read under the wait for its slot.
      if (kt + 1 < tile.num_k) rows_of(tile, kt + 1);
    }
    tile = next;
  }
}

template <typename T, bool kXg, bool kYg>
__global__ void __launch_bounds__(kThreads, 1)
    weight_grad_wide_kernel(const __grid_constant__ WideParams<T> w, const __grid_constant__ WideMaps maps) {
  using namespace pit::cuda;
  extern __shared__ uint4 smem_raw[];
  __shared__ uint64_t full[kStages], empty[kStages];
  T* const sa = dev::tile_base<WideCfg<T>>(smem_raw);
  T* const sb = sa + kStages * kAElems;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar::init(&full[s], 1);                   // the producer's arrival, then the bytes
      mbar::init(&empty[s], kConsumers / 32);    // one arrival per consumer warp
    }
    mbar::fence_init();
  }
  __syncthreads();  // (the last block-wide barrier: the producer warp leaves below)
  if (threadIdx.x >= kConsumers) {
    produce<T, kXg, kYg>(w, maps, sa, sb, full, empty);
    return;
  }
  // This warpgroup's rows of the tile (wgmma's accumulator layout, m64n256: rows 16 warp + lane / 4
  // and 8 below, columns 8 j + 2 (lane % 4)), and its A descriptor's start: the M-major strip of
  // its 64 rows.
  const int wg = threadIdx.x / 128, lane = threadIdx.x % 32;
  const int row0 = wg * 64 + ((threadIdx.x / 32) % 4) * 16 + lane / 4, col0 = 2 * (lane % 4);
  const uint32_t a_base = ptx::smem_u32(sa) + wg * kStripBytes, b_base = ptx::smem_u32(sb);
  constexpr bool kHalf = std::is_same_v<T, Half>;
  float acc[128];
  uint32_t g = 0;  // stages so far, over the block's tiles (the producer's count)
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
      wgmma::fence();
#pragma unroll
      for (int kk = 0; kk < BK / 16; ++kk)  // a k16 step: two 8-row atoms on, in both tiles
        wgmma::mma_m64n256k16<kHalf, 1, 1>(
            acc, wgmma::desc_sw128(a_base + slot * kAElems * sizeof(T) + kk * 2048, BK * 128, 1024),
            wgmma::desc_sw128(b_base + slot * kBElems * sizeof(T) + kk * 2048, BK * 128, 1024), 1);
      wgmma::commit();
      // The previous stage's wgmmas are done: its slot goes back to the producer.
      wgmma::wait<1>();
      if (kt > 0 && lane == 0) mbar::arrive(&empty[(g - 1) % kStages]);
    }
    wgmma::wait<0>();
    if (tile.num_k > 0 && lane == 0) mbar::arrive(&empty[(g - 1) % kStages]);
    // The tile's rows of dB, two elements a store (zeros for a segment without entries).
    const int64_t r = tile.m0 + row0;
    T* const out = w.p.out + (int64_t{tile.s} * w.p.p + r) * w.p.q + tile.n0 + col0;
    const int64_t cols_left = w.p.q - tile.n0 - col0;  // > 8 j for the columns of block j that exist
    const bool top = r < w.p.p, bottom = r + 8 < w.p.p;
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) {
      if (8 * j >= cols_left) break;
      if (top) *reinterpret_cast<uint32_t*>(out + 8 * j) = dev::pack2<T>(acc[4 * j], acc[4 * j + 1]);
      if (bottom) *reinterpret_cast<uint32_t*>(out + 8 * w.p.q + 8 * j) = dev::pack2<T>(acc[4 * j + 2], acc[4 * j + 3]);
    }
    tile = next;
  }
}

}  // namespace

template <typename T>
bool wide_takes(const WgradParams<T>& p) {
  // TMA: rows addressed in 32 bits, and the maps' row strides (16-byte multiples: lean_takes'
  // aligned rows).
  return lean_takes(p) && p.q > 128 && p.x_rows < INT32_MAX && p.y_rows < INT32_MAX;
}

template <typename T>
void launch_weight_grad_wide(const WgradParams<T>& p, StreamRef stream) {
  PIT_CHECK(wide_takes(p), "cuda::gather_weight_grad: the wide kernel was launched for a case it does not take");
  WideParams<T> w{p, static_cast<int>((p.q + BN - 1) / BN), 0};
  const int64_t tiles = int64_t{p.segments} * p.m_tiles * w.n_tiles;
  PIT_CHECK(tiles < INT32_MAX, "cuda::gather_weight_grad: too many output tiles (", tiles, ")");
  w.tiles = static_cast<int>(tiles);
  WideMaps maps{};
  constexpr DType kType = std::is_same_v<T, Half> ? DType::f16 : DType::bf16;
  if (p.x_rows > 0 && p.y_rows > 0) {  // (else no entries: no stage is loaded)
    maps.x_row = pit::cuda::tensor_map_2d(kType, p.x, p.x_rows, p.p, p.ldx, 1, "gather_weight_grad's X");
    maps.x_stage = pit::cuda::tensor_map_2d(kType, p.x, p.x_rows, p.p, p.ldx, BK, "gather_weight_grad's X");
    maps.y_row = pit::cuda::tensor_map_2d(kType, p.y, p.y_rows, p.q, p.ldy, 1, "gather_weight_grad's Y");
    maps.y_stage = pit::cuda::tensor_map_2d(kType, p.y, p.y_rows, p.q, p.ldy, BK, "gather_weight_grad's Y");
  }
  const auto run = [&]<bool kXg, bool kYg>() {
    auto* kernel = weight_grad_wide_kernel<T, kXg, kYg>;
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
