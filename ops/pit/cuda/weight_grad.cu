// Weight gradient of the M-gather GEMM (ops/pit/gemm.h gather_weight_grad): for every segment s,
// dB_s = sum over its entries e of scale_e A[a_row(e)]^T G[g_row(e)], reducing over the entries
// with SRead of the rows of A and G that the forward's index names (no detection, nothing
// densified). Written as out[P, Q] = sum_e X[x(e), :P]^T Y[y(e), :Q] with X = A, Y = G (or, for
// b_trans, X = G, Y = A): both tiles are k-major (tile row = entry), straight from whole rows.
// use_weights scales the Y rows in shared memory once they arrive (each thread its own chunks).
// SRead goes through cursors (sread.cuh RowGatherReader); the epilogue stages the tile in shared
// memory and writes whole rows of dB (swrite.cuh swrite_staged).
//
// Tiles: 128 x 128 outputs. f16/bf16 on the wgmma engine (wg_core.cuh: two warpgroups, 64
// entries a stage, 3 stages, both operands M/N-major in the 128-byte swizzle) or, forced, on
// mma.sync (8 warps of 64 x 32, 32 entries, 4 stages); f32 on the CUDA cores (16 entries, 3
// stages). Grid: (segment, row tile, column tile); every output element has one owner. The
// persistent, warp-specialised engine (weight_grad_ws.cu) runs only when asked for; Engine::automatic
// takes the lean kernel (weight_grad_lean.cu) for f16/bf16 with aligned rows, no entry weights and
// dB stored (MoE's dW1 and dW2), which gives the same sums with fewer instructions.
//
// Each stage's entry rows (and gates) are read from the index one stage ahead, in registers: read
// in front of the stage's copies they stalled every stage. MoE at T = 16384, d = 1024, ffn = 4096,
// E = 64 (about 256 entries a segment) on an H200, bf16 (`PIT_BENCH_MOE_PARTS=1 pit-bench moe`):
// dW1 0.64 ms, dW2 0.76 ms (mma.sync 0.76 / 0.87; before the read-ahead, mma.sync 0.87 / 1.28).
#include "ops/pit/cuda/gemm.h"

#include <cstdlib>
#include <string>

#include "ops/cuda/device_utils.cuh"
#include "ops/pit/cuda/launch.cuh"
#include "ops/pit/cuda/swrite.cuh"
#include "ops/pit/cuda/weight_grad_core.cuh"
#include "ops/pit/cuda/wg_core.cuh"

namespace pit::sparse::cuda {
namespace {

// kEng (f16/bf16): 0 mma.sync, 1 the wgmma engine, 2 the wgmma engine with its loads a stage
// further ahead (Engine::wgmma_deep).
template <typename T, int kEng>
using WgradCfg = std::conditional_t<
    std::is_same_v<T, float>, dev::TileCfg<float, 128, 128, 2, 4, true, true, 3>,
    std::conditional_t<kEng >= 1, dev::WgCfg<T, true, true, 3, kEng == 2>,
                       dev::TileCfg<T, 128, 128, 2, 4, true, true, 4>>>;

template <typename T, int kEng>
__global__ void __launch_bounds__(WgradCfg<T, kEng>::kThreads, WgradCfg<T, kEng>::kMinBlocks)
    weight_grad_kernel(const WgradParams<T> p) {
  using Cfg = WgradCfg<T, kEng>;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK;
  extern __shared__ uint4 smem_raw[];
  T* smem = dev::tile_base<Cfg>(smem_raw);
  const int tid = threadIdx.x;
  const int64_t w = blockIdx.x;
  const int nt = static_cast<int>(w % p.n_tiles);
  const int mt = static_cast<int>((w / p.n_tiles) % p.m_tiles);
  const int s = static_cast<int>(w / (int64_t{p.n_tiles} * p.m_tiles));
  const int64_t m0 = int64_t{mt} * BM, n0 = int64_t{nt} * BN;
  const int e0 = p.offsets[s], count = p.offsets[s + 1] - e0;
  const int num_k = (count + BK - 1) / BK;

  // SRead cursors: the column part of each chunk's source once; the rows named per stage.
  constexpr int V = Cfg::V;
  static_assert(BM == BN, "the X and Y tiles share their rows' walk");
  using Walk = dev::ChunkWalk<T, BK, BM, Cfg::kThreads>;
  dev::RowGatherReader<T, BK, BM, typename Cfg::ALayout, Cfg::kThreads> rx;
  dev::RowGatherReader<T, BK, BN, typename Cfg::BLayout, Cfg::kThreads> ry;
  rx.init(tid, [&](int, int c) { return dev::Src<T>{p.x + m0 + c, dev::valid_n(p.p - m0 - c, V)}; });
  ry.init(tid, [&](int, int c) { return dev::Src<T>{p.y + n0 + c, dev::valid_n(p.q - n0 - c, V)}; });
  // The entries of this thread's chunk rows are read from the index one stage before their loads
  // (and their weights one stage before the fixup), so that no stage waits on those reads.
  const bool gathered = p.x_gathered || p.y_gathered;
  int32_t named[Walk::kPer];  // the named row of each chunk's entry in the next stage loaded; -1 past the count
  float scale[Walk::kPer];    // each chunk's entry weight in the next stage fixed up
  const auto fetch_rows = [&](int kt) {
#pragma unroll
    for (int t = 0; t < Walk::kPer; ++t) {
      const int e = kt * BK + Walk::row(t, tid);
      named[t] = e < count ? (gathered ? p.rows[e0 + e] : e0 + e) : -1;
    }
  };
  const auto fetch_scales = [&](int kt) {
#pragma unroll
    for (int t = 0; t < Walk::kPer; ++t) {
      const int e = kt * BK + Walk::row(t, tid);
      scale[t] = e < count ? p.weights[e0 + e] : 0.f;
    }
  };
  fetch_rows(0);
  if (p.weights) fetch_scales(0);
  const auto load = [&](int kt, T* sa, T* sb) {
    int64_t ox[Walk::kPer], oy[Walk::kPer];
#pragma unroll
    for (int t = 0; t < Walk::kPer; ++t) {
      const int e = e0 + kt * BK + Walk::row(t, tid);  // the entry (compact operands are by entry)
      ox[t] = named[t] < 0 ? -1 : int64_t{p.x_gathered ? named[t] : e} * p.ldx;
      oy[t] = named[t] < 0 ? -1 : int64_t{p.y_gathered ? named[t] : e} * p.ldy;
    }
    rx.load_chunks(sa, tid, ox, p.x_fast, p.x);
    ry.load_chunks(sb, tid, oy, p.y_fast, p.y);
    if (kt + 1 < num_k) fetch_rows(kt + 1);
  };
  // Scales this thread's chunks of the Y tile (the ones it copied), wherever the layout put them,
  // with 16-byte shared-memory accesses.
  const auto fixup = [&](int kt, T*, T* sb) {
    if (!p.weights) return;
    dev::scale_own_chunks<T, Walk, typename Cfg::BLayout>(sb, tid, scale);
    if (kt + 1 < num_k) fetch_scales(kt + 1);
  };
  dev::Acc<Cfg> acc;
  dev::mainloop<Cfg>(acc, smem, num_k, load, fixup);
  T* out = p.out + int64_t{s} * p.p * p.q;
  float* staged = reinterpret_cast<float*>(smem);
  acc.to_smem(staged);
  __syncthreads();
  dev::swrite_staged<T, BM, BN, Cfg::kThreads>(staged, Cfg::kEpiLd, [&](int r) {
    return m0 + r < p.p ? dev::RowDst<T>{out + (m0 + r) * p.q, 1.f} : dev::RowDst<T>{nullptr, 1.f};
  }, n0, p.q, p.epi);
}

// Whether the environment leaves a kernel choice on: off only where `name` is "0" (comparisons;
// read per call). PIT_WEIGHT_GRAD_LEAN=0: Engine::automatic keeps the general kernel;
// PIT_WEIGHT_GRAD_WIDE=0: the lean kernel's cases keep it rather than the wide one.
bool switch_on(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr || std::string(v) != "0";
}
bool lean_allowed() { return switch_on("PIT_WEIGHT_GRAD_LEAN"); }
bool wide_allowed() { return switch_on("PIT_WEIGHT_GRAD_WIDE"); }

// The kernels' parameters for dB [S, P, Q] = the M-gather's weight gradient of a and g.
template <typename T>
WgradParams<T> wgrad_params(const Tensor& a, const Tensor& g, const RowSetIndex& idx, const Tensor& db,
                            const GatherWeightGradArgs& args) {
  using Cfg = WgradCfg<T, 0>;  // BM / BN: the same in every config
  const int64_t k = a.size(1), n = g.size(1);
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
  p.x_rows = (swap ? g : a).size(0);
  p.y_rows = (swap ? a : g).size(0);
  p.x_gathered = swap ? args.g_gathered : args.a_gathered;
  p.y_gathered = swap ? args.a_gathered : args.g_gathered;
  p.x_fast = dev::chunks_aligned(p.x, p.ldx);
  p.y_fast = dev::chunks_aligned(p.y, p.ldy);
  p.segments = static_cast<int>(idx.num_segments);
  p.m_tiles = static_cast<int>((p.p + Cfg::BM - 1) / Cfg::BM);
  p.n_tiles = static_cast<int>((p.q + Cfg::BN - 1) / Cfg::BN);
  p.epi.mode = args.write == Write::store ? dev::WriteMode::store : dev::WriteMode::accumulate;
  return p;
}

}  // namespace

bool gather_weight_grad_lean_takes(const Tensor& a, const Tensor& g, const RowSetIndex& idx, const Tensor& db,
                                   const GatherWeightGradArgs& args) {
  if (args.engine != Engine::automatic || (a.dtype() != DType::bf16 && a.dtype() != DType::f16) || !lean_allowed())
    return false;
  bool takes = false;
  dispatch_gemm(a.dtype(), "cuda::gather_weight_grad_lean_takes", [&]<typename T>() {
    if constexpr (!std::is_same_v<T, float>) takes = lean_takes(wgrad_params<T>(a, g, idx, db, args));
  });
  return takes;
}

bool gather_weight_grad_wide_takes(const Tensor& a, const Tensor& g, const RowSetIndex& idx, const Tensor& db,
                                   const GatherWeightGradArgs& args) {
  if (!gather_weight_grad_lean_takes(a, g, idx, db, args) || !wide_allowed()) return false;
  bool takes = false;
  dispatch_gemm(a.dtype(), "cuda::gather_weight_grad_wide_takes", [&]<typename T>() {
    if constexpr (!std::is_same_v<T, float>) takes = wide_takes(wgrad_params<T>(a, g, idx, db, args));
  });
  return takes;
}

void gather_weight_grad(const Tensor& a, const Tensor& g, const RowSetIndex& idx, Tensor& db,
                        const GatherWeightGradArgs& args, StreamRef stream) {
  pit::cuda::DeviceGuard guard(stream.device.index);  // the operands' GPU, not the thread's current one
  const int64_t k = a.size(1), n = g.size(1), s = idx.num_segments;
  if (k == 0 || n == 0 || s == 0) return;
  dispatch_gemm(a.dtype(), "cuda::gather_weight_grad", [&]<typename T>() {
    const WgradParams<T> p = wgrad_params<T>(a, g, idx, db, args);
    const int64_t grid = s * p.m_tiles * p.n_tiles;
    PIT_CHECK(grid < INT32_MAX, "cuda::gather_weight_grad: too many output tiles (", grid, ")");
    // Not taken by itself: on MoE's weight gradients (T = 16384, E = 64, H200) the persistent engine
    // measured 7-14% slower than the wgmma engine's two blocks an SM (dW1 0.673 against 0.628 ms),
    // its ping-pong variant 11-19% (0.698) (docs/BENCHMARKS.md). An expert's tile
    // reduces over ~256 entries (4 stages), so its epilogue, during which one block's tensor cores
    // idle, weighs as much as its MMAs.
    if constexpr (!std::is_same_v<T, float>) {
      if (args.engine == Engine::automatic && lean_takes(p) && lean_allowed()) {
        if (wide_takes(p) && wide_allowed()) launch_weight_grad_wide<T>(p, stream);
        else launch_weight_grad_lean<T>(p, stream);
        return;
      }
      if (args.engine == Engine::wgmma_wide) {  // (tests: the wide kernel where automatic might not take it)
        PIT_CHECK(wide_takes(p), "cuda::gather_weight_grad: Engine::wgmma_wide (the wide kernel) takes 16-bit rows of ",
                  "A and G 16-byte aligned, no entry weights, dB stored, 16-byte aligned and over 128 columns wide; "
                  "use Engine::automatic");
        launch_weight_grad_wide<T>(p, stream);
        return;
      }
      if (args.engine == Engine::wgmma_persistent) {
        launch_weight_grad_ws<T>(p, stream);
        return;
      }
      if (args.engine == Engine::wgmma_pingpong) {
        launch_weight_grad_ws<T, true>(p, stream);
        return;
      }
      if (args.engine == Engine::wgmma_tma) {
        launch_weight_grad_ws<T, false, true>(p, stream);
        return;
      }
      if (args.engine == Engine::wgmma_tma_pingpong) {
        launch_weight_grad_ws<T, true, true>(p, stream);
        return;
      }
    }
    const auto run = [&]<int kEng>() {
      using C = WgradCfg<T, kEng>;
      auto* kernel = weight_grad_kernel<T, kEng>;
      const size_t smem = C::kSmemStaged + C::kAlignSlack;
      allow_smem(kernel, smem, C::kThreads);
      kernel<<<static_cast<unsigned>(grid), C::kThreads, smem, native(stream)>>>(p);
      check_launch("cuda::gather_weight_grad");
    };
    if constexpr (std::is_same_v<T, float>) run.template operator()<0>();
    else if (args.engine == Engine::mma) run.template operator()<0>();
    else if (args.engine == Engine::wgmma_deep) run.template operator()<2>();
    else run.template operator()<1>();
  });
}

}  // namespace pit::sparse::cuda
