#pragma once
// The main loop shared by every PIT GEMM kernel: a kStages-deep cp.async pipeline of shared-memory
// tiles that the kernel's SRead loaders fill (A: [BM x BK], B: [BK x BN], each stored k-major or
// not, whichever keeps the loader's global reads contiguous), computed with mma.sync m16n8k16
// (f16/bf16, f32 accumulators) or with f32 FMAs on the CUDA cores (f32, no TF32 rounding). The
// kernel then walks the accumulator pairs (Acc::for_each_pair) and SWrites them.
//
// Shared-memory tiles carry 16 bytes of padding per row: consecutive rows then start in different
// 16-byte bank groups, so the 8 row addresses of every ldmatrix phase hit 8 distinct groups.
#include <cstdint>
#include <type_traits>

#include "ops/pit/cuda/mma.cuh"
#include "ops/pit/cuda/sread.cuh"

namespace pit::sparse::cuda::dev {

// Threads of the f32 (CUDA-core) configs: a 16 x 16 grid of threads owns the tile. The tensor-core
// configs have kWarpsM x kWarpsN warps.
inline constexpr int kGemmThreads = 256;

// a_kmajor: the A tile is stored [BK][BM] (element (m, k) at k * ld + m), e.g. condensed k
// micro-tiles or A^T; otherwise [BM][BK]. b_kmajor: B stored [BK][BN] (rows of B), else [BN][BK].
// kBK_: the k depth of a stage, 0 for the default (32 for 16-bit types: two mma k-steps, 64-byte
// rows; 16 for f32, the same 64 bytes).
template <typename T, int BM_, int BN_, int kWarpsM, int kWarpsN, bool kAKMajor, bool kBKMajor, int kStages_,
          int kBK_ = 0>
struct TileCfg {
  using Elem = T;
  static constexpr bool kMma = !std::is_same_v<T, float>;
  // The engine: 0 f32 FMAs on the CUDA cores, 1 mma.sync (2: wgmma, ops/pit/cuda/wg_core.cuh).
  static constexpr int kEngine = kMma ? 1 : 0;
  // Alignment the tiles need (the kernel aligns the dynamic shared-memory base up to it: allocate
  // kAlignSlack more).
  static constexpr size_t kAlign = 16, kAlignSlack = 0;
  static constexpr int BM = BM_, BN = BN_;
  static constexpr int BK = kBK_ > 0 ? kBK_ : (kMma ? 32 : 16);
  static constexpr int kStages = kStages_;
  static constexpr int V = kVec<T>;
  static constexpr bool kAK = kAKMajor, kBK = kBKMajor;
  static constexpr int kARows = kAK ? BK : BM, kACols = kAK ? BM : BK, kALd = kACols + V;
  static constexpr int kBRows = kBK ? BK : BN, kBCols = kBK ? BN : BK, kBLd = kBCols + V;
  static constexpr int kAElems = kARows * kALd, kBElems = kBRows * kBLd;
  using ALayout = PaddedLayout<kALd>;
  using BLayout = PaddedLayout<kBLd>;
  static constexpr size_t kSmem = size_t{kStages} * (kAElems + kBElems) * sizeof(T);
  // Kernels whose epilogue stages the f32 accumulator tile in the same shared memory
  // (Acc::to_smem, swrite_staged) need kSmemStaged: rows padded by 8 floats, so that the
  // fragments' 8-byte stores of one half-warp hit distinct banks.
  static constexpr int kEpiLd = BN_ + 8;
  static constexpr size_t kSmemEpi = size_t{BM_} * kEpiLd * sizeof(float);
  static constexpr size_t kSmemStaged = kSmem > kSmemEpi ? kSmem : kSmemEpi;
  // Warp tile (mma path).
  static constexpr int WTM = BM / kWarpsM, WTN = BN / kWarpsN;
  static constexpr int MT = WTM / 16, NT = WTN / 8;
  static constexpr int kThreads = kWarpsM * kWarpsN * 32;
  // Blocks per SM the kernels are compiled for (__launch_bounds__): two for mma.sync tiles whose
  // warps hold at most 64 accumulators a thread (8 warps then get 128 registers; left to itself
  // the compiler took up to 196 in the gather kernel, one block per SM, 1.7x slower); one for
  // larger warp tiles (capped at 128 registers, 64 x 64 warp tiles spilled and ran 4x slower) and f32.
  static constexpr int kMinBlocks = kMma && MT * NT * 4 <= 64 ? 2 : 1;
  static_assert(kMma || kThreads == kGemmThreads, "f32 configs: 8 warps (16 x 16 threads)");
  static_assert(!kMma || (WTM % 16 == 0 && WTN % 16 == 0), "warp tile: whole 16x16 pieces");
  static_assert(kMma || (BM % 16 == 0 && BN % 32 == 0), "f32 thread tile: 16 x 16 threads, column pairs");
  static constexpr int kWarpsN_ = kWarpsN;
};

// Accumulators of one block tile, in registers, by engine.
template <class Cfg, int kEngine = Cfg::kEngine>
struct Acc;

// Acc::to_smem of every engine: the accumulator pairs into the f32 tile [BM][Cfg::kEpiLd] at s
// (shared memory).
template <class Cfg, class AccT>
__device__ __forceinline__ void stage_acc(const AccT& acc, float* s) {
  acc.for_each_pair([&](int r, int col, float v0, float v1) {
    pit::cuda::ptx::st_shared_f2(s + r * Cfg::kEpiLd + col, v0, v1);
  });
}

// The tile area of the dynamic shared memory: its base aligned up to Cfg::kAlign.
template <class Cfg>
__device__ __forceinline__ typename Cfg::Elem* tile_base(void* raw) {
  const uintptr_t p = reinterpret_cast<uintptr_t>(raw);
  return reinterpret_cast<typename Cfg::Elem*>((p + Cfg::kAlign - 1) & ~uintptr_t{Cfg::kAlign - 1});
}

template <class Cfg>
struct Acc<Cfg, 1> {
  float c[Cfg::MT][Cfg::NT][4];
  __device__ void zero() {
#pragma unroll
    for (int i = 0; i < Cfg::MT; ++i)
#pragma unroll
      for (int j = 0; j < Cfg::NT; ++j) c[i][j][0] = c[i][j][1] = c[i][j][2] = c[i][j][3] = 0.f;
  }
  // fn(row, col, v0, v1): tile row, tile column (even) and the values at (row, col), (row, col+1).
  template <class Fn>
  __device__ void for_each_pair(Fn&& fn) const {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int wm = warp / Cfg::kWarpsN_, wn = warp % Cfg::kWarpsN_;
    const int g = lane / 4, q = lane % 4;
#pragma unroll
    for (int i = 0; i < Cfg::MT; ++i)
#pragma unroll
      for (int j = 0; j < Cfg::NT; ++j) {
        const int r = wm * Cfg::WTM + i * 16 + g, col = wn * Cfg::WTN + j * 8 + 2 * q;
        fn(r, col, c[i][j][0], c[i][j][1]);
        fn(r + 8, col, c[i][j][2], c[i][j][3]);
      }
  }
  // Stores the tile as f32 [BM][Cfg::kEpiLd] at s (shared memory, free: after mainloop).
  __device__ void to_smem(float* s) const {
    stage_acc<Cfg>(*this, s);
  }
  // One k-stage: C += A B from the stage's tiles.
  __device__ void mma_stage(const typename Cfg::Elem* sa, const typename Cfg::Elem* sb) {
    using T = typename Cfg::Elem;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int m0 = (warp / Cfg::kWarpsN_) * Cfg::WTM, n0 = (warp % Cfg::kWarpsN_) * Cfg::WTN;
#pragma unroll
    for (int kk = 0; kk < Cfg::BK; kk += 16) {
      uint32_t a[Cfg::MT][4];
#pragma unroll
      for (int i = 0; i < Cfg::MT; ++i) {
        if constexpr (Cfg::kAK) {
          const int kr = kk + (lane % 8) + (lane / 16) * 8, mc = m0 + i * 16 + ((lane / 8) % 2) * 8;
          ldsm_x4_trans(a[i], sa + kr * Cfg::kALd + mc);
        } else {
          const int mr = m0 + i * 16 + (lane % 16), kc = kk + (lane / 16) * 8;
          ldsm_x4(a[i], sa + mr * Cfg::kALd + kc);
        }
      }
#pragma unroll
      for (int j = 0; j < Cfg::NT; j += 2) {
        uint32_t b[4];
        if constexpr (Cfg::kBK) {
          const int kr = kk + (lane % 8) + ((lane / 8) % 2) * 8, nc = n0 + j * 8 + (lane / 16) * 8;
          ldsm_x4_trans(b, sb + kr * Cfg::kBLd + nc);
        } else {
          const int nr = n0 + j * 8 + (lane % 8) + (lane / 16) * 8, kc = kk + ((lane / 8) % 2) * 8;
          ldsm_x4(b, sb + nr * Cfg::kBLd + kc);
        }
#pragma unroll
        for (int i = 0; i < Cfg::MT; ++i) {
          mma16816<T>(c[i][j], a[i], b[0], b[1]);
          mma16816<T>(c[i][j + 1], a[i], b[2], b[3]);
        }
      }
    }
  }
};

// f32: thread (ty, tx) of a 16 x 16 grid owns rows ty + 16 i and column pairs 2 tx + 32 j.
template <class Cfg>
struct Acc<Cfg, 0> {
  static constexpr int TM = Cfg::BM / 16, TN = Cfg::BN / 32;
  float c[TM][TN][2];
  __device__ void zero() {
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) c[i][j][0] = c[i][j][1] = 0.f;
  }
  template <class Fn>
  __device__ void for_each_pair(Fn&& fn) const {
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) fn(ty + 16 * i, 2 * tx + 32 * j, c[i][j][0], c[i][j][1]);
  }
  __device__ void to_smem(float* s) const {
    stage_acc<Cfg>(*this, s);
  }
  __device__ void mma_stage(const float* sa, const float* sb) {
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
#pragma unroll 4
    for (int k = 0; k < Cfg::BK; ++k) {
      float a[TM];
#pragma unroll
      for (int i = 0; i < TM; ++i) {
        const int m = ty + 16 * i;
        a[i] = Cfg::kAK ? sa[k * Cfg::kALd + m] : sa[m * Cfg::kALd + k];
      }
#pragma unroll
      for (int j = 0; j < TN; ++j) {
        const int n = 2 * tx + 32 * j;
        const float b0 = Cfg::kBK ? sb[k * Cfg::kBLd + n] : sb[n * Cfg::kBLd + k];
        const float b1 = Cfg::kBK ? sb[k * Cfg::kBLd + n + 1] : sb[(n + 1) * Cfg::kBLd + k];
#pragma unroll
        for (int i = 0; i < TM; ++i) {
          c[i][j][0] = fmaf(a[i], b0, c[i][j][0]);
          c[i][j][1] = fmaf(a[i], b1, c[i][j][1]);
        }
      }
    }
  }
};

// Runs num_k k-stages into acc (zeroed first). load(kt, sa, sb) issues the SRead of stage kt
// into the given tiles (every thread calls it); fixup(kt, sa, sb) runs after this thread's copies
// of stage kt completed and before the barrier that publishes them (no-op for most kernels).
// Ends with a barrier, so the caller may reuse the shared memory for the next tile.
template <class Cfg, class Load, class Fixup>
  requires(Cfg::kEngine < 2)
__device__ __forceinline__ void mainloop(Acc<Cfg>& acc, typename Cfg::Elem* smem, int num_k, Load&& load,
                                         Fixup&& fixup) {
  using T = typename Cfg::Elem;
  constexpr int S = Cfg::kStages;
  T* const sa = smem;
  T* const sb = smem + S * Cfg::kAElems;
  acc.zero();
#pragma unroll
  for (int s = 0; s < S - 1; ++s) {
    if (s < num_k) load(s, sa + s * Cfg::kAElems, sb + s * Cfg::kBElems);
    cp_async_commit();  // empty groups keep the count uniform
  }
  for (int kt = 0; kt < num_k; ++kt) {
    const int buf = kt % S;
    cp_async_wait<S - 2>();
    fixup(kt, sa + buf * Cfg::kAElems, sb + buf * Cfg::kBElems);
    __syncthreads();
    const int nk = kt + S - 1;
    if (nk < num_k) load(nk, sa + (nk % S) * Cfg::kAElems, sb + (nk % S) * Cfg::kBElems);
    cp_async_commit();
    acc.mma_stage(sa + buf * Cfg::kAElems, sb + buf * Cfg::kBElems);
  }
  cp_async_wait<0>();
  __syncthreads();
}

struct NoFixup {
  template <class... A>
  __device__ void operator()(A&&...) const {}
};

}  // namespace pit::sparse::cuda::dev
