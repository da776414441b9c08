#pragma once
// The 64 x 64 block kernels' tiles and accumulators (block_linear.cu, block_sampled.cu): the
// persistent, warp-specialised engine of ws_core.cuh (WsRing, ws_consume, ws_store_tile,
// tma_produce) with a 128 x 64 output tile.
#include <cstdint>
#include <type_traits>

#include "ops/cuda/wgmma_ptx.cuh"
#include "ops/pit/cuda/ws_core.cuh"

namespace pit::sparse::cuda {
namespace dev {

// The tiles of the 64 x 64 block kernels: an output tile of 128 x 64, two consumer warpgroups of
// 64 rows (wgmma m64n64k16), k steps of 64, a ring of 4 stages of 24 KB filled by TMA, the f32
// staging tile [128][64 + 8].
// - kSampled false (block_linear.cu, y = x V^T): A [128 tokens][64 k] and B [64 outputs][64 k],
//   both K-major (sread.cuh Sw128KMajor); with kTransB (dx = dy W, W's blocks as they lie) B is
//   [64 k][64 outputs], MN-major (Sw128MNMajor<64>: one 64-wide strip), as the sampled tiles' B;
// - kSampled true (block_sampled.cu, dV = dy^T x at 2 kHalves blocks of one block row): A [64
//   tokens (k)][64 outputs (m)] shared by both warpgroups, and a B [64 tokens][64 inputs (n)] for
//   each block, all MN-major (Sw128MNMajor<64>: one 64-wide strip); tile rows 64 j .. 64 j + 63
//   are block j's.
// kHalves_: 64-row halves per consumer warpgroup. block_linear: an output tile of 128 kHalves_
// tokens; with 2 (256 tokens) each block's values feed twice the tokens per load. Counting the
// boxes' bytes (an estimate, not a counter reading), a 4096 -> 16384 layer at 10 % moves x's boxes
// 1.7 GB and the blocks' 0.86 GB at 128 tokens (0.43 GB at 256) from L2: at the 0.41 ms measured on
// an H200 about 6.2 TB/s, near the 8.2 TB/s `pit-bench roofline` measured for L2; 256 tokens
// measured 0.37 ms. Sampled: 2 kHalves_ blocks of a block row per
// item, warpgroup w taking blocks kHalves_ w + h, all sharing the stage's A (dy's rows: with 4
// blocks an item, dy's boxes are read half as often). With 2 the ring is 3 stages of 40 KB.
template <typename T, bool kSampled, bool kTransB_ = false, int kHalves_ = 1>
struct BlockCfg {
  using Elem = T;
  static constexpr int kEngine = 5;
  static constexpr bool kMma = true;
  static constexpr bool kSampledTiles = kSampled;
  static constexpr bool kTransB = kTransB_;
  static_assert(!(kSampled && kTransB_), "kTransB is block_linear's");
  static_assert(kHalves_ == 1 || kHalves_ == 2, "one or two halves a warpgroup");
  static constexpr int kHalves = kHalves_;
  static constexpr int BM = 128 * kHalves_, BN = 64, BK = 64;
  static constexpr int V = kVec<T>;
  static constexpr bool kAK = kSampled, kBK = kSampled || kTransB_;
  using ALayout = std::conditional_t<kSampled, Sw128MNMajor<BK>, Sw128KMajor>;
  using BLayout = std::conditional_t<kBK, Sw128MNMajor<BK>, Sw128KMajor>;
  // Stages (1024-aligned) of 24 KB: 16 + 8 KB, or 8 KB of A and two 8 KB B tiles; 40 KB (32 + 8)
  // with 256 tokens.
  static constexpr int kAElems = kSampled ? BK * 64 : BM * BK, kBElems = kSampled ? 2 * kHalves_ * BK * BN : BN * BK;
  static constexpr int kBlocksPerItem = 2 * kHalves_;  // sampled
  static constexpr int kEpiLd = BN + 8;
  static constexpr size_t kSmemEpi = size_t{BM} * kEpiLd * sizeof(float);
  static constexpr size_t kAlign = 1024, kAlignSlack = kAlign - 16;
  static constexpr int kStages = kHalves_ == 1 ? 4 : 3;
  // A producer warp per ring slot, in a whole warpgroup: wgmma needs each consumer warpgroup's first
  // warp at a multiple of 4 (with 3 producer warps the H200 raised an illegal instruction).
  static constexpr int kProducers = 128, kConsumers = 256;
  static constexpr int kConsumerWarps = kConsumers / 32;
  static constexpr int kThreads = kProducers + kConsumers;
  static constexpr int kConsumerBase = kProducers;
  static constexpr int kMinBlocks = 1;
  static constexpr size_t kSmemTiles = size_t{kStages} * (kAElems + kBElems) * sizeof(T);
  static constexpr size_t kSmem = kSmemTiles + kSmemEpi + 2 * kStages * sizeof(uint64_t);
};

// A consumer warpgroup's accumulators: kHalves 64 x 64 halves (its 64 kHalves rows of the tile).
template <class Cfg>
struct Acc<Cfg, 5> {
  static constexpr int H = Cfg::kHalves;
  float d[H][32];
  __device__ void zero() {
#pragma unroll
    for (int h = 0; h < H; ++h)
#pragma unroll
      for (int i = 0; i < 32; ++i) d[h][i] = 0.f;
  }
  // fn(row, col, v0, v1) as for the other engines (wgmma's accumulator layout, 8 column blocks).
  template <class Fn>
  __device__ void for_each_pair(Fn&& fn) const {
    const int tid = static_cast<int>(threadIdx.x) - Cfg::kConsumerBase, lane = tid % 32;
    const int q = lane % 4;
#pragma unroll
    for (int h = 0; h < H; ++h) {
      const int r0 = ((tid / 128) * H + h) * 64 + ((tid / 32) % 4) * 16 + lane / 4;
#pragma unroll
      for (int j = 0; j < Cfg::BN / 8; ++j) {
        fn(r0, j * 8 + 2 * q, d[h][4 * j], d[h][4 * j + 1]);
        fn(r0 + 8, j * 8 + 2 * q, d[h][4 * j + 2], d[h][4 * j + 3]);
      }
    }
  }
  __device__ void to_smem(float* s) const { stage_acc<Cfg>(*this, s); }
  // Issues this warpgroup's MMAs of one stage: block_linear, its 64 rows of A against all of B
  // (K-major, a k16 step 32 bytes on; B MN-major with kTransB, a k16 step two 8-row atoms on);
  // sampled, all of A against its own B (MN-major).
  __device__ void mma_stage(const typename Cfg::Elem* sa, const typename Cfg::Elem* sb) {
    using namespace pit::cuda;
    const int wg = (static_cast<int>(threadIdx.x) - Cfg::kConsumerBase) / 128;
    constexpr bool kHalf = std::is_same_v<typename Cfg::Elem, Half>;
    if constexpr (Cfg::kSampledTiles) {
      const uint32_t a0 = ptx::smem_u32(sa), b0 = ptx::smem_u32(sb) + wg * H * Cfg::BK * Cfg::BN * 2;
#pragma unroll
      for (int kk = 0; kk < Cfg::BK / 16; ++kk)
#pragma unroll
        for (int h = 0; h < H; ++h)
          wgmma::mma_m64n64k16<kHalf, 1, 1>(d[h], wgmma::desc_sw128(a0 + kk * 2048, Cfg::BK * 128, 1024),
                                            wgmma::desc_sw128(b0 + h * Cfg::BK * Cfg::BN * 2 + kk * 2048,
                                                              Cfg::BK * 128, 1024), 1);
    } else {
      const uint32_t a0 = ptx::smem_u32(sa) + wg * H * 64 * 128, b0 = ptx::smem_u32(sb);
#pragma unroll
      for (int kk = 0; kk < Cfg::BK / 16; ++kk)
#pragma unroll
        for (int h = 0; h < H; ++h) {
          const uint64_t da = wgmma::desc_sw128(a0 + h * 64 * 128 + kk * 32, 16, 1024);
          if constexpr (Cfg::kTransB)
            wgmma::mma_m64n64k16<kHalf, 0, 1>(d[h], da, wgmma::desc_sw128(b0 + kk * 2048, Cfg::BK * 128, 1024), 1);
          else
            wgmma::mma_m64n64k16<kHalf, 0, 0>(d[h], da, wgmma::desc_sw128(b0 + kk * 32, 16, 1024), 1);
        }
    }
  }
};

}  // namespace dev
}  // namespace pit::sparse::cuda
