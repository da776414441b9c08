// The weight gradient of the M-gather in the lean kernel's case (weight_grad_lean.cu, lean_takes)
// with 128 x 256 tiles, one block an SM walking its tiles with the loads running on across them.
//
// Why (an estimate from the lean kernel's times, not yet profiled): in its k-loop each 128 x 128
// x 64 step brings 32 KB through the L2 for 2.1 MFLOP. On an H100 (T = 16384, E = 64, top-2) dW1
// ran at 393 TFLOP/s (0.70 ms): ~6 TB/s of operands out of the L2, near what an H100's L2 is
// reported to deliver, so operand traffic rather than the tensor cores likely bounds these GEMMs.
// A 128 x 256 tile brings 48 KB a step for twice the MMAs: a quarter less traffic per FLOP.
// STATUS: correct (H100, 2026-12-06: test_pit_weight_grad_lean_cuda, bit-identical; full suite
// 707/707) but SLOWER than the lean kernel, so not merged: `PIT_BENCH_MOE_PARTS=1 pit-bench moe`,
// timed alternately, dW1 top-1 0.704-0.708 against 0.433-0.436 ms, top-2 1.046-1.067 against
// 0.729-0.744; dW2 top-2 0.951-0.971 against 0.707-0.710. One block of 8 warps an SM hides less
// than the lean kernel's two blocks (one block's epilogue and barriers run under the other's
// MMAs); here the tensor cores wait through every barrier and epilogue. Its 128 accumulators a thread (m64n256k16 per warpgroup) leave room for one block an
// SM, so the block is persistent: tiles t = blockIdx.x, + gridDim.x, ... (weight_grad_core.cuh's
// order, column tiles of 256), and the k-steps of all its tiles form one pipeline, so the next
// tile's first stages load under this tile's last MMAs and its epilogue. The epilogue stores the
// accumulators straight from registers (two bf16 a store; no staging, no barrier), so the tensor
// cores wait only for those stores to issue.
//
// Loads as in the lean kernel: a thread owns one 16-byte column chunk of the X tile (tid % 16;
// entry rows tid / 16 + 16 i) and one of the Y tile (tid % 32; rows tid / 32 + 8 i), worked out
// once a tile; a stage costs per chunk a 32 x 32 -> 64-bit multiply-add and one cp.async
// (zero-filled past the segment or the edge), with the gathered rows read from the index one
// stage ahead. 4 stages of 48 KB; the loads run 2 stages ahead with one stage's MMAs in flight.
// Each output element sums the same products in the same order (k16 steps of 64-entry stages)
// as the wgmma engine and the lean kernel, so it should be bit-identical to them (the tests
// assert it; not yet run).
#include <type_traits>

#include "ops/cuda/device_utils.cuh"
#include "ops/cuda/mma_ptx.cuh"
#include "ops/cuda/wgmma_ptx.cuh"
#include "ops/pit/cuda/gemm_core.cuh"
#include "ops/pit/cuda/launch.cuh"
#include "ops/pit/cuda/sread.cuh"
#include "ops/pit/cuda/weight_grad_core.cuh"

namespace pit::sparse::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int BM = 128, BN = 256, BK = 64;
constexpr int kStages = 4, kAhead = kStages - 2;
constexpr int kXChunks = BM / 8, kYChunks = BN / 8;  // 16-byte chunks in a tile row
constexpr int kXRowStep = kThreads / kXChunks;     // rows between one thread's X chunks: 16
constexpr int kYRowStep = kThreads / kYChunks;     // and Y chunks: 8
constexpr int kXLoads = BK / kXRowStep, kYLoads = BK / kYRowStep;  // a thread's chunks a stage: 4, 8
constexpr int kAElems = BK * BM, kBElems = BK * BN;  // 16 and 32 KB (bf16): stages stay 1024-aligned
// What dev::tile_base needs: the element type and the stages' alignment.
template <typename T>
struct WideCfg {
  using Elem = T;
  static constexpr size_t kAlign = 1024;
};
template <typename T>
constexpr size_t kSmem = size_t{kStages} * (kAElems + kBElems) * sizeof(T) + WideCfg<T>::kAlign - 16;
using Layout = dev::Sw128MNMajor<BK>;

template <typename T>
struct WideParams {
  WgradParams<T> p;
  int n_tiles;  // column tiles of 256
  int tiles;    // segments x row tiles x column tiles
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

// The loads of this thread: the tile and stage next to load, its column chunks of X and Y, and the
// gathered rows of that stage's entries (read one stage ahead).
template <typename T, bool kXg, bool kYg>
struct Loader {
  const WideParams<T>& w;
  int t, kt;  // t >= w.tiles: nothing left to load
  Tile tile;
  const char* x_col;
  const char* y_col;
  int x_bytes, y_bytes;
  uint32_t x_named[kXLoads], y_named[kYLoads];
  const int xc, xr, yc, yr;  // chunk column and first row of X and of Y

  __device__ explicit Loader(const WideParams<T>& params)
      : w(params), t(static_cast<int>(blockIdx.x)), kt(0), xc(threadIdx.x % kXChunks), xr(threadIdx.x / kXChunks),
        yc(threadIdx.x % kYChunks), yr(threadIdx.x / kYChunks) {
    settle();
    fetch();
  }

  // From tile t on, the first tile with entries to load; its column chunks.
  __device__ void settle() {
    for (; t < w.tiles; t += static_cast<int>(gridDim.x)) {
      tile = describe(w, t);
      if (tile.num_k > 0) break;
    }
    if (t >= w.tiles) return;
    x_bytes = tile.m0 + xc * 8 < w.p.p ? 16 : 0;
    y_bytes = tile.n0 + yc * 8 < w.p.q ? 16 : 0;
    x_col = reinterpret_cast<const char*>(w.p.x + (x_bytes != 0 ? tile.m0 + xc * 8 : 0));
    y_col = reinterpret_cast<const char*>(w.p.y + (y_bytes != 0 ? tile.n0 + yc * 8 : 0));
  }

  // The gathered rows of stage kt's entries (0 past the count: a row that exists, read for no bytes).
  __device__ void fetch() {
    if (t >= w.tiles) return;
    if constexpr (kXg) {
#pragma unroll
      for (int i = 0; i < kXLoads; ++i) {
        const int e = kt * BK + xr + i * kXRowStep;
        x_named[i] = e < tile.count ? static_cast<uint32_t>(w.p.rows[tile.e0 + e]) : 0u;
      }
    }
    if constexpr (kYg) {
#pragma unroll
      for (int i = 0; i < kYLoads; ++i) {
        const int e = kt * BK + yr + i * kYRowStep;
        y_named[i] = e < tile.count ? static_cast<uint32_t>(w.p.rows[tile.e0 + e]) : 0u;
      }
    }
  }

  // Issues the copies of the next stage into (sa, sb) and moves on to the stage after it.
  __device__ void load(T* sa, T* sb) {
    if (t >= w.tiles) return;
    const uint32_t x_row_bytes = static_cast<uint32_t>(w.p.ldx * sizeof(T));
    const uint32_t y_row_bytes = static_cast<uint32_t>(w.p.ldy * sizeof(T));
    const uint32_t ua = pit::cuda::ptx::smem_u32(sa) + static_cast<uint32_t>(Layout::at(xr, xc * 8) * sizeof(T));
    const uint32_t ub = pit::cuda::ptx::smem_u32(sb) + static_cast<uint32_t>(Layout::at(yr, yc * 8) * sizeof(T));
#pragma unroll
    for (int i = 0; i < kXLoads; ++i) {  // rows 16 apart lie 2 KB apart in the swizzled tile
      const int e = kt * BK + xr + i * kXRowStep;
      const bool in = e < tile.count;
      const uint32_t row = kXg ? x_named[i] : static_cast<uint32_t>(tile.e0 + (in ? e : 0));
      pit::cuda::ptx::cp_async_16(ua + i * 2048u, x_col + uint64_t{row} * x_row_bytes, in ? x_bytes : 0);
    }
#pragma unroll
    for (int i = 0; i < kYLoads; ++i) {  // rows 8 apart lie 1 KB apart
      const int e = kt * BK + yr + i * kYRowStep;
      const bool in = e < tile.count;
      const uint32_t row = kYg ? y_named[i] : static_cast<uint32_t>(tile.e0 + (in ? e : 0));
      pit::cuda::ptx::cp_async_16(ub + i * 1024u, y_col + uint64_t{row} * y_row_bytes, in ? y_bytes : 0);
    }
    if (++kt == tile.num_k) {
      kt = 0;
      t += static_cast<int>(gridDim.x);
      settle();
    }
    fetch();
  }
};

template <typename T, bool kXg, bool kYg>
__global__ void __launch_bounds__(kThreads, 1) weight_grad_wide_kernel(const __grid_constant__ WideParams<T> w) {
  using namespace pit::cuda;
  extern __shared__ uint4 smem_raw[];
  T* const sa = dev::tile_base<WideCfg<T>>(smem_raw);
  T* const sb = sa + kStages * kAElems;
  Loader<T, kXg, kYg> loader(w);
#pragma unroll
  for (int s = 0; s < kAhead; ++s) {
    loader.load(sa + s * kAElems, sb + s * kBElems);
    ptx::cp_async_commit();
  }
  // This warpgroup's rows of the tile (wgmma's accumulator layout, m64n256: rows 16 warp + lane / 4
  // and 8 below, columns 8 j + 2 (lane % 4)), and its A descriptor's start: the M-major atom
  // strip of its 64 rows.
  const int wg = threadIdx.x / 128, lane = threadIdx.x % 32;
  const int row0 = wg * 64 + ((threadIdx.x / 32) % 4) * 16 + lane / 4, col0 = 2 * (lane % 4);
  const uint32_t a_base = ptx::smem_u32(sa) + wg * BK * 128, b_base = ptx::smem_u32(sb);
  constexpr bool kHalf = std::is_same_v<T, Half>;
  float acc[128];
  int g = 0;  // the block's k-steps so far, over its tiles
  const int grid = static_cast<int>(gridDim.x);
  Tile tile = describe(w, static_cast<int>(blockIdx.x));  // (the grid has no more blocks than tiles)
  for (int t = static_cast<int>(blockIdx.x); t < w.tiles; t += grid) {
    // The next tile's segment, read under this tile's steps.
    const Tile next = t + grid < w.tiles ? describe(w, t + grid) : tile;
#pragma unroll
    for (int i = 0; i < 128; ++i) acc[i] = 0.f;
    for (int kt = 0; kt < tile.num_k; ++kt, ++g) {
      const int buf = g % kStages;
      ptx::cp_async_wait<kAhead - 1>();
      wgmma::fence_smem_for_async();
      // Stage g is visible to both warpgroups, and both have finished the MMAs of stage g - 2,
      // whose buffer the load below overwrites (wait<1> at the end of each step).
      __syncthreads();
      wgmma::fence();
#pragma unroll
      for (int kk = 0; kk < BK / 16; ++kk)  // a k16 step: two 8-row atoms on, in both tiles
        wgmma::mma_m64n256k16<kHalf, 1, 1>(
            acc, wgmma::desc_sw128(a_base + buf * kAElems * sizeof(T) + kk * 2048, BK * 128, 1024),
            wgmma::desc_sw128(b_base + buf * kBElems * sizeof(T) + kk * 2048, BK * 128, 1024), 1);
      wgmma::commit();
      // The loads of stage g + 2, issued under this stage's MMAs (at a tile's start the loader
      // waits for the next segment's offsets).
      const int nb = (g + kAhead) % kStages;
      loader.load(sa + nb * kAElems, sb + nb * kBElems);
      ptx::cp_async_commit();
      wgmma::wait<1>();
    }
    wgmma::wait<0>();
    // The tile's rows of dB, two elements a store.
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
  ptx::cp_async_wait<0>();
}

}  // namespace

template <typename T>
bool wide_takes(const WgradParams<T>& p) {
  return lean_takes(p) && p.q > 128;
}

template <typename T>
void launch_weight_grad_wide(const WgradParams<T>& p, StreamRef stream) {
  PIT_CHECK(wide_takes(p), "cuda::gather_weight_grad: the wide kernel was launched for a case it does not take");
  WideParams<T> w{p, static_cast<int>((p.q + BN - 1) / BN), 0};
  const int64_t tiles = int64_t{p.segments} * p.m_tiles * w.n_tiles;
  PIT_CHECK(tiles < INT32_MAX, "cuda::gather_weight_grad: too many output tiles (", tiles, ")");
  w.tiles = static_cast<int>(tiles);
  const auto run = [&]<bool kXg, bool kYg>() {
    auto* kernel = weight_grad_wide_kernel<T, kXg, kYg>;
    const int per_sm = allow_smem(kernel, kSmem<T>, kThreads);
    const auto grid = static_cast<unsigned>(persistent_grid(tiles, per_sm));
    kernel<<<grid, kThreads, kSmem<T>, native(stream)>>>(w);
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
