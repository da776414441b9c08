// The M-gather PIT GEMM (gather_gemm.cu's contract) on the persistent, warp-specialised wgmma
// engine (ws_core.cuh), f16/bf16, Engine::wgmma_persistent, and on its ping-pong variant
// (pp_core.cuh: one producer warpgroup, the two consumer warpgroups each taking whole tiles in
// turns, the same producer code; Engine::wgmma_pingpong, gather_gemm's choice for experts). One
// block per SM walks the work tiles (gather_core.cuh) t = blockIdx.x, blockIdx.x + gridDim.x, ...:
// - producers (two warpgroups): per tile, the A row offsets of its entries into shared memory
//   (named barrier 1 over the producers), the SRead cursors, then its k-stages into the 4-deep
//   ring, as far ahead of the MMAs as the ring allows, across tiles: the next tile's rows stream
//   in under this tile's epilogue. Expert weights, each read by the few row tiles of its tokens,
//   come from DRAM, and the MoE GEMMs waited on those loads (docs/BENCHMARKS.md, issue #7);
// - consumers (two warpgroups, rows 0-63 and 64-127): the MMAs, then each warpgroup stages its 64
//   rows of the f32 tile, looks up their destination rows and gates (its own table: the producers
//   are already on a later tile) and SWrites them (named barriers 2 and 3).
// No split K: tiles fewer than the SMs leave SMs idle (gather_gemm.cu picks this engine only where
// the tiles outnumber them). Every SRead chunk is one 16-byte cp.async (the ring's full barriers
// count cp.async completions), so A's and B's rows must be 16-byte aligned.
#include <algorithm>

#include "ops/cuda/mbarrier_ptx.cuh"
#include "ops/pit/cuda/gather_core.cuh"
#include "ops/pit/cuda/launch.cuh"
#include "ops/pit/cuda/pp_core.cuh"
#include "ops/pit/cuda/ws_core.cuh"

namespace pit::sparse::cuda {
namespace {

// A K-major; B N-major ([K, N]) or K-major ([N, K], kBTrans). kPp: the ping-pong variant
// (pp_core.cuh).
template <typename T, bool kBTrans, bool kPp>
using GatherWsCfg = std::conditional_t<kPp, dev::PpCfg<T, false, !kBTrans, 4>, dev::WsCfg<T, false, !kBTrans, 4>>;

template <typename T, bool kBTrans, bool kPp>
__global__ void __launch_bounds__(GatherWsCfg<T, kBTrans, kPp>::kThreads, 1)
    gather_ws_kernel(const GatherParams<T> p) {
  using Cfg = GatherWsCfg<T, kBTrans, kPp>;
  namespace mbar = pit::cuda::mbar;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, kHalf = BM / 2;
  extern __shared__ uint4 smem_raw[];
  const dev::WsRing<Cfg> ring(dev::tile_base<Cfg>(smem_raw));
  int64_t* a_off = reinterpret_cast<int64_t*>(reinterpret_cast<char*>(ring.tiles) + Cfg::kSmem);  // [BM], producers
  // [2 BM] each, consumers: each warpgroup fills its rows (ping-pong: its own BM rows).
  int32_t* c_row = reinterpret_cast<int32_t*>(a_off + BM);
  float* scale = reinterpret_cast<float*>(c_row + 2 * BM);
  int32_t* tiles = reinterpret_cast<int32_t*>(scale + 2 * BM);  // [segments + 1] tile prefix
  dev::tile_prefix<BM>(p.offsets, p.segments, tiles);
  ring.init();  // ends with a block barrier: the prefix is visible
  const int total = tiles[p.segments] * p.n_tiles;
  // Tile t's k range: the K-chunk of its segment, or all of K.
  const auto k_range = [&](int s, int64_t& k_beg) {
    k_beg = p.seg_cols > 0 ? s * p.seg_cols : 0;
    return static_cast<int>((p.seg_cols > 0 ? min(p.k, k_beg + p.seg_cols) : p.k) - k_beg);
  };
  // The consumers' epilogue pieces: tile row r's destination row and gate into the tables rt / st
  // (row -1: past the tile's entries), tile `at`'s epilogue arguments, and the rows' destinations.
  const auto fill_row = [&](const dev::TileAt& at, int r, int32_t* rt, float* st) {
    const int e = at.e0 + r;
    const bool ok = r < at.count;
    rt[r] = ok ? (p.c_scattered ? p.rows[e] : e) : -1;
    st[r] = ok && p.weights ? p.weights[e] : 1.f;
  };
  const auto epi_of = [&](const dev::TileAt& at) {
    dev::EpiArgs epi = p.epi;
    if (epi.bias) epi.bias = static_cast<const T*>(epi.bias) + at.s * p.bias_seg_stride;
    return epi;
  };
  const auto dst_of = [&](const int32_t* rt, const float* st) {
    return [=](int r) {
      const int row = rt[r];
      return row >= 0 ? dev::RowDst<T>{p.c + int64_t{row} * p.n, st[r]} : dev::RowDst<T>{nullptr, 0.f};
    };
  };
  if (threadIdx.x < Cfg::kProducers) {
    const int tid = threadIdx.x;
    dev::StridedReader<T, BM, BK, typename Cfg::ALayout, Cfg::kProducers, true> ra;
    using BReader =
        std::conditional_t<kBTrans, dev::StridedReader<T, BN, BK, typename Cfg::BLayout, Cfg::kProducers, true>,
                           dev::StridedReader<T, BK, BN, typename Cfg::BLayout, Cfg::kProducers, false>>;
    BReader rb;
    int k_len = 0;
    const auto begin = [&](int t) {
      const dev::TileAt at = dev::locate<BM>(tiles, p.offsets, p.segments, p.n_tiles, t);
      int64_t k_beg = 0;
      k_len = k_range(at.s, k_beg);
      const int64_t n0 = int64_t{at.nt} * BN;
      const T* bs = p.b + at.s * p.b_seg_stride;
      mbar::sync_named(1, Cfg::kProducers);  // every producer has made its cursors from the last table
      for (int r = tid; r < BM; r += Cfg::kProducers) {
        const int e = at.e0 + r;
        a_off[r] = r < at.count ? int64_t{p.a_gathered ? p.rows[e] : e} * p.k : -1;
      }
      mbar::sync_named(1, Cfg::kProducers);
      ra.init(tid, [&](int r, int c) {
        const int64_t off = a_off[r];
        return dev::Src<T>{p.a + (off < 0 ? 0 : off) + k_beg + c, off < 0 ? 0 : Cfg::V};
      });
      rb.init(tid, [&](int r, int c) {
        if constexpr (kBTrans) return dev::Src<T>{bs + (n0 + r) * p.k + k_beg + c, n0 + r < p.n ? Cfg::V : 0};
        else return dev::Src<T>{bs + (k_beg + r) * p.n + n0 + c, dev::valid_n(p.n - n0 - c, Cfg::V)};
      });
      return (k_len + BK - 1) / BK;
    };
    const auto load = [&](int kt, T* sa, T* sb) {
      const int kb = kt * BK;
      ra.load(sa, tid, kb, k_len - kb, true, p.a);
      rb.load(sb, tid, kBTrans ? int64_t{kb} : int64_t{kb} * p.n, k_len - kb, true, p.b);
    };
    dev::ws_produce<Cfg>(ring, total, begin, load);
  } else if constexpr (kPp) {
    const int ctid = threadIdx.x - Cfg::kConsumerBase, wg = ctid / 128, wtid = ctid % 128;
    int32_t* my_row = c_row + wg * BM;  // this warpgroup's tables: whole tiles
    float* my_scale = scale + wg * BM;
    struct Plan {
      dev::TileAt at;
      int num_k, rows;
    };
    dev::pp_consume<Cfg>(ring, total, [&](int t) {
      const dev::TileAt at = dev::locate<BM>(tiles, p.offsets, p.segments, p.n_tiles, t);
      int64_t k_beg = 0;
      return Plan{at, (k_range(at.s, k_beg) + BK - 1) / BK, at.count};
    }, [&](const Plan& tile, const dev::Acc<Cfg>& acc) {
      fill_row(tile.at, wtid, my_row, my_scale);  // this thread's row of the table
      dev::pp_store_tile<Cfg>(acc, ring, dst_of(my_row, my_scale), tile.rows, int64_t{tile.at.nt} * BN, p.n,
                              epi_of(tile.at));
    });
  } else {
    const int ctid = threadIdx.x - Cfg::kConsumerBase, wg = ctid / 128, wtid = ctid % 128;
    dev::Acc<Cfg> acc;
    uint32_t it = 0;
    for (int t = blockIdx.x; t < total; t += gridDim.x) {
      const dev::TileAt at = dev::locate<BM>(tiles, p.offsets, p.segments, p.n_tiles, t);
      int64_t k_beg = 0;
      const int k_len = k_range(at.s, k_beg);
      dev::ws_consume<Cfg>(acc, ring, it, (k_len + BK - 1) / BK);
      if (wtid < kHalf) fill_row(at, wg * kHalf + wtid, c_row, scale);  // this warpgroup's rows of the table
      dev::ws_store_tile<Cfg>(acc, ring, dst_of(c_row, scale), int64_t{at.nt} * BN, p.n, epi_of(at));
    }
  }
}

}  // namespace

template <typename T, bool kBTrans, bool kPp>
void launch_gather_ws(const GatherParams<T>& p, int64_t capacity, StreamRef stream) {
  using Cfg = GatherWsCfg<T, kBTrans, kPp>;
  PIT_CHECK(p.a_fast && p.b_fast,
            "cuda::gather_gemm: the persistent wgmma engine needs 16-byte aligned rows of A and B (K and N "
            "multiples of 8, K-chunk widths too); use Engine::automatic");
  const size_t smem = Cfg::kSmem + Cfg::kAlignSlack +
                      Cfg::BM * (sizeof(int64_t) + 2 * (sizeof(int32_t) + sizeof(float))) +
                      sizeof(int32_t) * (p.segments + 1);
  auto* kernel = gather_ws_kernel<T, kBTrans, kPp>;
  const int per_sm = allow_smem(kernel, smem, Cfg::kThreads);
  const int64_t bound = ((capacity + Cfg::BM - 1) / Cfg::BM + p.segments) * p.n_tiles;
  PIT_CHECK(bound < INT32_MAX, "cuda::gather_gemm: up to ", bound,
            " output tiles for the persistent engine, which counts them in 32 bits; use Engine::automatic");
  const int64_t grid = persistent_grid(bound, per_sm);
  kernel<<<static_cast<unsigned>(grid), Cfg::kThreads, smem, native(stream)>>>(p);
  check_launch("cuda::gather_gemm (persistent engine)");
}

int set_persistent_grid_cap(int blocks) {
  PIT_CHECK(blocks >= 0, "set_persistent_grid_cap: blocks must be >= 0 (0: no cap), got ", blocks);
  return persistent_grid_cap().exchange(blocks);
}

template void launch_gather_ws<Half, false, false>(const GatherParams<Half>&, int64_t, StreamRef);
template void launch_gather_ws<Half, true, false>(const GatherParams<Half>&, int64_t, StreamRef);
template void launch_gather_ws<BFloat16, false, false>(const GatherParams<BFloat16>&, int64_t, StreamRef);
template void launch_gather_ws<BFloat16, true, false>(const GatherParams<BFloat16>&, int64_t, StreamRef);
template void launch_gather_ws<Half, false, true>(const GatherParams<Half>&, int64_t, StreamRef);
template void launch_gather_ws<Half, true, true>(const GatherParams<Half>&, int64_t, StreamRef);
template void launch_gather_ws<BFloat16, false, true>(const GatherParams<BFloat16>&, int64_t, StreamRef);
template void launch_gather_ws<BFloat16, true, true>(const GatherParams<BFloat16>&, int64_t, StreamRef);

}  // namespace pit::sparse::cuda
