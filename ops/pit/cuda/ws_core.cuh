#pragma once
// The persistent, warp-specialised wgmma engine of the PIT GEMMs (sm_90a, f16/bf16). One block
// per SM walks the output tiles t = blockIdx.x, blockIdx.x + gridDim.x, ... The producer
// warpgroups (the first kProducers threads) SRead the k-stages of those tiles into a
// kStages-deep ring of shared-memory tiles; the two consumer warpgroups after them run wgmma on
// them (rows 0-63 and 64-127 of the 128 x 128 tile, wg_core.cuh's Acc) and SWrite the results.
// Two mbarriers per stage hand the ring over: the producers' cp.asyncs arrive on the stage's
// `full` barrier as they complete (cp.async.mbarrier.arrive.noinc), and the consumer warps
// arrive on its `empty` barrier once the MMAs that read it are done. So the loads run up to
// kStages stages ahead of the MMAs (wg_core.cuh's loop, where the same threads load and compute,
// runs kStages - 2 ahead: one stage with three), and the next tile's loads run under the current
// tile's epilogue. The tensor cores still idle during an epilogue (one block per SM): on an H200
// it measured even with wg_core.cuh's two blocks per SM (docs/BENCHMARKS.md).
//
// Shared memory (from the 1024-aligned base): the A stages, the B stages (the layouts of WgCfg),
// an f32 staging tile [BM][kEpiLd] for the epilogue (each consumer warpgroup stages and writes its
// own 64 rows), the 2 x kStages barriers; the kernel's own data after kSmem.
#include <cstdint>
#include <type_traits>

#include "ops/cuda/mbarrier_ptx.cuh"
#include "ops/pit/cuda/swrite.cuh"
#include "ops/pit/cuda/wg_core.cuh"

namespace pit::sparse::cuda::dev {

// kProducerWarpgroups: the warpgroups that load (one could not keep two consumer warpgroups fed
// on an H200: at 0 % sparsity the consumers waited on full stages most of the time).
template <typename T, bool kAKMajor, bool kBKMajor, int kStages_, int kProducerWarpgroups = 2>
struct WsCfg : WgTiles<T, kAKMajor, kBKMajor> {
  using Base = WgTiles<T, kAKMajor, kBKMajor>;
  static constexpr int kEngine = 3;
  static constexpr int kStages = kStages_;
  static constexpr int kProducers = 128 * kProducerWarpgroups, kConsumers = 256;
  static constexpr int kConsumerWarps = kConsumers / 32;  // arrivals that empty a stage
  static constexpr int kThreads = kProducers + kConsumers;
  static constexpr int kConsumerBase = kProducers;  // the consumers' first thread (Acc's tile rows)
  static constexpr int kMinBlocks = 1;
  static constexpr size_t kSmemTiles = size_t{kStages} * (Base::kAElems + Base::kBElems) * sizeof(T);
  static constexpr size_t kSmem = kSmemTiles + Base::kSmemEpi + 2 * kStages * sizeof(uint64_t);
};

// The consumers' accumulators: wg_core.cuh's, counted from the first consumer thread.
template <class Cfg>
struct Acc<Cfg, 3> : Acc<Cfg, 2> {};

// The stage ring in shared memory (`tiles`: the aligned base).
template <class Cfg>
struct WsRing {
  using T = typename Cfg::Elem;
  static constexpr int S = Cfg::kStages;
  T* tiles;
  __device__ explicit WsRing(T* base) : tiles(base) {}
  __device__ T* a(int s) const { return tiles + s * Cfg::kAElems; }
  __device__ T* b(int s) const { return tiles + S * Cfg::kAElems + s * Cfg::kBElems; }
  __device__ float* epi() const { return reinterpret_cast<float*>(reinterpret_cast<char*>(tiles) + Cfg::kSmemTiles); }
  __device__ uint64_t* full(int s) const {
    return reinterpret_cast<uint64_t*>(reinterpret_cast<char*>(tiles) + Cfg::kSmemTiles + Cfg::kSmemEpi) + s;
  }
  __device__ uint64_t* empty(int s) const { return full(S) + s; }
  // Every thread, once: thread 0 initialises the barriers, then a block barrier. full_arrivals:
  // the arrivals that fill a stage (every producer thread's cp.asyncs; 1 for a TMA producer, whose
  // loads complete the stage by bytes).
  __device__ void init(uint32_t full_arrivals = Cfg::kProducers) const {
    if (threadIdx.x == 0) {
      for (int s = 0; s < S; ++s) {
        pit::cuda::mbar::init(full(s), full_arrivals);
        pit::cuda::mbar::init(empty(s), Cfg::kConsumerWarps);
      }
      pit::cuda::mbar::fence_init();
    }
    __syncthreads();
  }
};

// The producers' loop over this block's tiles: begin(t) prepares tile t (the producer threads
// only; it may use named barrier 1 over kProducers threads) and returns its k-stages;
// load(kt, sa, sb) issues stage kt's copies as 16-byte cp.asyncs only (the fast SRead path: the
// barrier counts cp.async completions, not plain shared stores). A load taking a fourth argument
// gets the ring slot too, e.g. to add TMA loads that complete on ring.full(slot) (the ring then
// initialised with one more arrival: the thread that expects their bytes).
template <class Cfg, class Begin, class Load>
__device__ __forceinline__ void ws_produce(const WsRing<Cfg>& ring, int num_tiles, Begin&& begin, Load&& load) {
  using T = typename Cfg::Elem;
  constexpr int S = Cfg::kStages;
  uint32_t it = 0;  // stages issued so far, over all tiles: ring slot it % S, pass it / S
  for (int t = blockIdx.x; t < num_tiles; t += gridDim.x) {
    const int num_k = begin(t);
    for (int kt = 0; kt < num_k; ++kt, ++it) {
      const int s = static_cast<int>(it % S);
      pit::cuda::mbar::wait(ring.empty(s), ((it / S) & 1) ^ 1);
      if constexpr (std::is_invocable_v<Load, int, T*, T*, int>) load(kt, ring.a(s), ring.b(s), s);
      else load(kt, ring.a(s), ring.b(s));
      pit::cuda::mbar::arrive_on_cp_async(ring.full(s));
    }
  }
  pit::cuda::mbar::cp_async_wait_all();
}

// A tile's k-stages and the bytes each of its stages loads (tma_produce, where they vary).
struct TmaTile {
  int num_k;
  uint32_t stage_bytes;
};

// The producers' loop with TMA loads (the ring initialised with one `full` arrival): the first
// kStages producer warps each own one ring slot (the others return at once), i.e. the stages it = warp,
// warp + kStages, ... of the block's tiles in order. begin(t) (every producer warp) prepares tile t
// and returns its k-stages (or a TmaTile); issue(kt, slot, bar) (every lane of the owning warp)
// issues stage kt's TMA loads into slot `slot`, completing on the mbarrier at shared address
// `bar`, which expects kStageBytes (or the TmaTile's bytes; lane 0 arrives with them first). A warp
// has kStages stages' time for each of its own, so the index reads before its loads do not hold
// the ring back.
template <class Cfg, uint32_t kStageBytes, class Begin, class Issue>
__device__ __forceinline__ void tma_produce(const WsRing<Cfg>& ring, int num_tiles, Begin&& begin, Issue&& issue) {
  constexpr int S = Cfg::kStages;
  static_assert(Cfg::kProducers >= 32 * S, "one producer warp per ring slot");
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  if (warp >= S) return;
  uint32_t it = 0;  // stages of the block's earlier tiles (ws_produce's count)
  for (int t = blockIdx.x; t < num_tiles; t += gridDim.x) {
    int num_k = 0;
    uint32_t stage_bytes = kStageBytes;
    if constexpr (std::is_same_v<decltype(begin(t)), TmaTile>) {
      const TmaTile tile = begin(t);
      num_k = tile.num_k;
      stage_bytes = tile.stage_bytes;
    } else {
      num_k = begin(t);
    }
    // This warp's stages of the tile: those whose ring position it + kt is its slot.
    for (int kt = (warp - static_cast<int>(it % S) + S) % S; kt < num_k; kt += S) {
      const uint32_t at = it + static_cast<uint32_t>(kt);
      pit::cuda::mbar::wait(ring.empty(warp), ((at / S) & 1) ^ 1);
      if (lane == 0) pit::cuda::mbar::arrive_expect_tx(ring.full(warp), stage_bytes);
      issue(kt, warp, pit::cuda::ptx::smem_u32(ring.full(warp)));
    }
    it += static_cast<uint32_t>(num_k);
  }
}

// One tile on the consumer side: num_k stages from the ring into acc (zeroed first); `it` counts
// the stages consumed over all tiles, as the producer's does. kHalves < 2: the accumulators'
// first kHalves row halves only (pp_core.cuh's Acc).
template <class Cfg, int kHalves = 2>
__device__ __forceinline__ void ws_consume(Acc<Cfg>& acc, const WsRing<Cfg>& ring, uint32_t& it, int num_k) {
  using namespace pit::cuda;
  constexpr int S = Cfg::kStages;
  const int lane = threadIdx.x % 32;
  acc.zero();
  for (int kt = 0; kt < num_k; ++kt, ++it) {
    const int s = static_cast<int>(it % S);
    mbar::wait(ring.full(s), (it / S) & 1);
    // The stage's cp.async writes (generic proxy, made visible by the barrier) before wgmma's
    // reads (async proxy).
    wgmma::fence_smem_for_async();
    wgmma::fence();
    if constexpr (kHalves == 2) acc.mma_stage(ring.a(s), ring.b(s));
    else acc.template mma_stage<kHalves>(ring.a(s), ring.b(s));
    wgmma::commit();
    // The previous stage's MMAs are done (wgmma.wait_group is warpgroup-wide): its slot goes
    // back to the producer, one arrival per warp.
    wgmma::wait<1>();
    if (kt > 0 && lane == 0) mbar::arrive(ring.empty(static_cast<int>((it - 1) % S)));
  }
  wgmma::wait<0>();
  if (num_k > 0 && lane == 0) mbar::arrive(ring.empty(static_cast<int>((it - 1) % S)));
}

// The consumers' epilogue of one tile: each consumer warpgroup stages its 64 rows of acc in the
// ring's staging tile and SWrites them (swrite_staged); row(r) gives tile row r's destination
// (r in the calling warpgroup's rows: 0-63 or 64-127), read only after the warpgroup's barrier,
// so a table it reads may be filled by the warpgroup just before the call. Named barriers 2 and 3
// (one per warpgroup); the staging tile and such tables are free again on return.
template <class Cfg, class RowFn>
__device__ __forceinline__ void ws_store_tile(const Acc<Cfg>& acc, const WsRing<Cfg>& ring, RowFn&& row, int64_t n0,
                                              int64_t ncols, const EpiArgs& epi) {
  constexpr int kHalf = Cfg::BM / 2;
  const int ctid = static_cast<int>(threadIdx.x) - Cfg::kConsumerBase, wg = ctid / 128;
  float* staged = ring.epi();
  acc.to_smem(staged);
  pit::cuda::mbar::sync_named(2 + wg, 128);
  swrite_staged<typename Cfg::Elem, kHalf, Cfg::BN, 128>(
      staged + wg * kHalf * Cfg::kEpiLd, Cfg::kEpiLd, [&](int r) { return row(wg * kHalf + r); }, n0, ncols, epi,
      ctid % 128);
  pit::cuda::mbar::sync_named(2 + wg, 128);  // the staged rows (and row's tables) are read before the next tile's
}

}  // namespace pit::sparse::cuda::dev
