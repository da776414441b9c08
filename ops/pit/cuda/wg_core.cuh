#pragma once
// The wgmma engine of the PIT GEMMs (sm_90a, f16/bf16): the same contract as gemm_core.cuh's
// TileCfg / Acc / mainloop, so a kernel switches engines by its config type. Block tile 128 x 128
// x 64, two warpgroups of m64n128k16 (rows 0-63 and 64-127), kStages-deep cp.async pipeline into
// the 128-byte-swizzled layouts of ops/cuda/wgmma_ptx.cuh (sread.cuh Sw128KMajor / Sw128MNMajor:
// the SRead cursors write them directly), loads running kStages - 2 stages ahead.
//
// kAKMajor / kBKMajor keep TileCfg's meaning (the tile is stored with k as its row): an A tile
// [BK][BM] is M-major for wgmma (transposed A), a B tile [BK][BN] N-major (transposed B).
#include <cstdint>
#include <type_traits>

#include "ops/cuda/wgmma_ptx.cuh"
#include "ops/pit/cuda/gemm_core.cuh"

namespace pit::sparse::cuda::dev {

// The tiles of the wgmma engines (this one and ws_core.cuh's): sizes, layouts, staging.
template <typename T, bool kAKMajor, bool kBKMajor>
struct WgTiles {
  static_assert(std::is_same_v<T, BFloat16> || std::is_same_v<T, Half>, "wgmma engine: f16 or bf16");
  using Elem = T;
  static constexpr bool kMma = true;
  static constexpr int BM = 128, BN = 128, BK = 64;
  static constexpr int V = kVec<T>;
  static constexpr bool kAK = kAKMajor, kBK = kBKMajor;
  static constexpr int kARows = kAK ? BK : BM, kACols = kAK ? BM : BK;
  static constexpr int kBRows = kBK ? BK : BN, kBCols = kBK ? BN : BK;
  using ALayout = std::conditional_t<kAK, Sw128MNMajor<BK>, Sw128KMajor>;
  using BLayout = std::conditional_t<kBK, Sw128MNMajor<BK>, Sw128KMajor>;
  static constexpr int kAElems = BM * BK, kBElems = BK * BN;  // 16 KB each: stages stay 1024-aligned
  static constexpr int kEpiLd = BN + 8;
  static constexpr size_t kSmemEpi = size_t{BM} * kEpiLd * sizeof(float);
  static constexpr size_t kAlign = 1024, kAlignSlack = kAlign - 16;
};

// kDrain: every k-step waits for its own wgmmas, so that the loads run kStages - 1 stages ahead
// (instead of kStages - 2 with one wgmma group left in flight).
template <typename T, bool kAKMajor, bool kBKMajor, int kStages_, bool kDrain_ = false>
struct WgCfg : WgTiles<T, kAKMajor, kBKMajor> {
  using Base = WgTiles<T, kAKMajor, kBKMajor>;
  static constexpr int kEngine = 2;
  static constexpr int kStages = kStages_;
  static constexpr bool kDrain = kDrain_;
  static constexpr int kAhead = kDrain ? kStages - 1 : kStages - 2;  // stages loaded ahead
  static constexpr int kThreads = 256;
  static constexpr int kConsumerBase = 0;  // the first thread of the MMA warpgroups
  // Blocks per SM the kernels are compiled for (__launch_bounds__): 3 stages fit two (96 KB of
  // shared memory each, registers capped at 128 a thread); deeper pipelines one.
  static constexpr int kMinBlocks = kStages <= 3 ? 2 : 1;
  static constexpr size_t kSmem = size_t{kStages} * (Base::kAElems + Base::kBElems) * sizeof(T);
  static constexpr size_t kSmemStaged = kSmem > Base::kSmemEpi ? kSmem : Base::kSmemEpi;
};

template <class Cfg>
struct Acc<Cfg, 2> {
  float d[64];
  __device__ void zero() {
#pragma unroll
    for (int i = 0; i < 64; ++i) d[i] = 0.f;
  }
  // fn(row, col, v0, v1) as for the other engines.
  template <class Fn>
  __device__ void for_each_pair(Fn&& fn) const {
    const int tid = threadIdx.x - Cfg::kConsumerBase, lane = tid % 32;
    const int r0 = (tid / 128) * 64 + ((tid / 32) % 4) * 16 + lane / 4, q = lane % 4;
#pragma unroll
    for (int j = 0; j < Cfg::BN / 8; ++j) {
      fn(r0, j * 8 + 2 * q, d[4 * j], d[4 * j + 1]);
      fn(r0 + 8, j * 8 + 2 * q, d[4 * j + 2], d[4 * j + 3]);
    }
  }
  __device__ void to_smem(float* s) const {
    stage_acc<Cfg>(*this, s);
  }
  // Issues (does not wait for) this warpgroup's MMAs of one stage.
  __device__ void mma_stage(const typename Cfg::Elem* sa, const typename Cfg::Elem* sb) {
    using namespace pit::cuda;
    const int wg = (threadIdx.x - Cfg::kConsumerBase) / 128;
    // A: K-major rows of 128 bytes (a warpgroup's 64 rows start 64 * 128 bytes on), or M-major
    // atoms of 64 m (the warpgroup's atom strip starts BK * 128 bytes on).
    const uint32_t a0 = ptx::smem_u32(sa) + wg * (Cfg::kAK ? Cfg::BK * 128 : 64 * 128);
    const uint32_t b0 = ptx::smem_u32(sb);
    constexpr uint32_t kAStep = Cfg::kAK ? 2048 : 32, kBStep = Cfg::kBK ? 2048 : 32;  // per k16
    constexpr uint32_t kALbo = Cfg::kAK ? Cfg::BK * 128 : 16, kBLbo = Cfg::kBK ? Cfg::BK * 128 : 16;
    constexpr bool kHalf = std::is_same_v<typename Cfg::Elem, Half>;
#pragma unroll
    for (int kk = 0; kk < Cfg::BK / 16; ++kk)
      wgmma::mma_m64n128k16<kHalf, Cfg::kAK ? 1 : 0, Cfg::kBK ? 1 : 0>(
          d, wgmma::desc_sw128(a0 + kk * kAStep, kALbo, 1024), wgmma::desc_sw128(b0 + kk * kBStep, kBLbo, 1024), 1);
  }
};

// The wgmma pipeline, same contract as gemm_core.cuh's mainloop: fixup(kt, sa, sb) runs once this
// thread's copies of stage kt are complete; its shared-memory writes (generic proxy) are fenced
// for the tensor cores (async proxy) before the barrier that publishes the stage.
template <class Cfg, class Load, class Fixup>
  requires(Cfg::kEngine == 2)
__device__ __forceinline__ void mainloop(Acc<Cfg>& acc, typename Cfg::Elem* smem, int num_k, Load&& load,
                                         Fixup&& fixup) {
  using namespace pit::cuda;
  constexpr int S = Cfg::kStages, kAhead = Cfg::kAhead;
  static_assert(kAhead >= 1, "wgmma pipeline: loads run at least one stage ahead");
  using T = typename Cfg::Elem;
  T* const sa = smem;
  T* const sb = smem + S * Cfg::kAElems;
  acc.zero();
#pragma unroll
  for (int s = 0; s < kAhead; ++s) {
    if (s < num_k) load(s, sa + s * Cfg::kAElems, sb + s * Cfg::kBElems);
    ptx::cp_async_commit();
  }
  for (int kt = 0; kt < num_k; ++kt) {
    const int buf = kt % S;
    ptx::cp_async_wait<kAhead - 1>();
    fixup(kt, sa + buf * Cfg::kAElems, sb + buf * Cfg::kBElems);
    wgmma::fence_smem_for_async();
    // Stage kt is visible to every warpgroup, and every warpgroup has finished the MMAs of the
    // stage whose buffer the next load overwrites (kt - 2 by wait<1> below; kt - 1 when draining).
    __syncthreads();
    const int nk = kt + kAhead;
    if (nk < num_k) load(nk, sa + (nk % S) * Cfg::kAElems, sb + (nk % S) * Cfg::kBElems);
    ptx::cp_async_commit();
    wgmma::fence();
    acc.mma_stage(sa + buf * Cfg::kAElems, sb + buf * Cfg::kBElems);
    wgmma::commit();
    wgmma::wait<Cfg::kDrain ? 0 : 1>();
  }
  wgmma::wait<0>();
  ptx::cp_async_wait<0>();
  __syncthreads();
}

}  // namespace pit::sparse::cuda::dev
