#pragma once
// The ping-pong variant of the persistent engine (ws_core.cuh), sm_90a, f16/bf16: one producer
// warpgroup SReads the block's tiles into the 4-deep ring as ws_produce does; the two consumer
// warpgroups take the tiles in turns, each computing a whole 128 x 128 tile (two m64n128k16 a
// k16: 128 f32 accumulators a thread), so that one warpgroup's epilogue runs under the other's
// MMAs (in ws_core.cuh both warpgroups share each tile, and the tensor cores idle through every
// epilogue). Each stage is consumed by one warpgroup: its `empty` barrier counts 4 warps. The
// epilogue stages the tile in two 64-row halves (the staging area of ws_core.cuh holds both
// warpgroups' halves) to keep four stages in shared memory.
#include <cstdint>

#include "ops/pit/cuda/ws_core.cuh"

namespace pit::sparse::cuda::dev {

template <typename T, bool kAKMajor, bool kBKMajor, int kStages_>
struct PpCfg : WgTiles<T, kAKMajor, kBKMajor> {
  using Base = WgTiles<T, kAKMajor, kBKMajor>;
  static constexpr int kEngine = 4;
  static constexpr int kStages = kStages_;
  static constexpr int kProducers = 128, kConsumers = 256;
  static constexpr int kConsumerWarps = 4;  // arrivals that empty a stage: one warpgroup's warps
  static constexpr int kThreads = kProducers + kConsumers;
  static constexpr int kConsumerBase = kProducers;
  static constexpr size_t kSmemTiles = size_t{kStages} * (Base::kAElems + Base::kBElems) * sizeof(T);
  // Base::kSmemEpi: BM rows of staging, here 64 rows for each consumer warpgroup.
  static constexpr size_t kSmem = kSmemTiles + Base::kSmemEpi + 2 * kStages * sizeof(uint64_t);
};

// One consumer warpgroup's accumulators of a whole tile: rows 0-63 in d[0], 64-127 in d[1].
template <class Cfg>
struct Acc<Cfg, 4> {
  float d[2][64];
  __device__ void zero() {
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int i = 0; i < 64; ++i) d[h][i] = 0.f;
  }
  // Issues (does not wait for) this warpgroup's MMAs of one stage: the first kHalves row halves
  // (1: rows 64-127 are not wanted, an expert's last, short row tile).
  template <int kHalves = 2>
  __device__ void mma_stage(const typename Cfg::Elem* sa, const typename Cfg::Elem* sb) {
    using namespace pit::cuda;
    const uint32_t b0 = ptx::smem_u32(sb);
    constexpr uint32_t kAStep = Cfg::kAK ? 2048 : 32, kBStep = Cfg::kBK ? 2048 : 32;  // per k16
    constexpr uint32_t kALbo = Cfg::kAK ? Cfg::BK * 128 : 16, kBLbo = Cfg::kBK ? Cfg::BK * 128 : 16;
    constexpr bool kHalf = std::is_same_v<typename Cfg::Elem, Half>;
#pragma unroll
    for (int h = 0; h < kHalves; ++h) {
      // As wg_core.cuh's Acc, with the row half h in place of the warpgroup.
      const uint32_t a0 = ptx::smem_u32(sa) + h * (Cfg::kAK ? Cfg::BK * 128 : 64 * 128);
#pragma unroll
      for (int kk = 0; kk < Cfg::BK / 16; ++kk)
        wgmma::mma_m64n128k16<kHalf, Cfg::kAK ? 1 : 0, Cfg::kBK ? 1 : 0>(
            d[h], wgmma::desc_sw128(a0 + kk * kAStep, kALbo, 1024), wgmma::desc_sw128(b0 + kk * kBStep, kBLbo, 1024),
            1);
    }
  }
  // Stages row half h (64 rows) at s ([64][Cfg::kEpiLd] f32), in wg_core.cuh's fragment layout.
  __device__ void half_to_smem(int h, float* s) const {
    const int wtid = (static_cast<int>(threadIdx.x) - Cfg::kConsumerBase) % 128, lane = wtid % 32;
    const int r0 = (wtid / 32) * 16 + lane / 4, q = lane % 4;
#pragma unroll
    for (int j = 0; j < Cfg::BN / 8; ++j) {
      pit::cuda::ptx::st_shared_f2(s + r0 * Cfg::kEpiLd + j * 8 + 2 * q, d[h][4 * j], d[h][4 * j + 1]);
      pit::cuda::ptx::st_shared_f2(s + (r0 + 8) * Cfg::kEpiLd + j * 8 + 2 * q, d[h][4 * j + 2], d[h][4 * j + 3]);
    }
  }
};

// The turns of the two consumer warpgroups: warpgroup w takes this block's local tiles i with
// i % 2 == w and starts the MMAs of tile i only once the other has issued and finished those of
// tile i - 1 (named barriers 4 and 5, each 256 threads: one warpgroup arrives, the other waits).
// Besides keeping the tensor cores to one tile at a time, this keeps every wait on a stage's
// `full` barrier within one phase of the barrier's state: a warpgroup that skipped the other's
// stages could otherwise wait on a stage rounds ahead, whose parity a past phase already has.
struct PpTurns {
  int wg;      // 0 or 1
  int count;   // this block's local tiles
  // Before the MMAs of local tile i (this warpgroup's): wait for the other's turn to end.
  __device__ void begin(int i) const {
    if (i > 0) pit::cuda::mbar::sync_named(4 + wg, 256);
  }
  // After the MMAs of local tile i: the other warpgroup's next tile may start.
  __device__ void end(int i) const {
    if (i + 1 < count) pit::cuda::mbar::arrive_named(4 + (1 - wg), 256);
  }
};

// This consumer warpgroup's epilogue of a whole tile: each 64-row half staged in its own area and
// SWritten; row(r) gives tile row r's destination (r in 0-127); `rows`: the rows wanted (at most
// 64: the second half is skipped). Named barrier 2 + wg over the warpgroup; the staging area is
// free again on return.
template <class Cfg, class RowFn>
__device__ __forceinline__ void pp_store_tile(const Acc<Cfg>& acc, const WsRing<Cfg>& ring, RowFn&& row, int rows,
                                              int64_t n0, int64_t ncols, const EpiArgs& epi) {
  constexpr int kHalfRows = Cfg::BM / 2;
  const int ctid = static_cast<int>(threadIdx.x) - Cfg::kConsumerBase, wg = ctid / 128;
  float* staged = ring.epi() + wg * kHalfRows * Cfg::kEpiLd;
#pragma unroll  // (a rolled loop indexes the accumulators at run time: they would live in local memory)
  for (int h = 0; h < 2; ++h) {
    if (h * kHalfRows >= rows) break;  // uniform over the warpgroup
    acc.half_to_smem(h, staged);
    pit::cuda::mbar::sync_named(2 + wg, 128);
    swrite_staged<typename Cfg::Elem, kHalfRows, Cfg::BN, 128>(
        staged, Cfg::kEpiLd, [&](int r) { return row(h * kHalfRows + r); }, n0, ncols, epi, ctid % 128);
    pit::cuda::mbar::sync_named(2 + wg, 128);
  }
}

// The consumer warpgroups' loop over this block's tiles t = blockIdx.x, blockIdx.x + gridDim.x,
// ... < total: warpgroup wg takes the local tiles i with i % 2 == wg, in turns (PpTurns), and
// counts the other's stages so that its ring position stays the producer's. plan(t) returns tile
// t's description, with its k-stages in `num_k` and the rows wanted in `rows` (at most 64: the
// MMAs of rows 64-127 are skipped and those accumulators stay zero); epilogue(tile, acc) writes
// this warpgroup's finished tile (pp_store_tile) while the other warpgroup runs its MMAs.
template <class Cfg, class Plan, class Epilogue>
__device__ __forceinline__ void pp_consume(const WsRing<Cfg>& ring, int total, Plan&& plan, Epilogue&& epilogue) {
  const int wg = (static_cast<int>(threadIdx.x) - Cfg::kConsumerBase) / 128;
  const int first = static_cast<int>(blockIdx.x), step = static_cast<int>(gridDim.x);
  const PpTurns turns{wg, total > first ? (total - first + step - 1) / step : 0};
  Acc<Cfg> acc;
  uint32_t it = 0;  // stages consumed by both warpgroups so far (ws_consume's count)
  int i = 0;
  for (int t = first; t < total; t += step, ++i) {
    const auto tile = plan(t);
    if (i % 2 != wg) {  // the other warpgroup's tile: skip its stages
      it += static_cast<uint32_t>(tile.num_k);
      continue;
    }
    turns.begin(i);
    // A whole loop for each (a branch between the MMAs of one stage serialises every wgmma).
    if (tile.rows > Cfg::BM / 2) ws_consume<Cfg>(acc, ring, it, tile.num_k);
    else ws_consume<Cfg, 1>(acc, ring, it, tile.num_k);
    turns.end(i);
    epilogue(tile, acc);
  }
}

}  // namespace pit::sparse::cuda::dev
