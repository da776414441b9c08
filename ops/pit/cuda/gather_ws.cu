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
//
// kTmaB (ping-pong on expert segments, gather_gemm's choice for MoE): B's stage comes by TMA, one
// box (K-major) or two (N-major) issued by producer thread 0, which also arrives on the stage's
// `full` barrier expecting their bytes, and B's need no addresses worked out thread by thread.
// Gathered A rows (the up and gu GEMMs) still come by cp.async as above; a compact A (the down and
// dx GEMMs) is one more box of the tile's 128 rows from its first entry on (GatherMaps::a_box;
// rows past the expert's entries are computed and not written), so those producers issue no
// copies at all (on an H100 the down and dx GEMMs 9-19 % faster, docs/BENCHMARKS.md).
//
// kTma (Engine::wgmma_tma, wgmma_tma_pingpong; expert segments only): the stages come in by TMA
// (ops/cuda/tma_ptx.cuh, ws_core.cuh tma_produce: the producer warpgroup's four warps each own a
// ring slot). A stage of A is one TMA per row of the tile (gathered rows, or a compact tile's rows
// when it has fewer than BM; rows past the tile's entries read a row past A's last: zeros), or one
// box of BM rows for a whole compact tile; B is one box (K-major) or two (N-major) of the expert's
// matrix in a rank-3 map over the experts, so that a ragged K or N reads zeros past the expert's
// own, never the next expert's rows.
#include <algorithm>
#include <atomic>
#include <cstdlib>

#include "ops/cuda/mbarrier_ptx.cuh"
#include "ops/cuda/tensor_map.h"
#include "ops/cuda/tma_ptx.cuh"
#include "ops/pit/cuda/gather_core.cuh"
#include "ops/pit/cuda/launch.cuh"
#include "ops/pit/cuda/pp_core.cuh"
#include "ops/pit/cuda/ws_core.cuh"

namespace pit::sparse::cuda {
namespace {

// A K-major; B N-major ([K, N]) or K-major ([N, K], kBTrans). kPp: the ping-pong variant
// (pp_core.cuh). kTma: one producer warpgroup, loading by TMA.
template <typename T, bool kBTrans, bool kPp, bool kTma>
using GatherWsCfg = std::conditional_t<kPp, dev::PpCfg<T, false, !kBTrans, 4>,
                                       dev::WsCfg<T, false, !kBTrans, 4, kTma ? 1 : 2>>;

// The TMA producer's tensor maps: A in boxes of one row and of BM rows (64 columns of k), B over
// the experts (rank 3) in boxes of one stage (BN rows of k when K-major, BK rows of n otherwise).
struct GatherMaps {
  CUtensorMap a_row, a_tile, b;
  int32_t a_rows;  // rows of A: a row coordinate past them reads zeros
  bool a_box;      // kTmaB: a compact A's stage too by TMA, one box of BM rows (a_tile)
};

template <typename T, bool kBTrans, bool kPp, bool kTma, bool kTmaB>
__global__ void __launch_bounds__(GatherWsCfg<T, kBTrans, kPp, kTma>::kThreads, 1)
    gather_ws_kernel(const GatherParams<T> p, const __grid_constant__ GatherMaps maps) {
  using Cfg = GatherWsCfg<T, kBTrans, kPp, kTma>;
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
  ring.init(kTma ? 1 : Cfg::kProducers + (kTmaB ? 1 : 0));  // ends with a block barrier: the prefix is visible
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
  if constexpr (kTma) {
    if (threadIdx.x < Cfg::kProducers) {
      static_assert(BK == 64 && BM == 128 && BN == 128, "the boxes: 128 rows (or two 64-column halves) x 64");
      constexpr uint32_t kTileBytes = BM * BK * sizeof(T);  // A's and B's tiles of a stage, each
      constexpr int kRowsPerLane = BM / 32;
      const int lane = static_cast<int>(threadIdx.x) % 32;
      if (threadIdx.x == 0) {
        pit::cuda::tma::prefetch(&maps.a_row);
        pit::cuda::tma::prefetch(&maps.a_tile);
        pit::cuda::tma::prefetch(&maps.b);
      }
      dev::TileAt at{};
      int32_t arow[kRowsPerLane];  // A's row of the tile rows lane, lane + 32, ... (past A: zeros)
      bool whole = false;          // a compact tile of BM entries: one box
      dev::tma_produce<Cfg, 2 * kTileBytes>(ring, total, [&](int t) {
        at = dev::locate<BM>(tiles, p.offsets, p.segments, p.n_tiles, t);
        whole = !p.a_gathered && at.count == BM;
#pragma unroll
        for (int q = 0; q < kRowsPerLane; ++q) {
          const int r = lane + 32 * q, e = at.e0 + r;
          arow[q] = r < at.count ? (p.a_gathered ? p.rows[e] : e) : maps.a_rows;
        }
        return static_cast<int>((p.k + BK - 1) / BK);
      }, [&](int kt, int slot, uint32_t bar) {
        const uint32_t as = pit::cuda::ptx::smem_u32(ring.a(slot)), bs = pit::cuda::ptx::smem_u32(ring.b(slot));
        const int32_t k0 = kt * BK, n0 = at.nt * BN, s = p.b_seg_stride != 0 ? at.s : 0;
        if (whole) {
          if (lane == 0) pit::cuda::tma::load_2d(as, &maps.a_tile, k0, at.e0, bar);
        } else {
#pragma unroll
          for (int q = 0; q < kRowsPerLane; ++q)
            pit::cuda::tma::load_2d(as + (lane + 32 * q) * 128, &maps.a_row, k0, arow[q], bar);
        }
        if constexpr (kBTrans) {  // B_s [N, K]: BN rows of n, 64 of k
          if (lane == 1) pit::cuda::tma::load_3d(bs, &maps.b, k0, n0, s, bar);
        } else {  // B_s [K, N]: BK rows of k, two 64-column halves of n
          if (lane < 2) pit::cuda::tma::load_3d(bs + lane * (kTileBytes / 2), &maps.b, n0 + 64 * lane, k0, s, bar);
        }
      });
      return;  // the consumers synchronise among themselves only (named barriers)
    }
  }
  if (!kTma && threadIdx.x < Cfg::kProducers) {
    const int tid = threadIdx.x;
    dev::StridedReader<T, BM, BK, typename Cfg::ALayout, Cfg::kProducers, true> ra;
    using BReader =
        std::conditional_t<kBTrans, dev::StridedReader<T, BN, BK, typename Cfg::BLayout, Cfg::kProducers, true>,
                           dev::StridedReader<T, BK, BN, typename Cfg::BLayout, Cfg::kProducers, false>>;
    BReader rb;
    int k_len = 0;
    dev::TileAt at{};
    if (kTmaB && tid == 0) {
      pit::cuda::tma::prefetch(&maps.b);
      if (maps.a_box) pit::cuda::tma::prefetch(&maps.a_tile);
    }
    const auto begin = [&](int t) {
      at = dev::locate<BM>(tiles, p.offsets, p.segments, p.n_tiles, t);
      int64_t k_beg = 0;
      k_len = k_range(at.s, k_beg);
      const int64_t n0 = int64_t{at.nt} * BN;
      const T* bs = p.b + at.s * p.b_seg_stride;
      if (!(kTmaB && maps.a_box)) {
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
      }
      if constexpr (!kTmaB) {
        rb.init(tid, [&](int r, int c) {
          if constexpr (kBTrans) return dev::Src<T>{bs + (n0 + r) * p.k + k_beg + c, n0 + r < p.n ? Cfg::V : 0};
          else return dev::Src<T>{bs + (k_beg + r) * p.n + n0 + c, dev::valid_n(p.n - n0 - c, Cfg::V)};
        });
      }
      return (k_len + BK - 1) / BK;
    };
    if constexpr (kTmaB) {
      constexpr uint32_t kBBytes = BK * BN * sizeof(T), kABytes = BM * BK * sizeof(T);
      dev::ws_produce<Cfg>(ring, total, begin, [&](int kt, T* sa, T* sb, int slot) {
        const int kb = kt * BK;
        if (!maps.a_box) ra.load(sa, tid, kb, k_len - kb, true, p.a);
        if (tid == 0) {  // B's stage: the rank-3 map reads zeros past the expert's own K and N
          uint64_t* const full = ring.full(slot);
          pit::cuda::mbar::arrive_expect_tx(full, maps.a_box ? kBBytes + kABytes : kBBytes);
          const uint32_t bs = pit::cuda::ptx::smem_u32(sb), bar = pit::cuda::ptx::smem_u32(full);
          // A compact A's stage: the BM rows from the tile's first entry on (those past the expert's
          // entries belong to the next expert or read zeros past A: their outputs are not written).
          if (maps.a_box) pit::cuda::tma::load_2d(pit::cuda::ptx::smem_u32(sa), &maps.a_tile, kb, at.e0, bar);
          const int32_t n0 = at.nt * BN, s = p.b_seg_stride != 0 ? at.s : 0;
          if constexpr (kBTrans) {
            pit::cuda::tma::load_3d(bs, &maps.b, kb, n0, s, bar);
          } else {
            pit::cuda::tma::load_3d(bs, &maps.b, n0, kb, s, bar);
            pit::cuda::tma::load_3d(bs + kBBytes / 2, &maps.b, n0 + 64, kb, s, bar);
          }
        }
      });
    } else {
      dev::ws_produce<Cfg>(ring, total, begin, [&](int kt, T* sa, T* sb) {
        const int kb = kt * BK;
        ra.load(sa, tid, kb, k_len - kb, true, p.a);
        rb.load(sb, tid, kBTrans ? int64_t{kb} : int64_t{kb} * p.n, k_len - kb, true, p.b);
      });
    }
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

// set_gather_tma_b's setting, from PIT_GATHER_TMA_B (0: off) at first use.
std::atomic<bool>& gather_tma_b() {
  static std::atomic<bool> on{env_switch("PIT_GATHER_TMA_B", true)};
  return on;
}

// Whether kTmaB also loads a compact A by TMA (set_gather_tma_a; PIT_GATHER_TMA_A=0: off).
std::atomic<bool>& gather_tma_a() {
  static std::atomic<bool> on{env_switch("PIT_GATHER_TMA_A", true)};
  return on;
}

// B's map for TMA (kTma, kTmaB): boxes of one stage.
template <typename T, bool kBTrans, class Cfg>
CUtensorMap b_map(const GatherParams<T>& p) {
  return expert_b_map(p, kBTrans, kBTrans ? Cfg::BN : Cfg::BK);
}

template <typename T, bool kBTrans, bool kPp, bool kTma, bool kTmaB>
void launch_kernel(const GatherParams<T>& p, int64_t capacity, const GatherMaps& maps, StreamRef stream) {
  using Cfg = GatherWsCfg<T, kBTrans, kPp, kTma>;
  const size_t smem = Cfg::kSmem + Cfg::kAlignSlack +
                      Cfg::BM * (sizeof(int64_t) + 2 * (sizeof(int32_t) + sizeof(float))) +
                      sizeof(int32_t) * (p.segments + 1);
  auto* kernel = gather_ws_kernel<T, kBTrans, kPp, kTma, kTmaB>;
  const int per_sm = allow_smem(kernel, smem, Cfg::kThreads);
  const int64_t bound = ((capacity + Cfg::BM - 1) / Cfg::BM + p.segments) * p.n_tiles;
  PIT_CHECK(bound < INT32_MAX, "cuda::gather_gemm: up to ", bound,
            " output tiles for the persistent engine, which counts them in 32 bits; use Engine::automatic");
  const int64_t grid = persistent_grid(bound, per_sm);
  kernel<<<static_cast<unsigned>(grid), Cfg::kThreads, smem, native(stream)>>>(p, maps);
  check_launch(kTma || kTmaB ? "cuda::gather_gemm (persistent engine, TMA)" : "cuda::gather_gemm (persistent engine)");
}

}  // namespace

template <typename T, bool kBTrans, bool kPp, bool kTma>
void launch_gather_ws(const GatherParams<T>& p, int64_t capacity, int64_t a_rows, StreamRef stream) {
  using Cfg = GatherWsCfg<T, kBTrans, kPp, kTma>;
  PIT_CHECK(p.a_fast && p.b_fast,
            "cuda::gather_gemm: the persistent wgmma engine needs 16-byte aligned rows of A and B (K and N "
            "multiples of 8, K-chunk widths too); use Engine::automatic");
  GatherMaps maps{};
  if constexpr (kTma) {
    PIT_CHECK(p.seg_cols == 0,
              "cuda::gather_gemm: the TMA engines take expert segments only, not K-chunks; use Engine::automatic or "
              "wgmma_persistent");
    PIT_CHECK(a_rows < INT32_MAX, "cuda::gather_gemm: the TMA engines address A's rows in 32 bits; use "
              "Engine::automatic");
    constexpr DType kType = std::is_same_v<T, Half> ? DType::f16 : DType::bf16;
    if (p.k > 0) {  // (without k no stage is loaded)
      maps.a_row = pit::cuda::tensor_map_2d(kType, p.a, a_rows, p.k, p.k, 1, "gather_gemm's A");
      maps.a_tile = pit::cuda::tensor_map_2d(kType, p.a, a_rows, p.k, p.k, Cfg::BM, "gather_gemm's A");
      maps.a_rows = static_cast<int32_t>(a_rows);
      maps.b = b_map<T, kBTrans, Cfg>(p);
    }
    launch_kernel<T, kBTrans, kPp, kTma, false>(p, capacity, maps, stream);
  } else if constexpr (kPp) {
    // B by TMA where its map can be made: expert segments (K-chunks take the cp.async path), k > 0,
    // 32-bit coordinates, experts 16 bytes apart; unless turned off (set_gather_tma_b: tests run
    // both ways).
    const bool tma_b = gather_tma_b().load() && p.seg_cols == 0 && p.k > 0 && p.k < INT32_MAX && p.n < INT32_MAX &&
                       (p.b_seg_stride * static_cast<int64_t>(sizeof(T))) % 16 == 0;
    if (tma_b) {
      maps.b = b_map<T, kBTrans, Cfg>(p);
      if (!p.a_gathered && a_rows > 0 && a_rows < INT32_MAX && gather_tma_a().load()) {  // (a compact A: whole boxes)
        constexpr DType kType = std::is_same_v<T, Half> ? DType::f16 : DType::bf16;
        maps.a_tile = pit::cuda::tensor_map_2d(kType, p.a, a_rows, p.k, p.k, Cfg::BM, "gather_gemm's A");
        maps.a_rows = static_cast<int32_t>(a_rows);
        maps.a_box = true;
      }
      launch_kernel<T, kBTrans, kPp, kTma, true>(p, capacity, maps, stream);
    } else {
      launch_kernel<T, kBTrans, kPp, kTma, false>(p, capacity, maps, stream);
    }
  } else {
    launch_kernel<T, kBTrans, kPp, kTma, false>(p, capacity, maps, stream);
  }
}

bool set_gather_tma_b(bool on) { return gather_tma_b().exchange(on); }
bool set_gather_tma_a(bool on) { return gather_tma_a().exchange(on); }

int set_persistent_grid_cap(int blocks) {
  PIT_CHECK(blocks >= 0, "set_persistent_grid_cap: blocks must be >= 0 (0: no cap), got ", blocks);
  return persistent_grid_cap().exchange(blocks);
}

template void launch_gather_ws<Half, false, false, false>(const GatherParams<Half>&, int64_t, int64_t, StreamRef);
template void launch_gather_ws<Half, false, false, true>(const GatherParams<Half>&, int64_t, int64_t, StreamRef);
template void launch_gather_ws<Half, false, true, false>(const GatherParams<Half>&, int64_t, int64_t, StreamRef);
template void launch_gather_ws<Half, false, true, true>(const GatherParams<Half>&, int64_t, int64_t, StreamRef);
template void launch_gather_ws<Half, true, false, false>(const GatherParams<Half>&, int64_t, int64_t, StreamRef);
template void launch_gather_ws<Half, true, false, true>(const GatherParams<Half>&, int64_t, int64_t, StreamRef);
template void launch_gather_ws<Half, true, true, false>(const GatherParams<Half>&, int64_t, int64_t, StreamRef);
template void launch_gather_ws<Half, true, true, true>(const GatherParams<Half>&, int64_t, int64_t, StreamRef);
template void launch_gather_ws<BFloat16, false, false, false>(const GatherParams<BFloat16>&, int64_t, int64_t, StreamRef);
template void launch_gather_ws<BFloat16, false, false, true>(const GatherParams<BFloat16>&, int64_t, int64_t, StreamRef);
template void launch_gather_ws<BFloat16, false, true, false>(const GatherParams<BFloat16>&, int64_t, int64_t, StreamRef);
template void launch_gather_ws<BFloat16, false, true, true>(const GatherParams<BFloat16>&, int64_t, int64_t, StreamRef);
template void launch_gather_ws<BFloat16, true, false, false>(const GatherParams<BFloat16>&, int64_t, int64_t, StreamRef);
template void launch_gather_ws<BFloat16, true, false, true>(const GatherParams<BFloat16>&, int64_t, int64_t, StreamRef);
template void launch_gather_ws<BFloat16, true, true, false>(const GatherParams<BFloat16>&, int64_t, int64_t, StreamRef);
template void launch_gather_ws<BFloat16, true, true, true>(const GatherParams<BFloat16>&, int64_t, int64_t, StreamRef);

}  // namespace pit::sparse::cuda
