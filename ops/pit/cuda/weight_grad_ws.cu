// The weight gradient of the M-gather (weight_grad.cu's contract) on the persistent,
// warp-specialised wgmma engine (ws_core.cuh), f16/bf16. An expert's tile of dW reduces over only
// its ~256 entries (4 stages of 64 at T = 16384, E = 64), so with a block per tile most of a
// block's time went to filling its pipeline and writing its tile. Here one block per SM walks
// the tiles t = blockIdx.x, blockIdx.x + gridDim.x, ... (weight_grad_core.cuh's order):
// - producers (two warpgroups; one in the ping-pong variant): each stage's entry rows from the index, then its copies of the X
//   and Y rows into the 4-deep ring, running ahead across tiles (the next tiles' rows stream in
//   under this tile's MMAs and epilogue). With entry weights, the Y rows must be scaled once they
//   have landed: a producer issues stage i + 1's copies, waits for stage i's (cp.async groups),
//   scales its own chunks of stage i, and only then arrives on its `full` barrier;
// - consumers (two warpgroups): the MMAs, then each warpgroup stages its 64 rows of the f32 tile
//   and writes them (named barriers 2 and 3); in the ping-pong variant each takes whole tiles in
//   turns (pp_core.cuh). Every output element has one owner.
// Every SRead chunk is one 16-byte cp.async: X's and Y's rows must be 16-byte aligned.
// Measured slower than weight_grad.cu's wgmma engine on MoE (H200, top-1 uniform: dW1 0.673
// against 0.628 ms, dW2 from the gated h 0.664 against 0.622; 7-14% slower over the four cases),
// so only Engine::wgmma_persistent runs it: the one block an SM leaves the tensor cores idle
// through each tile's epilogue, as long as its 4 k-steps here. Its ping-pong variant
// (Engine::wgmma_pingpong: one producer warpgroup, the consumer warpgroups taking whole tiles in
// turns, pp_core.cuh) measured slower still (0.698 and 0.690 ms, 11-19% slower): one warpgroup
// of producers does not keep two gathered operands coming.
//
// kTma (Engine::wgmma_tma, wgmma_tma_pingpong): the stages come in by TMA instead
// (ops/cuda/tma_ptx.cuh). The producer warpgroup's four warps each own one slot of the 4-deep
// ring (stages it = warp, warp + 4, ...): a warp waits for its slot to be empty, expects the
// stage's 32 KB on its `full` barrier, and issues its loads (ws_core.cuh tma_produce): a gathered
// operand (or a compact one's last, partial stage) as one TMA per entry row and 64-column half
// (row boxes, written at the row's place in the swizzled tile), a compact operand's whole stages
// as two 64 x 64 boxes. Entries past the segment's end load a row past the matrix's last: zeros.
// The 256 producer threads of the
// cp.async variants issued 16 copies each a stage plus their address arithmetic; here a stage
// is at most 4 + 4 TMAs a lane of one warp. Measured on an H200 (`PIT_BENCH_MOE_PARTS=1 pit-bench
// moe`): about twice as slow as the cp.async engines (dW1 top-1 1.21-1.32 against 0.67 ms), the
// M-gather's TMA variant (gather_ws.cu) likewise; kept for measurements, `automatic` avoids them.
#include <algorithm>

#include "ops/cuda/mbarrier_ptx.cuh"
#include "ops/cuda/tensor_map.h"
#include "ops/cuda/tma_ptx.cuh"
#include "ops/pit/cuda/launch.cuh"
#include "ops/pit/cuda/pp_core.cuh"
#include "ops/pit/cuda/weight_grad_core.cuh"
#include "ops/pit/cuda/ws_core.cuh"

namespace pit::sparse::cuda {
namespace {

// kPp: the ping-pong variant (pp_core.cuh): one producer warpgroup, the consumer warpgroups taking
// whole tiles in turns. kTma: one producer warpgroup, loading by TMA.
template <typename T, bool kPp, bool kTma>
using WgradWsCfg = std::conditional_t<kPp, dev::PpCfg<T, true, true, 4>, dev::WsCfg<T, true, true, 4, kTma ? 1 : 2>>;

// The TMA producer's tensor maps of X and Y: boxes of one row and of a whole stage (BK rows), 64
// columns each.
struct WgradMaps {
  CUtensorMap x_row, x_stage, y_row, y_stage;
};

template <typename T, bool kPp, bool kTma>
__global__ void __launch_bounds__(WgradWsCfg<T, kPp, kTma>::kThreads, 1)
    weight_grad_ws_kernel(const WgradParams<T> p, const __grid_constant__ WgradMaps maps) {
  using Cfg = WgradWsCfg<T, kPp, kTma>;
  namespace mbar = pit::cuda::mbar;
  namespace ptx = pit::cuda::ptx;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, V = Cfg::V, S = Cfg::kStages;
  static_assert(BM == BN, "the X and Y tiles share their rows' walk");
  extern __shared__ uint4 smem_raw[];
  const dev::WsRing<Cfg> ring(dev::tile_base<Cfg>(smem_raw));
  ring.init(kTma ? 1 : Cfg::kProducers);  // TMA: the producer warp's arrive.expect_tx, then the bytes
  const int per_seg = p.m_tiles * p.n_tiles, total = p.segments * per_seg;
  struct Tile {
    int s, e0, count;
    int64_t m0, n0;
  };
  const auto tile_at = [&](int t) {
    const int s = t / per_seg, mt = (t / p.n_tiles) % p.m_tiles, nt = t % p.n_tiles;
    const int e0 = p.offsets[s];
    return Tile{s, e0, p.offsets[s + 1] - e0, int64_t{mt} * BM, int64_t{nt} * BN};
  };
  if constexpr (kTma) {
    if (threadIdx.x < Cfg::kProducers) {
      static_assert(BK == 64 && BM == 128 && BN == 128, "the boxes: 64 entry rows x two 64-column halves");
      constexpr uint32_t kHalfBytes = BK * 64 * sizeof(T);  // one 64-column strip of a stage's tile
      const int lane = static_cast<int>(threadIdx.x) % 32;
      if (threadIdx.x == 0) {
        pit::cuda::tma::prefetch(&maps.x_row);
        pit::cuda::tma::prefetch(&maps.y_row);
        pit::cuda::tma::prefetch(&maps.x_stage);
        pit::cuda::tma::prefetch(&maps.y_stage);
      }
      const bool gathered = p.x_gathered || p.y_gathered;
      Tile tile{};
      dev::tma_produce<Cfg, 4 * kHalfBytes>(ring, total, [&](int t) {
        tile = tile_at(t);
        return (tile.count + BK - 1) / BK;
      }, [&](int kt, int slot, uint32_t bar) {
        const uint32_t xs = ptx::smem_u32(ring.a(slot)), ys = ptx::smem_u32(ring.b(slot));
        const int j0 = kt * BK;
        const bool whole = j0 + BK <= tile.count;
        const int32_t xc = static_cast<int32_t>(tile.m0), yc = static_cast<int32_t>(tile.n0);
        // A compact operand's whole stage: two boxes of BK rows (lanes 0 and 1, one half each).
        if (whole && !p.x_gathered && lane < 2)
          pit::cuda::tma::load_2d(xs + lane * kHalfBytes, &maps.x_stage, xc + 64 * lane, tile.e0 + j0, bar);
        if (whole && !p.y_gathered && lane < 2)
          pit::cuda::tma::load_2d(ys + lane * kHalfBytes, &maps.y_stage, yc + 64 * lane, tile.e0 + j0, bar);
        if (whole && !gathered) return;
        // Row boxes (a gathered operand, or a compact one in its segment's last, partial stage):
        // lane l takes the stage's rows l and l + 32; those past the segment read zeros.
#pragma unroll
        for (int i = lane; i < BK; i += 32) {
          const int j = j0 + i, e = tile.e0 + j;
          const bool in = j < tile.count;
          const int named = in && gathered ? p.rows[e] : e;
          const uint32_t row_at = static_cast<uint32_t>(i) * 128;  // the row's place in each strip
          if (p.x_gathered || !whole) {
            const int32_t r = in ? (p.x_gathered ? named : e) : static_cast<int32_t>(p.x_rows);
#pragma unroll
            for (int h = 0; h < 2; ++h)
              pit::cuda::tma::load_2d(xs + h * kHalfBytes + row_at, &maps.x_row, xc + 64 * h, r, bar);
          }
          if (p.y_gathered || !whole) {
            const int32_t r = in ? (p.y_gathered ? named : e) : static_cast<int32_t>(p.y_rows);
#pragma unroll
            for (int h = 0; h < 2; ++h)
              pit::cuda::tma::load_2d(ys + h * kHalfBytes + row_at, &maps.y_row, yc + 64 * h, r, bar);
          }
        }
      });
      return;  // the consumers synchronise among themselves only (named barriers)
    }
  }
  if (!kTma && threadIdx.x < Cfg::kProducers) {
    const int tid = threadIdx.x;
    using Walk = dev::ChunkWalk<T, BK, BM, Cfg::kProducers>;
    dev::RowGatherReader<T, BK, BM, typename Cfg::ALayout, Cfg::kProducers> rx;
    dev::RowGatherReader<T, BK, BN, typename Cfg::BLayout, Cfg::kProducers> ry;
    const bool gathered = p.x_gathered || p.y_gathered;
    Tile tile{};
    // With weights: the stage whose copies are in flight and not yet arrived on (-1: none), and
    // the weights of this thread's chunks there.
    int pending = -1;
    float scale[Walk::kPer];
    const auto finish_pending = [&]() {
      dev::scale_own_chunks<T, Walk, typename Cfg::BLayout>(ring.b(pending), tid, scale);
      pit::cuda::wgmma::fence_smem_for_async();  // the scaled values before wgmma reads them
      mbar::arrive(ring.full(pending));
    };
    uint32_t it = 0;  // stages issued so far, over all tiles (ws_core.cuh's count)
    for (int t = blockIdx.x; t < total; t += gridDim.x) {
      tile = tile_at(t);
      rx.init(tid, [&](int, int c) { return dev::Src<T>{p.x + tile.m0 + c, dev::valid_n(p.p - tile.m0 - c, V)}; });
      ry.init(tid, [&](int, int c) { return dev::Src<T>{p.y + tile.n0 + c, dev::valid_n(p.q - tile.n0 - c, V)}; });
      const int num_k = (tile.count + BK - 1) / BK;
      for (int kt = 0; kt < num_k; ++kt, ++it) {
        const int slot = static_cast<int>(it % S);
        mbar::wait(ring.empty(slot), ((it / S) & 1) ^ 1);
        int64_t ox[Walk::kPer], oy[Walk::kPer];
#pragma unroll
        for (int c = 0; c < Walk::kPer; ++c) {
          const int j = kt * BK + Walk::row(c, tid), e = tile.e0 + j;  // compact operands are by entry
          const int named = j < tile.count ? (gathered ? p.rows[e] : e) : -1;
          ox[c] = named < 0 ? -1 : int64_t{p.x_gathered ? named : e} * p.ldx;
          oy[c] = named < 0 ? -1 : int64_t{p.y_gathered ? named : e} * p.ldy;
        }
        rx.load_chunks(ring.a(slot), tid, ox, true, p.x);
        ry.load_chunks(ring.b(slot), tid, oy, true, p.y);
        if (!p.weights) {
          mbar::arrive_on_cp_async(ring.full(slot));
          continue;
        }
        ptx::cp_async_commit();
        if (pending >= 0) {
          ptx::cp_async_wait<1>();  // the pending stage's copies (this thread's) have landed
          finish_pending();
        }
        pending = slot;
#pragma unroll
        for (int c = 0; c < Walk::kPer; ++c) {
          const int j = kt * BK + Walk::row(c, tid);
          scale[c] = j < tile.count ? p.weights[tile.e0 + j] : 0.f;
        }
      }
    }
    if (pending >= 0) {
      ptx::cp_async_wait<0>();
      finish_pending();
    }
    mbar::cp_async_wait_all();
  } else if constexpr (kPp) {
    struct Plan {
      Tile tile;
      int num_k, rows;  // rows: of the output tile inside dB
    };
    dev::pp_consume<Cfg>(ring, total, [&](int t) {
      const Tile tile = tile_at(t);
      return Plan{tile, (tile.count + BK - 1) / BK, static_cast<int>(std::min<int64_t>(BM, p.p - tile.m0))};
    }, [&](const Plan& plan, const dev::Acc<Cfg>& acc) {
      const Tile& tile = plan.tile;
      T* out = p.out + int64_t{tile.s} * p.p * p.q;
      dev::pp_store_tile<Cfg>(acc, ring, [&](int r) {
        const int64_t row = tile.m0 + r;
        return row < p.p ? dev::RowDst<T>{out + row * p.q, 1.f} : dev::RowDst<T>{nullptr, 1.f};
      }, plan.rows, tile.n0, p.q, p.epi);
    });
  } else {
    dev::Acc<Cfg> acc;
    uint32_t it = 0;
    for (int t = blockIdx.x; t < total; t += gridDim.x) {
      const Tile tile = tile_at(t);
      dev::ws_consume<Cfg>(acc, ring, it, (tile.count + BK - 1) / BK);
      T* out = p.out + int64_t{tile.s} * p.p * p.q;
      dev::ws_store_tile<Cfg>(acc, ring, [&](int r) {
        const int64_t row = tile.m0 + r;
        return row < p.p ? dev::RowDst<T>{out + row * p.q, 1.f} : dev::RowDst<T>{nullptr, 1.f};
      }, tile.n0, p.q, p.epi);
    }
  }
}

}  // namespace

template <typename T, bool kPp, bool kTma>
void launch_weight_grad_ws(const WgradParams<T>& p, StreamRef stream) {
  using Cfg = WgradWsCfg<T, kPp, kTma>;
  PIT_CHECK(p.x_fast && p.y_fast,
            "cuda::gather_weight_grad: the persistent wgmma engine needs 16-byte aligned rows of A and G (K and N "
            "multiples of 8); use Engine::automatic");
  WgradMaps maps{};
  if constexpr (kTma) {
    PIT_CHECK(p.weights == nullptr,
              "cuda::gather_weight_grad: the TMA engines do not scale by the entry weights (use_weights); use "
              "Engine::automatic or wgmma_persistent");
    PIT_CHECK(p.x_rows < INT32_MAX && p.y_rows < INT32_MAX,
              "cuda::gather_weight_grad: the TMA engines address rows in 32 bits; use Engine::automatic");
    constexpr DType kType = std::is_same_v<T, Half> ? DType::f16 : DType::bf16;
    if (p.x_rows > 0 && p.y_rows > 0) {  // (else no entries: no stage is loaded)
      maps.x_row = pit::cuda::tensor_map_2d(kType, p.x, p.x_rows, p.p, p.ldx, 1, "gather_weight_grad's X");
      maps.x_stage = pit::cuda::tensor_map_2d(kType, p.x, p.x_rows, p.p, p.ldx, Cfg::BK, "gather_weight_grad's X");
      maps.y_row = pit::cuda::tensor_map_2d(kType, p.y, p.y_rows, p.q, p.ldy, 1, "gather_weight_grad's Y");
      maps.y_stage = pit::cuda::tensor_map_2d(kType, p.y, p.y_rows, p.q, p.ldy, Cfg::BK, "gather_weight_grad's Y");
    }
  }
  auto* kernel = weight_grad_ws_kernel<T, kPp, kTma>;
  const size_t smem = Cfg::kSmem + Cfg::kAlignSlack;
  const int per_sm = allow_smem(kernel, smem, Cfg::kThreads);
  const int64_t tiles = int64_t{p.segments} * p.m_tiles * p.n_tiles;
  const int64_t grid = persistent_grid(tiles, per_sm);
  kernel<<<static_cast<unsigned>(grid), Cfg::kThreads, smem, native(stream)>>>(p, maps);
  check_launch(kTma ? "cuda::gather_weight_grad (persistent engine, TMA)" : "cuda::gather_weight_grad (persistent engine)");
}

template void launch_weight_grad_ws<Half, false, false>(const WgradParams<Half>&, StreamRef);
template void launch_weight_grad_ws<BFloat16, false, false>(const WgradParams<BFloat16>&, StreamRef);
template void launch_weight_grad_ws<Half, true, false>(const WgradParams<Half>&, StreamRef);
template void launch_weight_grad_ws<BFloat16, true, false>(const WgradParams<BFloat16>&, StreamRef);
template void launch_weight_grad_ws<Half, false, true>(const WgradParams<Half>&, StreamRef);
template void launch_weight_grad_ws<BFloat16, false, true>(const WgradParams<BFloat16>&, StreamRef);
template void launch_weight_grad_ws<Half, true, true>(const WgradParams<Half>&, StreamRef);
template void launch_weight_grad_ws<BFloat16, true, true>(const WgradParams<BFloat16>&, StreamRef);

}  // namespace pit::sparse::cuda
