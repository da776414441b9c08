// Weight gradient of the M-gather GEMM (ops/pit/gemm.h gather_weight_grad): for every segment s,
// dB_s = sum over its entries e of scale_e A[a_row(e)]^T G[g_row(e)], reducing over the entries
// with SRead of the rows of A and G that the forward's index names (no detection, nothing
// densified). Written as out[P, Q] = sum_e X[x(e), :P]^T Y[y(e), :Q] with X = A, Y = G (or, for
// b_trans, X = G, Y = A): both tiles are k-major (tile row = entry), straight from whole rows.
// use_weights scales the Y rows in shared memory once they arrive (each thread its own chunks).
// SRead goes through cursors (sread.cuh RowGatherReader); the epilogue stages the tile in shared
// memory and writes whole rows of dB (swrite.cuh swrite_staged).
//
// Tiles: 128 x 128 outputs, 8 warps of 64 x 32, BK = 32 entries, 4 stages (f32: CUDA cores, 16
// entries, 3 stages). Grid: (segment, row tile, column tile); every output element has one owner.
#include "ops/pit/cuda/gemm.h"

#include "ops/cuda/device_utils.cuh"
#include "ops/pit/cuda/gemm_core.cuh"
#include "ops/pit/cuda/launch.cuh"
#include "ops/pit/cuda/swrite.cuh"

namespace pit::sparse::cuda {
namespace {

template <typename T>
struct WgradParams {
  const T* x;
  const T* y;
  T* out;
  const int32_t* rows;
  const int32_t* offsets;
  const float* weights;
  int64_t p, q;           // out [S, P, Q]
  int64_t ldx, ldy;       // row lengths of X and Y
  bool x_gathered, y_gathered;
  bool x_fast, y_fast;  // every SRead chunk of X / Y 16-byte aligned
  int m_tiles, n_tiles;
  dev::EpiArgs epi;
};

template <typename T>
using WgradCfg = dev::TileCfg<T, 128, 128, 2, 4, true, true, (std::is_same_v<T, float> ? 3 : 4)>;

template <typename T>
__global__ void __launch_bounds__(dev::kGemmThreads) weight_grad_kernel(const WgradParams<T> p) {
  using Cfg = WgradCfg<T>;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK;
  extern __shared__ uint4 smem_raw[];
  T* smem = reinterpret_cast<T*>(smem_raw);
  const int tid = threadIdx.x;
  const int64_t w = blockIdx.x;
  const int nt = static_cast<int>(w % p.n_tiles);
  const int mt = static_cast<int>((w / p.n_tiles) % p.m_tiles);
  const int s = static_cast<int>(w / (int64_t{p.n_tiles} * p.m_tiles));
  const int64_t m0 = int64_t{mt} * BM, n0 = int64_t{nt} * BN;
  const int e0 = p.offsets[s], count = p.offsets[s + 1] - e0;
  const int num_k = (count + BK - 1) / BK;
  const auto row_of = [&](int e, bool gathered) { return int64_t{gathered ? p.rows[e] : e}; };

  // SRead cursors: the column part of each chunk's source once; the rows named per stage.
  constexpr int V = Cfg::V;
  dev::RowGatherReader<T, BK, BM, typename Cfg::ALayout, dev::kGemmThreads> rx;
  dev::RowGatherReader<T, BK, BN, typename Cfg::BLayout, dev::kGemmThreads> ry;
  rx.init(tid, [&](int, int c) { return dev::Src<T>{p.x + m0 + c, dev::valid_n(p.p - m0 - c, V)}; });
  ry.init(tid, [&](int, int c) { return dev::Src<T>{p.y + n0 + c, dev::valid_n(p.q - n0 - c, V)}; });
  const auto load = [&](int kt, T* sa, T* sb) {
    const int eb = e0 + kt * BK, left = count - kt * BK;
    rx.load(sa, tid, [&](int r) { return r < left ? row_of(eb + r, p.x_gathered) * p.ldx : int64_t{-1}; },
            p.x_fast, p.x);
    ry.load(sb, tid, [&](int r) { return r < left ? row_of(eb + r, p.y_gathered) * p.ldy : int64_t{-1}; },
            p.y_fast, p.y);
  };
  const auto fixup = [&](int kt, T*, T* sb) {
    if (!p.weights) return;
    dev::for_own_chunks<T, BK, BN, Cfg::kBLd, dev::kGemmThreads>(sb, tid, [&](int r, int, T* chunk) {
      if (kt * BK + r >= count) return;
      const float sc = p.weights[e0 + kt * BK + r];
#pragma unroll
      for (int i = 0; i < dev::kVec<T>; ++i) chunk[i] = pit::cuda::narrow<T>(pit::cuda::widen(chunk[i]) * sc);
    });
  };
  dev::Acc<Cfg> acc;
  dev::mainloop<Cfg>(acc, smem, num_k, load, fixup);
  T* out = p.out + int64_t{s} * p.p * p.q;
  float* staged = reinterpret_cast<float*>(smem);
  acc.to_smem(staged);
  __syncthreads();
  dev::swrite_staged<T, BM, BN, dev::kGemmThreads>(staged, Cfg::kEpiLd, [&](int r) {
    return m0 + r < p.p ? dev::RowDst<T>{out + (m0 + r) * p.q, 1.f} : dev::RowDst<T>{nullptr, 1.f};
  }, n0, p.q, p.epi);
}

}  // namespace

void gather_weight_grad(const Tensor& a, const Tensor& g, const RowSetIndex& idx, Tensor& db,
                        const GatherWeightGradArgs& args, StreamRef stream) {
  const int64_t k = a.size(1), n = g.size(1), s = idx.num_segments;
  if (k == 0 || n == 0 || s == 0) return;
  dispatch_gemm(a.dtype(), "cuda::gather_weight_grad", [&]<typename T>() {
    using Cfg = WgradCfg<T>;
    WgradParams<T> p{};
    const bool swap = args.b_trans;  // [N, K] = G^T A
    p.x = (swap ? g : a).template data<T>();
    p.y = (swap ? a : g).template data<T>();
    p.out = db.data<T>();
    p.rows = i32p(idx.rows);
    p.offsets = i32p(idx.offsets);
    p.weights = args.use_weights ? idx.weights.data<float>() : nullptr;
    p.p = swap ? n : k;
    p.q = swap ? k : n;
    p.ldx = swap ? n : k;
    p.ldy = swap ? k : n;
    p.x_gathered = swap ? args.g_gathered : args.a_gathered;
    p.y_gathered = swap ? args.a_gathered : args.g_gathered;
    p.x_fast = dev::chunks_aligned(p.x, p.ldx);
    p.y_fast = dev::chunks_aligned(p.y, p.ldy);
    p.m_tiles = static_cast<int>((p.p + Cfg::BM - 1) / Cfg::BM);
    p.n_tiles = static_cast<int>((p.q + Cfg::BN - 1) / Cfg::BN);
    p.epi.mode = args.write == Write::store ? dev::WriteMode::store : dev::WriteMode::accumulate;
    auto* kernel = weight_grad_kernel<T>;
    allow_smem(kernel, Cfg::kSmemStaged, dev::kGemmThreads);
    const int64_t grid = s * p.m_tiles * p.n_tiles;
    kernel<<<static_cast<unsigned>(grid), dev::kGemmThreads, Cfg::kSmemStaged, native(stream)>>>(p);
    check_launch("cuda::gather_weight_grad");
  });
}

}  // namespace pit::sparse::cuda
