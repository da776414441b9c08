// The M-gather PIT GEMM (gather_gemm.cu's contract) on the persistent, warp-specialised wgmma
// engine (ws_core.cuh), f16/bf16, Engine::wgmma_persistent. One block per SM walks the work tiles
// (gather_core.cuh) t = blockIdx.x, blockIdx.x + gridDim.x, ...:
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
#include "ops/pit/cuda/ws_core.cuh"

namespace pit::sparse::cuda {
namespace {

// A K-major; B N-major ([K, N]) or K-major ([N, K], kBTrans).
template <typename T, bool kBTrans>
using GatherWsCfg = dev::WsCfg<T, false, !kBTrans, 4>;

template <typename T, bool kBTrans>
__global__ void __launch_bounds__(GatherWsCfg<T, kBTrans>::kThreads, 1) gather_ws_kernel(const GatherParams<T> p) {
  using Cfg = GatherWsCfg<T, kBTrans>;
  namespace mbar = pit::cuda::mbar;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, kHalf = BM / 2;
  extern __shared__ uint4 smem_raw[];
  const dev::WsRing<Cfg> ring(dev::tile_base<Cfg>(smem_raw));
  int64_t* a_off = reinterpret_cast<int64_t*>(reinterpret_cast<char*>(ring.tiles) + Cfg::kSmem);  // [BM], producers
  int32_t* c_row = reinterpret_cast<int32_t*>(a_off + BM);  // [BM], consumers: each warpgroup fills its rows
  float* scale = reinterpret_cast<float*>(c_row + BM);      // [BM], likewise
  int32_t* tiles = reinterpret_cast<int32_t*>(scale + BM);  // [segments + 1] tile prefix
  dev::tile_prefix<BM>(p.offsets, p.segments, tiles);
  ring.init();  // ends with a block barrier: the prefix is visible
  const int total = tiles[p.segments] * p.n_tiles;
  // Tile t's k range: the K-chunk of its segment, or all of K.
  const auto k_range = [&](int s, int64_t& k_beg) {
    k_beg = p.seg_cols > 0 ? s * p.seg_cols : 0;
    return static_cast<int>((p.seg_cols > 0 ? min(p.k, k_beg + p.seg_cols) : p.k) - k_beg);
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
  } else {
    const int ctid = threadIdx.x - Cfg::kConsumerBase, wg = ctid / 128, wtid = ctid % 128;
    dev::Acc<Cfg> acc;
    uint32_t it = 0;
    for (int t = blockIdx.x; t < total; t += gridDim.x) {
      const dev::TileAt at = dev::locate<BM>(tiles, p.offsets, p.segments, p.n_tiles, t);
      int64_t k_beg = 0;
      const int k_len = k_range(at.s, k_beg);
      dev::ws_consume<Cfg>(acc, ring, it, (k_len + BK - 1) / BK);
      if (wtid < kHalf) {  // this warpgroup's rows of the table
        const int r = wg * kHalf + wtid, e = at.e0 + r;
        const bool ok = r < at.count;
        c_row[r] = ok ? (p.c_scattered ? p.rows[e] : e) : -1;
        scale[r] = ok && p.weights ? p.weights[e] : 1.f;
      }
      dev::EpiArgs epi = p.epi;
      if (epi.bias) epi.bias = static_cast<const T*>(epi.bias) + at.s * p.bias_seg_stride;
      dev::ws_store_tile<Cfg>(acc, ring, [&](int r) {
        const int row = c_row[r];
        return row >= 0 ? dev::RowDst<T>{p.c + int64_t{row} * p.n, scale[r]} : dev::RowDst<T>{nullptr, 0.f};
      }, int64_t{at.nt} * BN, p.n, epi);
    }
  }
}

}  // namespace

template <typename T, bool kBTrans>
void launch_gather_ws(const GatherParams<T>& p, int64_t capacity, StreamRef stream) {
  using Cfg = GatherWsCfg<T, kBTrans>;
  PIT_CHECK(p.a_fast && p.b_fast,
            "cuda::gather_gemm: the persistent wgmma engine needs 16-byte aligned rows of A and B (K and N "
            "multiples of 8, K-chunk widths too); use Engine::automatic");
  const size_t smem = Cfg::kSmem + Cfg::kAlignSlack + Cfg::BM * (sizeof(int64_t) + sizeof(int32_t) + sizeof(float)) +
                      sizeof(int32_t) * (p.segments + 1);
  auto* kernel = gather_ws_kernel<T, kBTrans>;
  const int per_sm = allow_smem(kernel, smem, Cfg::kThreads);
  const int64_t bound = ((capacity + Cfg::BM - 1) / Cfg::BM + p.segments) * p.n_tiles;
  PIT_CHECK(bound < INT32_MAX, "cuda::gather_gemm: up to ", bound,
            " output tiles for the persistent engine, which counts them in 32 bits; use Engine::automatic");
  const int64_t grid = std::max<int64_t>(1, std::min<int64_t>(bound, int64_t{sm_count()} * per_sm));
  kernel<<<static_cast<unsigned>(grid), Cfg::kThreads, smem, native(stream)>>>(p);
  check_launch("cuda::gather_gemm (persistent engine)");
}

template void launch_gather_ws<Half, false>(const GatherParams<Half>&, int64_t, StreamRef);
template void launch_gather_ws<Half, true>(const GatherParams<Half>&, int64_t, StreamRef);
template void launch_gather_ws<BFloat16, false>(const GatherParams<BFloat16>&, int64_t, StreamRef);
template void launch_gather_ws<BFloat16, true>(const GatherParams<BFloat16>&, int64_t, StreamRef);

}  // namespace pit::sparse::cuda
