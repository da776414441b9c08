// The M-gather (gather_gemm.cu's contract) with 128 x 256 tiles: one block an SM walking its
// tiles, a producer warpgroup filling a ring of stages (B and a compact A by TMA, gathered rows of A
// by cp.async), and two consumer warpgroups that share each tile (rows 0-63 and 64-127, m64n256k16)
// and SWrite it. Engine::wgmma_wide; gather_gemm's choice for expert segments where it takes them.
//
// Why: the ping-pong engine (gather_ws.cu, 128 x 128 tiles a warpgroup) runs MoE's expert GEMMs at
// 0.55-0.65x of cuBLAS strided-batched in the experts' shapes (H100, docs/BENCHMARKS.md), with
// its L2 at two thirds of its peak: a 128 x 128 x 64 stage brings 32 KB for 1 M multiply-adds, a
// 128 x 256 x 64 one 48 KB for 2 M, a quarter less traffic out of the L2 for the same work.
//
// The ring: 4 stages of 48 KB, each with a `full` mbarrier and an `empty` one (one arrival per
// consumer warp once its wgmmas of the stage are done). The producer warpgroup walks the block's
// tiles in the consumers' order, so the next tile's stages load under this tile's last MMAs and
// its epilogue:
// - B's stage: one 64 x 256 box (B_s [N, K], K-major) or four 64 x 64 boxes (B_s [K, N]) of the
//   rank-3 map over the experts (a ragged K or N reads zeros, never the next expert's rows);
// - a compact A (the down and dx GEMMs): one 64 x 128 box from the tile's first entry on (rows past
//   the expert's entries are computed and not written); one producer thread issues it all, and its
//   arrival expecting the bytes completes `full`;
// - gathered rows of A (the up and gu GEMMs): 16-byte cp.asyncs, 8 a producer thread, written at
//   their places in the 128-byte swizzle, arriving on `full` as they land (129 arrivals: the 128
//   threads and the TMA bytes' one); the next tile's rows of the index are read a tile ahead.
// The consumers: per stage, wait on `full`, issue 4 m64n256k16, commit, wait for the previous
// stage's wgmmas and release its slot (kDrain, where A's rows are gathered: wait for this stage's
// and release it at once, wide_core.cuh wide_drain); a warpgroup whose rows of the tile are all
// past the segment's entries only waits and releases. The epilogue: each warpgroup stages its 64 x 256
// f32 accumulators 32 columns at a time and SWrites them (swrite.cuh swrite_staged: bias,
// activation, pre, gates, scattered rows, atomic accumulate), as the other engines do, so every
// output element is the same sum in the same order (k16 steps of 64-wide stages) and the same
// epilogue: bit for bit the ping-pong engine's (the tests assert it). Into a compact C stored once
// without a bias (MoE's up GEMM, pre and gate * act(pre), and its gu GEMM, the sums as they are,
// from gathered or compact rows of A; kTmaStore), a warpgroup's 64 whole rows instead go out by TMA stores
// from 64 x 64 staging units (wide_store.cuh), the same elements, which drain under the next unit's
// writes and the next tile's MMAs; a slice of fewer rows is SWritten (`PIT_WIDE_TMA_STORE=0`, set_wide_tma_store:
// SWrite always). H100, top-2 uniform / skewed (docs/BENCHMARKS.md, thirty-third session): the up
// GEMM 0.767 / 0.764 ms against SWrite's 0.877 / 0.868, the gu GEMM 0.611 / 0.599 against 0.719 /
// 0.704; the layer's forward + backward 2-6% faster. Registers: setmaxnreg moves
// them from the producers (88) to the consumers (208): no spills.
//
// Clusters of two (kCluster; off by default, being slower: `PIT_WIDE_CLUSTER=1` /
// set_wide_cluster(true) turns it on; the tests run it). Nsight Compute on an H100 has this kernel
// L2-bound (L2 throughput 82-84% of peak), where cuBLAS, in clusters of two with TMA multicast,
// runs 1.5x faster at the same L2 throughput. So the grid runs in clusters of two blocks (rank 0
// and 1) that walk units of work (gather_core.cuh cluster_unit; their prefix takes the tile
// prefix's place in shared memory). A shared unit: the row tiles 2i and 2i + 1 of one segment (its
// pair i) at one column tile, so both blocks need the same B. Each block's producer loads half of
// B's stage and multicasts it into both blocks at the same offsets (B_s [K, N]: strips 2r and
// 2r + 1; B_s [N, K]: N-rows 128 r to 128 r + 127, one box of a 128-row map, 16 KB r into the
// stage), completing its bytes on both blocks' `full` barriers, which expect the whole stage (and
// each block's own A, loaded as above): B's 32 KB of a stage come out of the L2 once for two tiles,
// a third less traffic. A split unit: a segment's odd last row tile at the column tiles 2j and
// 2j + 1, one a block, each loading all of its own B (the map's boxes, not multicast), so that no
// block idles beside a pair's missing second tile (in the first version, measured below, half the
// experts at top-1 uniform had such a tile). A slot is refilled only when the consumers of both
// blocks are done with it (a shared unit's either producer writes into both; split units keep the
// same rule, so that a shared unit after them finds the peer's slot free): `empty` takes 16
// arrivals, each consumer warp arriving on its own block's barrier and on the peer's
// (mbarrier.arrive.shared::cluster with default semantics; .release.cluster would also make it
// wait for the warp's earlier global stores, its epilogue's). Both blocks walk the same units (from
// the cluster's index, by the clusters), so their stage counts stay equal; an empty tile (a split
// unit's second column tile past the last, n_tiles odd) still loads its B and an A nobody reads,
// and its consumers only wait and release. Cluster-wide barriers after the mbarriers' init (before
// any remote arrival or multicast) and at the end, which every thread reaches (no block exits
// while its peer may still arrive on its barriers). Only who loads B changes: the same sums in the
// same order, bit for bit the kernel without clusters (the tests assert it).
// The first version (pairs only: a segment's odd last row tile paired with an empty one) passed
// the tests on an H100 (docs/BENCHMARKS.md, thirty-fourth session): the up and gu GEMMs took
// 23-28% fewer bytes out of the L2 (the down GEMM's did not fall, not understood) but ran up to 11%
// slower, their L2 throughput down from 76-82% to 55-59% (long-scoreboard stalls at the mbarrier
// polls up from 22% to 27% of the samples); the layer up to 5% slower, slowest at top-1 uniform
// (the most odd tiles), level at top-1 skewed (the fewest), 2-3% faster GEMMs there. With the
// split units (the same tests passed) the layer is level with the kernel without clusters (within
// 1%); under Nsight Compute the GEMMs of a compact A by TMA ran 5-13% faster, those of gathered
// rows (cp.async) 3-7% slower, which wall-clock timings did not resolve. Hence still off.
//
// Measured (`PIT_BENCH_MOE_PARTS=1 pit-bench moe`, T = 16384, d = 1024, ffn = 4096, E = 64, each
// timed alternately with the ping-pong engine, 2026-12-06): on an H100 the up GEMM 0.72-0.73 ms at
// top-2 (ping-pong 0.79-0.80), gu 0.71-0.72 (0.77-0.78), down and dx within 1-2% (0.57-0.63),
// top-1 1-12% faster; on an H200 likewise (up 0.71-0.72 against 0.78-0.80). Still 0.55-0.67x of
// cuBLAS strided-batched in the experts' shapes at top-2 (these without clusters). An earlier
// version of the same clusters (branch `wide-cluster`, thirtieth session) was correct but no
// faster: 1.5x slower with its remote arrivals .release.cluster, level to 8% slower (H200, the
// layer) with the default semantics used here; this one does no better (above).
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "ops/cuda/device_utils.cuh"
#include "ops/cuda/mbarrier_ptx.cuh"
#include "ops/cuda/tensor_map.h"
#include "ops/cuda/tma_ptx.cuh"
#include "ops/cuda/wgmma_ptx.cuh"
#include "ops/pit/cuda/gather_core.cuh"
#include "ops/pit/cuda/gemm_core.cuh"
#include "ops/pit/cuda/launch.cuh"
#include "ops/pit/cuda/swrite.cuh"
#include "ops/pit/cuda/wide_core.cuh"
#include "ops/pit/cuda/wide_store.cuh"

namespace pit::sparse::cuda {
namespace {

using namespace wide;
constexpr uint32_t kABytes = kAElems * 2, kBBytes = kBElems * 2;
constexpr int kChunks = BK / 8;                // 16-byte chunks of a stage row of A
constexpr int kALoads = BM * kChunks / kProducers, kARowStep = kProducers / kChunks;  // 8 rows, 16 apart
constexpr uint32_t kProducerRegs = 88, kConsumerRegs = 208;  // setmaxnreg: 128 x 88 + 256 x 208 <= 384 x 168
constexpr int kEpiCols = 32, kEpiLd = kEpiCols + 8;  // a warpgroup's f32 staging: 64 rows x 32 columns
// (ld = 40 floats: the fragments' 8-byte stores of four rows fall in distinct banks)

// A warpgroup's staging: its f32 tile for SWrite, or (kTmaStore) its units for TMA stores, which a
// slice SWritten then shares.
constexpr uint32_t kSwriteStaging = 64 * kEpiLd * sizeof(float);
constexpr uint32_t staging_bytes(bool tma_store) { return tma_store ? kStoreStaging : kSwriteStaging; }
static_assert(kSwriteStaging <= kStoreStaging && kSwriteStaging % 1024 == 0, "staging layouts");

// Shared memory: the aligned stages, the warpgroups' staging, the row and scale tables, the tile
// prefix.
constexpr size_t smem_bytes(int segments, bool tma_store) {
  return size_t{kStages} * (kABytes + kBBytes) + 2 * size_t{staging_bytes(tma_store)} +
         BM * (sizeof(int32_t) + sizeof(float)) + (WideCfg<Half>::kAlign - 16) +
         sizeof(int32_t) * (static_cast<size_t>(segments) + 1);
}
// Segments up to which the TMA stores' staging fits beside the ring in an sm_90 block (227 KB of
// dynamic and static shared memory; the static: the ring's 8 mbarriers).
constexpr int kTmaStoreMaxSegments = 192;
static_assert(smem_bytes(kTmaStoreMaxSegments, true) + 2 * kStages * sizeof(uint64_t) <= 227 * 1024,
              "the TMA stores' staging and the tile prefix of kTmaStoreMaxSegments fit beside the ring");

// The TMA maps: B's stages (rank 3, over the experts), a compact A's (BM rows x 64 columns), and
// with TMA stores C's and pre's (64 x 64 boxes).
struct WideMaps {
  CUtensorMap a, b, c, pre;
};

// Where a block's walk over the work goes: its first unit and the stride (tiles: the block's index
// and the grid; kCluster: cluster units, the cluster's index and the clusters), and the block's
// rank in its cluster (0 without clusters). Both blocks of a cluster walk the same units, so their
// stage counts stay equal.
struct Walk {
  int first, step, rank;
};

// This block's tile of work unit t: tile t, or (kCluster) its rank's tile of cluster unit t
// (gather_core.cuh cluster_unit; count <= 0 for an empty one).
template <bool kCluster, typename T>
__device__ __forceinline__ dev::TileAt tile_at(const GatherParams<T>& p, const int32_t* prefix, const Walk& w,
                                               int t) {
  if constexpr (kCluster) return dev::cluster_unit<BM>(prefix, p.offsets, p.segments, p.n_tiles, t, w.rank);
  else return dev::locate<BM>(prefix, p.offsets, p.segments, p.n_tiles, t);
}

// The producer warpgroup: every stage of the block's tiles, in order, into the ring. kCluster:
// thread 0 loads its half of B's stage, multicast into both blocks of the cluster, whose `full`
// barriers each expect the whole stage.
template <typename T, bool kBTrans, bool kAGathered, bool kCluster>
__device__ __forceinline__ void produce(const GatherParams<T>& p, const WideMaps& maps, const int32_t* tiles,
                                        const Walk& w, int total, int num_k, T* sa, T* sb, uint64_t* full,
                                        uint64_t* empty) {
  namespace tma = pit::cuda::tma;
  namespace mbar = pit::cuda::mbar;
  const int pt = static_cast<int>(threadIdx.x) - kConsumers;
  if (!kAGathered && pt != 0) return;  // one thread issues every TMA
  if (pt == 0) {
    tma::prefetch(&maps.b);
    if (!kAGathered) tma::prefetch(&maps.a);
  }
  // This thread's chunks of a gathered stage: chunk column cc of the tile rows r0 + 16 i.
  const int cc = pt % kChunks, r0 = pt / kChunks;
  int32_t arow[kALoads], next_row[kALoads];  // A's rows of those tile rows (-1: past the entries)
  const auto fetch = [&](const dev::TileAt& at, int32_t(&out)[kALoads]) {
#pragma unroll
    for (int i = 0; i < kALoads; ++i) {
      const int r = r0 + i * kARowStep;
      out[i] = r < at.count ? p.rows[at.e0 + r] : -1;
    }
  };
  const auto tile_of = [&](int t) { return tile_at<kCluster>(p, tiles, w, t); };
  dev::TileAt at = tile_of(w.first);
  if constexpr (kAGathered) fetch(at, arow);
  uint32_t g = 0;  // stages so far, over the block's tiles
  for (int t = w.first; t < total; t += w.step) {
    const bool more = t + w.step < total;
    const dev::TileAt next = more ? tile_of(t + w.step) : at;
    // (The segment: the same in both blocks of a cluster; the column tile too where they share B.)
    const int32_t n0 = at.nt * BN, s = p.b_seg_stride != 0 ? at.s : 0;
    // A compact A's box from the tile's first entry on; for an empty tile (kCluster; e0 a row tile
    // past the segment's last), the row tile before: coordinates in the tensor, rows never read.
    const int32_t a_row = kCluster && at.count <= 0 ? at.e0 - BM : at.e0;
    for (int kt = 0; kt < num_k; ++kt, ++g) {
      const int slot = static_cast<int>(g % kStages);
      const int32_t k0 = kt * BK;
      // (kCluster: the slot is free in both blocks, whose consumers all arrive on both `empty`s.)
      mbar::wait(&empty[slot], ((g / kStages) & 1) ^ 1);
      const uint32_t as = pit::cuda::ptx::smem_u32(sa + slot * kAElems);
      const uint32_t bs = pit::cuda::ptx::smem_u32(sb + slot * kBElems);
      if (pt == 0) {
        const uint32_t bar = pit::cuda::ptx::smem_u32(&full[slot]);
        // B's whole stage (kCluster, a shared unit: half this thread's load, half the peer's
        // multicast; either may land before this arrival) and a compact A's box.
        mbar::arrive_expect_tx(&full[slot], kBBytes + (kAGathered ? 0 : kABytes));
        if constexpr (!kAGathered) tma::load_2d(as, &maps.a, k0, a_row, bar);
        if constexpr (kCluster) {
          // The cluster's B map has boxes of a part of the stage: B [N, K] two of 128 N-rows (the
          // stage's 128-byte rows, 16 KB apart), B [K, N] four 64-column strips. A shared unit:
          // this block's half of them, multicast into both blocks; a split one: all, here only.
          constexpr int kParts = kBTrans ? 2 : BN / 64;
          constexpr uint32_t kPartBytes = kBBytes / kParts;
          constexpr uint16_t kBoth = 0b11;  // the blocks of rank 0 and 1
          const int first = at.shared ? w.rank * kParts / 2 : 0, last = at.shared ? first + kParts / 2 : kParts;
          for (int c = first; c < last; ++c) {
            const int32_t x = kBTrans ? k0 : n0 + 64 * c, y = kBTrans ? n0 + (BN / 2) * c : k0;
            if (at.shared) tma::load_3d_multicast(bs + c * kPartBytes, &maps.b, x, y, s, bar, kBoth);
            else tma::load_3d(bs + c * kPartBytes, &maps.b, x, y, s, bar);
          }
        } else if constexpr (kBTrans) {
          tma::load_3d(bs, &maps.b, k0, n0, s, bar);
        } else {
#pragma unroll
          for (int c = 0; c < BN / 64; ++c) tma::load_3d(bs + c * kStripBytes, &maps.b, n0 + 64 * c, k0, s, bar);
        }
      }
      if constexpr (kAGathered) {
        const bool col_in = k0 + 8 * cc < p.k;  // whole chunks or none (K % 8 == 0)
        const T* const col = p.a + (col_in ? k0 + 8 * cc : 0);
#pragma unroll
        for (int i = 0; i < kALoads; ++i) {
          const int r = r0 + i * kARowStep;
          const bool in = col_in && arow[i] >= 0;
          const uint32_t to = static_cast<uint32_t>(r * 128 + ((cc ^ (r % 8)) * 16));
          pit::cuda::ptx::cp_async_16(as + to, in ? col + int64_t{arow[i]} * p.k : p.a, in ? 16 : 0);
        }
        mbar::arrive_on_cp_async(&full[slot]);
        // The next tile's rows, read under this tile's stages.
        if (kt == 0 && more) fetch(next, next_row);
      }
    }
    if constexpr (kAGathered) {
#pragma unroll
      for (int i = 0; i < kALoads; ++i) arow[i] = next_row[i];
    }
    at = next;
  }
  if constexpr (kAGathered) mbar::cp_async_wait_all();
}

// The consumer warpgroups: every tile of the block's walk, MMAs and epilogue. kCluster: each warp
// hands a stage back to both blocks' producers (both wrote into it).
template <typename T, bool kBTrans, bool kAGathered, bool kDrain, bool kTmaStore, bool kCluster>
__device__ __forceinline__ void consume(const GatherParams<T>& p, const WideMaps& maps, const int32_t* tiles,
                                        const Walk& w, int total, int num_k, T* sa, T* sb, char* staging,
                                        int32_t* c_row, float* scale, uint64_t* full, uint64_t* empty) {
  using namespace pit::cuda;
  constexpr uint32_t kStaging = staging_bytes(kTmaStore);  // a warpgroup's, 1024-byte aligned
  // This thread's place in wgmma's accumulator layout (m64n256: rows 16 warp + lane / 4 and 8
  // below, columns 8 j + 2 (lane % 4)) and its warpgroup's rows of A (64 rows of 128 bytes on).
  const int wg = threadIdx.x / 128, lane = threadIdx.x % 32, wt = threadIdx.x % 128;
  const int rw = ((threadIdx.x / 32) % 4) * 16 + lane / 4, q = lane % 4;
  const uint32_t a_base = ptx::smem_u32(sa) + wg * 64 * 128, b_base = ptx::smem_u32(sb);
  float* const staged = reinterpret_cast<float*>(staging + wg * kStaging);  // SWrite's [64][kEpiLd]
  uint32_t stored = 0;  // (kTmaStore) units this warpgroup has stored by TMA
  int32_t* const my_row = c_row + wg * 64;
  float* const my_scale = scale + wg * 64;
  constexpr bool kHalf = std::is_same_v<T, Half>;
  // Per k16: A K-major (32 bytes on in its 128-byte rows); B K-major likewise, or N-major (two
  // 8-row atoms on; its 64-column strips kStripBytes apart).
  constexpr uint32_t kBStep = kBTrans ? 32 : 2048, kBLbo = kBTrans ? 16 : kStripBytes;
  // A stage's slot back to the producer: this warp's arrival (kCluster: also on the peer block's
  // barrier, whose producer multicast half of the stage into this block).
  const auto release = [&](uint32_t at) {
    uint64_t* const bar = &empty[at % kStages];
    if (lane == 0) mbar::arrive(bar);
    if (kCluster && lane == 1) mbar::arrive_remote(bar, static_cast<uint32_t>(w.rank ^ 1));
  };
  float acc[128];
  uint32_t g = 0;  // stages so far, over the block's tiles (the producer's count)
  for (int t = w.first; t < total; t += w.step) {
    const dev::TileAt at = tile_at<kCluster>(p, tiles, w, t);
    const int rows = at.count - 64 * wg;  // this warpgroup's rows wanted (<= 0: none)
    // (kTmaStore) the gates of this thread's rows, loaded under the MMAs.
    float scale0 = 1.f, scale1 = 1.f;
    if (kTmaStore && p.weights != nullptr && rows >= 64) {
      scale0 = p.weights[at.e0 + 64 * wg + rw];
      scale1 = p.weights[at.e0 + 64 * wg + rw + 8];
    }
    // An expert's last row tile of at most 64 entries, or (kCluster) an empty tile: the stages
    // pass by.
    if (rows <= 0) {
      for (int kt = 0; kt < num_k; ++kt, ++g) {
        mbar::wait(&full[g % kStages], (g / kStages) & 1);
        release(g);
      }
      continue;
    }
#pragma unroll
    for (int i = 0; i < 128; ++i) acc[i] = 0.f;
    for (int kt = 0; kt < num_k; ++kt, ++g) {
      const int slot = static_cast<int>(g % kStages);
      mbar::wait(&full[slot], (g / kStages) & 1);
      if constexpr (kAGathered) wgmma::fence_smem_for_async();  // the cp.async writes before wgmma's reads
      wgmma::fence();
#pragma unroll
      for (int kk = 0; kk < BK / 16; ++kk)
        wgmma::mma_m64n256k16<kHalf, 0, kBTrans ? 0 : 1>(
            acc, wgmma::desc_sw128(a_base + slot * kABytes + kk * 32, 16, 1024),
            wgmma::desc_sw128(b_base + slot * kBBytes + kk * kBStep, kBLbo, 1024), 1);
      wgmma::commit();
      // The previous stage's wgmmas are done: its slot goes back to the producer.
      if constexpr (kDrain) {
        wgmma::wait<0>();
        release(g);
      } else {
        wgmma::wait<1>();
        if (kt > 0) release(g - 1);
      }
    }
    if constexpr (!kDrain) {
      wgmma::wait<0>();
      if (num_k > 0) release(g - 1);
    }
    const int64_t n0 = int64_t{at.nt} * BN;
    if constexpr (kTmaStore) {
      // 64 whole rows: by TMA stores (wide_store.cuh). Fewer: SWritten below, once the stores have
      // read the staging that SWrite's tile shares.
      if (rows >= 64) {
        store_rows<T>(acc, {&maps.c, &maps.pre}, at.e0 + 64 * wg, static_cast<int32_t>(n0),
                      static_cast<int32_t>(p.n), p.epi, scale0, scale1, ptx::smem_u32(staged), stored, wg);
        continue;
      }
      if (wt == 0) pit::cuda::tma::wait_bulk<0>();
      mbar::sync_named(1 + wg, 128);
    }
    // The epilogue: this warpgroup's destination rows and gates, then its 64 rows 32 columns at a
    // time through its staging tile.
    if (wt < 64) {
      const int e = at.e0 + 64 * wg + wt;
      const bool ok = wt < rows;
      my_row[wt] = ok ? (p.c_scattered ? p.rows[e] : e) : -1;
      my_scale[wt] = ok && p.weights ? p.weights[e] : 1.f;
    }
    dev::EpiArgs epi = p.epi;
    if (epi.bias) epi.bias = static_cast<const T*>(epi.bias) + at.s * p.bias_seg_stride;
    const auto dst = [&](int r) {
      const int row = my_row[r];
      return row >= 0 ? dev::RowDst<T>{p.c + int64_t{row} * p.n, my_scale[r]} : dev::RowDst<T>{nullptr, 0.f};
    };
#pragma unroll  // (a rolled loop indexes the accumulators at run time: they would live in local memory)
    for (int h = 0; h < BN / kEpiCols; ++h) {
      if (n0 + kEpiCols * h >= p.n) break;  // uniform over the block
#pragma unroll
      for (int jj = 0; jj < kEpiCols / 8; ++jj) {
        const int j = h * (kEpiCols / 8) + jj;
        ptx::st_shared_f2(staged + rw * kEpiLd + jj * 8 + 2 * q, acc[4 * j], acc[4 * j + 1]);
        ptx::st_shared_f2(staged + (rw + 8) * kEpiLd + jj * 8 + 2 * q, acc[4 * j + 2], acc[4 * j + 3]);
      }
      mbar::sync_named(1 + wg, 128);  // the staged columns (and the row tables) are written
      dev::swrite_staged<T, 64, kEpiCols, 128>(staged, kEpiLd, dst, n0 + kEpiCols * h, p.n, epi, wt);
      mbar::sync_named(1 + wg, 128);  // and read: the staging tile is free again
    }
  }
  if constexpr (kTmaStore) {
    if (wt == 0) pit::cuda::tma::wait_bulk<0, false>();  // (the staging stays until the stores are done)
  }
}

// kCluster: launched in clusters of two blocks (gather_wide's launch), which walk cluster units
// and share B's stages in the shared ones (the header).
template <typename T, bool kBTrans, bool kAGathered, bool kDrain, bool kTmaStore, bool kCluster>
__global__ void __launch_bounds__(kThreads, 1)
    gather_wide_kernel(const __grid_constant__ GatherParams<T> p, const __grid_constant__ WideMaps maps) {
  using namespace pit::cuda;
  extern __shared__ uint4 smem_raw[];
  __shared__ uint64_t full[kStages], empty[kStages];
  T* const sa = dev::tile_base<WideCfg<T>>(smem_raw);
  T* const sb = sa + kStages * kAElems;
  char* const staging = reinterpret_cast<char*>(sb + kStages * kBElems);  // the warpgroups', 1024-byte aligned
  int32_t* const c_row = reinterpret_cast<int32_t*>(staging + 2 * staging_bytes(kTmaStore));  // [BM]: destination rows
  float* const scale = reinterpret_cast<float*>(c_row + BM);                                   // [BM]: their gates
  // [segments + 1]: the tile prefix, or (kCluster) the cluster units' (dev::cluster_unit).
  int32_t* const tiles = reinterpret_cast<int32_t*>(scale + BM);
  if constexpr (kCluster)
    dev::segment_prefix(p.offsets, p.segments, tiles, [n = p.n_tiles](int c) { return dev::cluster_units<BM>(c, n); });
  else dev::tile_prefix<BM>(p.offsets, p.segments, tiles);
  // `full`: the producers' cp.asyncs, and the TMA bytes' arrival; `empty`: every consumer warp of
  // the block, or (kCluster) of both blocks.
  init_ring(full, empty, kAGathered ? kProducers + 1 : 1, (kCluster ? 2 : 1) * (kConsumers / 32));
  __syncthreads();  // the prefix and the barriers (the last block-wide barrier)
  const int total = tiles[p.segments] * (kCluster ? 1 : p.n_tiles), num_k = static_cast<int>((p.k + BK - 1) / BK);
  Walk w{static_cast<int>(blockIdx.x), static_cast<int>(gridDim.x), 0};
  if constexpr (kCluster)
    w = {static_cast<int>(cluster::id_x()), static_cast<int>(cluster::count_x()), static_cast<int>(cluster::rank())};
  // (The grid is sized by a bound on the work. kCluster: both blocks of a cluster leave here, or
  // neither, before any cluster barrier.)
  if (w.first >= total) return;
  // (kCluster) both blocks' barriers initialised (fence_init) before any remote arrival or multicast.
  if constexpr (kCluster) cluster::sync();
  // Registers: the block's 168 a thread (384 threads) become 88 for the producers, 208 for the
  // consumers (their 128 accumulators and the epilogue).
  if (threadIdx.x >= kConsumers) {
    wgmma::regs_dec<kProducerRegs>();
    produce<T, kBTrans, kAGathered, kCluster>(p, maps, tiles, w, total, num_k, sa, sb, full, empty);
  } else {
    wgmma::regs_inc<kConsumerRegs>();
    consume<T, kBTrans, kAGathered, kDrain, kTmaStore, kCluster>(p, maps, tiles, w, total, num_k, sa, sb, staging,
                                                                 c_row, scale, full, empty);
  }
  // (kCluster) every thread of both blocks: neither exits while the other's consumers may still
  // arrive on its `empty` barriers.
  if constexpr (kCluster) cluster::sync();
}

// set_wide_tma_store's setting, from PIT_WIDE_TMA_STORE (0: off) at first use.
std::atomic<bool>& wide_tma_store() {
  static std::atomic<bool> on{env_switch("PIT_WIDE_TMA_STORE", true)};
  return on;
}

// Where the wide engine runs in clusters of two: nowhere (the default: no faster on an H100, the
// header), everywhere, or only where A is compact (TMA boxes: under Nsight Compute those GEMMs
// ran 5-13% faster in clusters, the gathered ones 3-7% slower; not yet timed as a policy). From
// PIT_WIDE_CLUSTER at first use: 0, 1 or compact (any other value: the default);
// set_wide_cluster sets everywhere or nowhere.
enum class ClusterUse { nowhere, everywhere, compact_a };
std::atomic<ClusterUse>& wide_cluster() {
  static std::atomic<ClusterUse> use{[] {
    const char* v = std::getenv("PIT_WIDE_CLUSTER");
    if (v != nullptr && std::strcmp(v, "compact") == 0) return ClusterUse::compact_a;
    return env_switch("PIT_WIDE_CLUSTER", false) ? ClusterUse::everywhere : ClusterUse::nowhere;
  }()};
  return use;
}

// Whether the wide engine's epilogue takes TMA stores (wide_store.cuh): A gathered or compact,
// into a compact C stored once (with or without entry scales, an
// activation and its pre; no bias), C and pre 16-byte aligned with N % 8 == 0 (the maps' rows),
// 32-bit row coordinates, and the staging fitting beside the tile prefix.
template <typename T>
bool takes_tma_store(const GatherParams<T>& p, int64_t capacity) {
  const auto aligned16 = [](const T* q) { return reinterpret_cast<uintptr_t>(q) % 16 == 0; };
  const dev::EpiArgs& e = p.epi;
  return wide_tma_store().load() && !p.c_scattered && e.mode == dev::WriteMode::store &&
         e.bias == nullptr && p.n % 8 == 0 && aligned16(p.c) && (!e.pre || aligned16(p.c + e.pre_delta)) &&
         capacity > 0 && capacity < INT32_MAX && p.segments <= kTmaStoreMaxSegments;
}

}  // namespace

bool set_wide_tma_store(bool on) { return wide_tma_store().exchange(on); }
bool set_wide_cluster(bool on) {
  return wide_cluster().exchange(on ? ClusterUse::everywhere : ClusterUse::nowhere) != ClusterUse::nowhere;
}

template <typename T>
bool gather_wide_takes(const GatherParams<T>& p, int64_t a_rows) {
  // TMA: 32-bit coordinates; the maps' strides 16-byte multiples (a_fast / b_fast: K, and N for
  // B [K, N], multiples of 8; the experts' matrices 16 bytes apart).
  return p.seg_cols == 0 && p.a_fast && p.b_fast && p.k > 0 && p.k < INT32_MAX && p.n < INT32_MAX &&
         a_rows > 0 && a_rows < INT32_MAX && p.segments <= kWideMaxSegments &&
         (p.b_seg_stride * static_cast<int64_t>(sizeof(T))) % 16 == 0;
}

bool gather_wide_fills(int64_t capacity, int64_t n) {
  return (capacity / BM) * ((n + BN - 1) / BN) >= sm_count();
}

template <typename T, bool kBTrans>
void launch_gather_wide(const GatherParams<T>& p0, int64_t capacity, int64_t a_rows, StreamRef stream) {
  PIT_CHECK(gather_wide_takes(p0, a_rows),
            "cuda::gather_gemm: Engine::wgmma_wide takes expert segments or one shared B (not K-chunks), K > 0, "
            "16-byte aligned rows of A and B (K and N multiples of 8) and at most ", kWideMaxSegments,
            " segments; use Engine::automatic");
  GatherParams<T> p = p0;
  p.n_tiles = static_cast<int>((p.n + BN - 1) / BN);
  WideMaps maps{};
  constexpr DType kType = std::is_same_v<T, Half> ? DType::f16 : DType::bf16;
  if (!p.a_gathered) maps.a = pit::cuda::tensor_map_2d(kType, p.a, a_rows, p.k, p.k, BM, "gather_gemm's A");
  const bool tma_store = takes_tma_store(p, capacity);
  if (tma_store) {
    maps.c = pit::cuda::tensor_map_2d(kType, p.c, capacity, p.n, p.n, 64, "gather_gemm's C");
    if (p.epi.pre) maps.pre = pit::cuda::tensor_map_2d(kType, p.c + p.epi.pre_delta, capacity, p.n, p.n, 64, "gather_gemm's pre");
  }
  const size_t smem = smem_bytes(p.segments, tma_store);
  // Bounds on the work: tiles, and cluster units (at most ceil(count_s / 256) pairs of row tiles a
  // segment, each at every column tile).
  const int64_t bound = ((capacity + BM - 1) / BM + p.segments) * p.n_tiles;
  const int64_t pair_bound = ((capacity + 2 * BM - 1) / (2 * BM) + p.segments) * p.n_tiles;
  PIT_CHECK(bound < INT32_MAX, "cuda::gather_gemm: up to ", bound,
            " output tiles for the wide engine, which counts them in 32 bits; use Engine::automatic");
  const auto run = [&]<bool kAGathered, bool kTmaStore>() {
    const bool drain = wide_drain(kAGathered);
    const ClusterUse use = wide_cluster().load();
    if (use == ClusterUse::everywhere || (use == ClusterUse::compact_a && !kAGathered)) {
      // Clusters of two blocks sharing B's stages: B's boxes half a stage (B [N, K]: 128 N-rows).
      auto* kernel = drain ? gather_wide_kernel<T, kBTrans, kAGathered, true, kTmaStore, true>
                           : gather_wide_kernel<T, kBTrans, kAGathered, false, kTmaStore, true>;
      allow_smem(kernel, smem, kThreads);
      constexpr int kCluster = 2;
      if (const int clusters = max_active_clusters(kernel, smem, kThreads, kCluster); clusters > 0) {
        maps.b = expert_b_map(p, kBTrans, kBTrans ? BN / 2 : BK);
        cudaLaunchAttribute attr{};
        attr.id = cudaLaunchAttributeClusterDimension;
        attr.val.clusterDim.x = kCluster;
        attr.val.clusterDim.y = 1;
        attr.val.clusterDim.z = 1;
        cudaLaunchConfig_t config{};
        config.gridDim = dim3(static_cast<unsigned>(persistent_cluster_grid(pair_bound, clusters, kCluster)));
        config.blockDim = dim3(kThreads);
        config.dynamicSmemBytes = smem;
        config.stream = native(stream);
        config.attrs = &attr;
        config.numAttrs = 1;
        const cudaError_t e = cudaLaunchKernelEx(&config, kernel, p, maps);
        if (e != cudaSuccess) (void)cudaGetLastError();  // (not left for the next launch's check)
        PIT_CHECK(e == cudaSuccess, "cuda::gather_gemm (wide engine, clusters of two): kernel launch failed: ",
                  cudaGetErrorString(e));
        check_launch("cuda::gather_gemm (wide engine, clusters of two)");
        return;
      }
      // (No cluster of two fits at once on this device: one block a tile, as below.)
    }
    auto* kernel = drain ? gather_wide_kernel<T, kBTrans, kAGathered, true, kTmaStore, false>
                         : gather_wide_kernel<T, kBTrans, kAGathered, false, kTmaStore, false>;
    maps.b = expert_b_map(p, kBTrans, kBTrans ? BN : BK);
    const int per_sm = allow_smem(kernel, smem, kThreads);
    const auto grid = static_cast<unsigned>(persistent_grid(bound, per_sm));
    kernel<<<grid, kThreads, smem, native(stream)>>>(p, maps);
    check_launch("cuda::gather_gemm (wide engine)");
  };
  if (p.a_gathered) {
    if (tma_store) run.template operator()<true, true>();
    else run.template operator()<true, false>();
  } else if (tma_store) {
    run.template operator()<false, true>();
  } else {
    run.template operator()<false, false>();
  }
}

template bool gather_wide_takes<Half>(const GatherParams<Half>&, int64_t);
template bool gather_wide_takes<BFloat16>(const GatherParams<BFloat16>&, int64_t);
template void launch_gather_wide<Half, false>(const GatherParams<Half>&, int64_t, int64_t, StreamRef);
template void launch_gather_wide<Half, true>(const GatherParams<Half>&, int64_t, int64_t, StreamRef);
template void launch_gather_wide<BFloat16, false>(const GatherParams<BFloat16>&, int64_t, int64_t, StreamRef);
template void launch_gather_wide<BFloat16, true>(const GatherParams<BFloat16>&, int64_t, int64_t, StreamRef);

}  // namespace pit::sparse::cuda
