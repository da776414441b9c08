// M-gather PIT GEMM (ops/pit/gemm.h gather_gemm): per segment s, the rows its entries name are
// gathered from A by SRead into dense [BM x BK] tiles, multiplied with B_s (or the K-chunk's rows
// of a shared B) on the tensor cores, and SWritten to the named rows of C (or compactly).
// SRead goes through cursors set up once per tile (sread.cuh); the epilogue stages the f32 tile in
// shared memory and writes whole rows of C with 16-byte stores (swrite.cuh swrite_staged).
//
// Tiles: BM = 128 entries x BN = 128 columns. Two engines for f16/bf16 (args.engine):
// - wgmma (wg_core.cuh): two warpgroups, BK = 64, 3 stages (96 KB, registers capped at 128: two
//   blocks per SM); for segments with long K (experts, whole rows); for experts (a B per segment)
//   with its loads two stages ahead instead of one (WgCfg kDrain, Engine::wgmma_deep);
// - mma.sync (gemm_core.cuh): 8 warps of 64 x 32, BK = 32, 4 stages (76 KB, two blocks per SM);
//   for short K-chunks (seg_cols <= kShortK), where a tile is a single 64-deep k-step and the
//   wgmma pipeline does not pay for itself (measured with pit-bench, docs/BENCHMARKS.md).
// Expert segments (a B per segment) that fill the GPU take the wide engine (gather_wide.cu: 128 x
// 256 tiles) instead, or where it does not take them the persistent, warp-specialised engine
// (gather_ws.cu) in its ping-pong variant. f32 on the CUDA cores with BK = 16 and
// 3 stages. The number of row tiles depends on the segment sizes, which stay on the device: a persistent grid (as many blocks as fit on the SMs) walks the
// work items; each block first turns the segment offsets into a tile prefix in shared memory.
// Where the tiles are fewer than the blocks (few rows, long K: a row set at 95-99 % sparsity had
// 32 tiles of 64 k-steps on 132 SMs, 0.089 ms), the k-steps of each tile are split over several
// blocks (split K): f32 partial tiles in a workspace, added in split order by the last block to
// finish its split, which then runs the epilogue.
#include "ops/pit/cuda/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>

#include "core/memory.h"
#include "ops/cuda/device_utils.cuh"
#include "ops/pit/cuda/gather_core.cuh"
#include "ops/pit/cuda/launch.cuh"
#include "ops/pit/cuda/wg_core.cuh"
#include "ops/pit/cuda/swrite.cuh"

namespace pit::sparse::cuda {
namespace {

// Most splits of one tile's k-steps, and the fewest k-steps a split takes.
constexpr int kMaxSplits = 16, kMinSplitSteps = 4;

// K-chunks at most this wide run on mma.sync under Engine::automatic.
constexpr int64_t kShortK = 64;

// A K-major, B N-major ([K, N]) or K-major ([N, K], b_trans). kEng (f16/bf16): 0 mma.sync, 1 the
// wgmma engine, 2 the wgmma engine with its loads a stage further ahead (Engine::wgmma_deep).
template <typename T, bool kBTrans, int kEng>
using GatherCfg = std::conditional_t<
    std::is_same_v<T, float>, dev::TileCfg<float, 128, 128, 2, 4, false, !kBTrans, 3>,
    std::conditional_t<kEng >= 1, dev::WgCfg<T, false, !kBTrans, 3, kEng == 2>,
                       dev::TileCfg<T, 128, 128, 2, 4, false, !kBTrans, 4>>>;

// Split K, after a split's f32 tile is staged in shared memory ([BM][Cfg::kEpiLd]): stores it as
// partial `mine` of its tile; the split that finishes last (counter) replaces the staged tile by
// the sum of the tile's partials `all[0 .. splits)`, in that order (the same result whichever
// split finishes last), resets the counter and returns true: it runs the epilogue. All threads
// call it; it ends with a barrier.
template <class Cfg>
__device__ bool split_finish(float* staged, float* mine, const float* all, int splits, int* counter, int& s_last) {
  constexpr int BM = Cfg::BM, BN = Cfg::BN, kQuads = BM * BN / 4;
  for (int i = threadIdx.x; i < kQuads; i += Cfg::kThreads) {
    const int r = i / (BN / 4), c = (i % (BN / 4)) * 4;
    __stcg(reinterpret_cast<float4*>(mine) + i, pit::cuda::ptx::ld_shared_f4(staged + r * Cfg::kEpiLd + c));
  }
  __threadfence();  // this split's partial is visible before it is counted
  __syncthreads();
  if (threadIdx.x == 0) s_last = atomicAdd(counter, 1) == splits - 1;
  __syncthreads();
  if (!s_last) return false;
  __threadfence();  // the other splits' partials, counted before, are read after the count
  for (int i = threadIdx.x; i < kQuads; i += Cfg::kThreads) {
    const int r = i / (BN / 4), c = (i % (BN / 4)) * 4;
    float4 sum = __ldcg(reinterpret_cast<const float4*>(all) + i);
    for (int k = 1; k < splits; ++k) {
      const float4 v = __ldcg(reinterpret_cast<const float4*>(all + int64_t{k} * BM * BN) + i);
      sum = make_float4(sum.x + v.x, sum.y + v.y, sum.z + v.z, sum.w + v.w);
    }
    *reinterpret_cast<float4*>(staged + r * Cfg::kEpiLd + c) = sum;
  }
  if (threadIdx.x == 0) *counter = 0;  // ready for the next launch (stream order)
  __syncthreads();
  return true;
}

template <typename T, bool kBTrans, int kEng>
__global__ void __launch_bounds__(GatherCfg<T, kBTrans, kEng>::kThreads, GatherCfg<T, kBTrans, kEng>::kMinBlocks)
    gather_gemm_kernel(const GatherParams<T> p) {
  using Cfg = GatherCfg<T, kBTrans, kEng>;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK;
  extern __shared__ uint4 smem_raw[];
  T* smem = dev::tile_base<Cfg>(smem_raw);
  int64_t* a_off = reinterpret_cast<int64_t*>(smem + Cfg::kSmemStaged / sizeof(T));  // [BM]: A row offset, -1 past the segment
  int32_t* c_row = reinterpret_cast<int32_t*>(a_off + BM);                      // [BM]
  float* scale = reinterpret_cast<float*>(c_row + BM);                          // [BM]
  int32_t* tiles = reinterpret_cast<int32_t*>(scale + BM);                      // [segments + 1] tile prefix
  const int tid = threadIdx.x;

  dev::tile_prefix<BM>(p.offsets, p.segments, tiles);
  __syncthreads();
  const int64_t total = int64_t{tiles[p.segments]} * p.n_tiles;
  // Splits: as many as the grid has blocks per tile, at most kMaxSplits, every split at least
  // kMinSplitSteps k-steps (K-chunk segments are short: never split). Every block computes the same.
  const int k_steps = p.seg_cols > 0 ? 0 : static_cast<int>((p.k + BK - 1) / BK);
  const int splits = p.split_ws == nullptr || total == 0
                         ? 1
                         : max(1, static_cast<int>(std::min<int64_t>(
                                      {int64_t{kMaxSplits}, gridDim.x / total, int64_t{k_steps / kMinSplitSteps}})));
  __shared__ int s_last;
  dev::Acc<Cfg> acc;
  for (int64_t w = blockIdx.x; w < total * splits; w += gridDim.x) {
    const int tile = static_cast<int>(w % total), sp = static_cast<int>(w / total);
    const dev::TileAt at = dev::locate<BM>(tiles, p.offsets, p.segments, p.n_tiles, tile);
    const int s = at.s, e0 = at.e0, count = at.count;
    // This split's k-steps: [k_steps sp / splits, k_steps (sp + 1) / splits) of the tile's.
    const int64_t k_beg = p.seg_cols > 0 ? s * p.seg_cols : int64_t{k_steps * sp / splits} * BK;
    const int64_t k_end = p.seg_cols > 0 ? min(p.k, k_beg + p.seg_cols)
                                         : min(p.k, int64_t{k_steps * (sp + 1) / splits} * BK);
    const int64_t n0 = int64_t{at.nt} * BN;
    const T* bs = p.b + s * p.b_seg_stride;
    __syncthreads();  // the previous tile's epilogue is done with the row tables
    for (int r = tid; r < BM; r += Cfg::kThreads) {
      const int e = e0 + r;
      const bool ok = r < count;
      const int32_t named = ok ? p.rows[e] : 0;
      a_off[r] = ok ? int64_t{p.a_gathered ? named : e} * p.k : -1;
      c_row[r] = p.c_scattered ? named : e;
      scale[r] = ok && p.weights ? p.weights[e] : 1.f;
    }
    __syncthreads();
    const int k_len = static_cast<int>(k_end - k_beg);
    const int num_k = (k_len + BK - 1) / BK;
    // SRead cursors, set up once per tile: A's gathered rows walk along k; B's rows walk down k
    // ([K, N]) or its rows n walk along k ([N, K]).
    dev::StridedReader<T, BM, BK, typename Cfg::ALayout, Cfg::kThreads, true> ra;
    ra.init(tid, [&](int r, int c) {
      const int64_t off = a_off[r];
      return dev::Src<T>{p.a + (off < 0 ? 0 : off) + k_beg + c, off < 0 ? 0 : Cfg::V};
    });
    using BReader = std::conditional_t<kBTrans, dev::StridedReader<T, BN, BK, typename Cfg::BLayout, Cfg::kThreads, true>,
                                       dev::StridedReader<T, BK, BN, typename Cfg::BLayout, Cfg::kThreads, false>>;
    BReader rb;
    rb.init(tid, [&](int r, int c) {
      if constexpr (kBTrans) return dev::Src<T>{bs + (n0 + r) * p.k + k_beg + c, n0 + r < p.n ? Cfg::V : 0};
      else return dev::Src<T>{bs + (k_beg + r) * p.n + n0 + c, dev::valid_n(p.n - n0 - c, Cfg::V)};
    });
    const auto load = [&](int kt, T* sa, T* sb) {
      const int kb = kt * BK;
      ra.load(sa, tid, kb, k_len - kb, p.a_fast, p.a);
      rb.load(sb, tid, kBTrans ? int64_t{kb} : int64_t{kb} * p.n, k_len - kb, p.b_fast, p.b);
    };
    dev::mainloop<Cfg>(acc, smem, num_k, load, dev::NoFixup{});
    dev::EpiArgs epi = p.epi;
    if (epi.bias) epi.bias = static_cast<const T*>(epi.bias) + s * p.bias_seg_stride;
    float* staged = reinterpret_cast<float*>(smem);
    acc.to_smem(staged);
    __syncthreads();
    if (splits > 1 && !split_finish<Cfg>(staged, p.split_ws + int64_t{tile * splits + sp} * (BM * BN),
                                         p.split_ws + int64_t{tile} * splits * (BM * BN), splits,
                                         p.split_count + tile, s_last))
      continue;
    dev::swrite_staged<T, BM, BN, Cfg::kThreads>(staged, Cfg::kEpiLd, [&](int r) {
      return r < count ? dev::RowDst<T>{p.c + int64_t{c_row[r]} * p.n, scale[r]} : dev::RowDst<T>{nullptr, 0.f};
    }, n0, p.n, epi);
  }
}

template <typename T, bool kBTrans, int kEng>
void launch(GatherParams<T> p, int64_t capacity, StreamRef stream) {
  using Cfg = GatherCfg<T, kBTrans, kEng>;
  const size_t smem = Cfg::kSmemStaged + Cfg::kAlignSlack + Cfg::BM * (sizeof(int64_t) + sizeof(int32_t) + sizeof(float)) +
                      sizeof(int32_t) * (p.segments + 1);
  auto* kernel = gather_gemm_kernel<T, kBTrans, kEng>;
  const int per_sm = allow_smem(kernel, smem, Cfg::kThreads);
  // At most sum_s ceil(count_s / BM) <= capacity / BM + S row tiles.
  const int64_t bound = ((capacity + Cfg::BM - 1) / Cfg::BM + p.segments) * p.n_tiles;
  const int64_t grid = std::max<int64_t>(1, std::min<int64_t>(bound, int64_t{sm_count()} * per_sm));
  // Split K needs a partial tile per block and a counter per tile (at most one per block), zeroed:
  // offered where a tile has enough k-steps to split; the kernel splits only if the tiles (known on
  // the device) are fewer than the blocks.
  std::shared_ptr<Storage> ws, counts;
  if (p.seg_cols == 0 && (p.k + Cfg::BK - 1) / Cfg::BK >= 2 * kMinSplitSteps && grid >= 2) {
    ws = Storage::allocate(static_cast<size_t>(grid) * Cfg::BM * Cfg::BN * sizeof(float), stream.device, stream);
    counts = Storage::allocate(static_cast<size_t>(grid) * sizeof(int), stream.device, stream);
    PIT_CUDA_CHECK(cudaMemsetAsync(counts->data(), 0, static_cast<size_t>(grid) * sizeof(int), native(stream)));
    p.split_ws = static_cast<float*>(ws->data());
    p.split_count = static_cast<int*>(counts->data());
  }
  kernel<<<static_cast<unsigned>(grid), Cfg::kThreads, smem, native(stream)>>>(p);
  const cudaError_t e = cudaGetLastError();
  PIT_CHECK(e == cudaSuccess, "cuda::gather_gemm: kernel launch failed (grid ", grid, ", ", Cfg::kThreads,
            " threads, ", smem, " bytes of shared memory, ", per_sm, " blocks per SM): ", cudaGetErrorString(e));
}

// set_gather_wide's setting, from PIT_GATHER_WIDE (0: off) at first use.
std::atomic<bool>& gather_wide() {
  static std::atomic<bool> on{env_switch("PIT_GATHER_WIDE", true)};
  return on;
}

}  // namespace

bool set_gather_wide(bool on) { return gather_wide().exchange(on); }

void gather_gemm(const Tensor& a, const RowSetIndex& idx, const Tensor& b, Tensor& c, const GatherGemmArgs& args,
                 StreamRef stream) {
  pit::cuda::DeviceGuard guard(stream.device.index);  // the operands' GPU, not the thread's current one
  const int64_t k = a.size(1), n = c.size(1), s = idx.num_segments, cap = idx.rows.numel();
  PIT_CHECK(s <= 8192, "cuda::gather_gemm: at most 8192 segments (the tile prefix lives in shared memory), got ", s);
  if (cap == 0 || n == 0) return;
  dispatch_gemm(a.dtype(), "cuda::gather_gemm", [&]<typename T>() {
    using Cfg = GatherCfg<T, false, 1>;  // BN: the same in every config
    GatherParams<T> p{};
    p.a = a.data<T>();
    p.b = b.data<T>();
    p.c = c.data<T>();
    p.rows = i32p(idx.rows);
    p.offsets = i32p(idx.offsets);
    p.weights = args.use_weights ? idx.weights.data<float>() : nullptr;
    p.k = k;
    p.n = n;
    p.b_seg_stride = b.dim() == 3 ? k * n : 0;
    p.seg_cols = idx.segment_cols;
    p.bias_seg_stride = args.epilogue.bias.defined() && args.epilogue.bias.dim() == 2 ? n : 0;
    p.segments = static_cast<int>(s);
    p.n_tiles = static_cast<int>((n + Cfg::BN - 1) / Cfg::BN);
    p.a_gathered = args.a_gathered;
    p.c_scattered = args.c_scattered;
    // Scattered rows may repeat (MoE top-k, K-chunk segments): accumulate atomically then.
    p.epi = epi_of(args.epilogue, args.c_scattered, c);
    const bool seg_ok = idx.segment_cols % dev::kVec<T> == 0;
    p.a_fast = dev::chunks_aligned(p.a, k) && seg_ok;
    p.b_fast = args.b_trans ? dev::chunks_aligned(p.b, k) && seg_ok : dev::chunks_aligned(p.b, n);
    if (k == 0 && args.epilogue.write == Write::accumulate) return;
    const auto run = [&]<int kEng>() {
      if (args.b_trans) launch<T, true, kEng>(p, cap, stream);
      else launch<T, false, kEng>(p, cap, stream);
    };
    // Experts (a B per segment) stream their weights from DRAM, each read by only a few row tiles:
    // loads far ahead of the MMAs pay there. The persistent engine (4 stages ahead, across tiles)
    // measured 10-25% faster than the wgmma engine two stages ahead on every M-gather GEMM of MoE at
    // T = 16384, E = 64 (H200, docs/BENCHMARKS.md), which was 6-12% faster than one stage ahead
    // and 6% slower on a shared B (dense 4096^3, pit-bench engine); its ping-pong variant (one
    // warpgroup's epilogue under the other's MMAs) 4-15% faster again on the down, gu and dx GEMMs
    // and top-1's up GEMM, level to 9% slower on top-2's up GEMM (timed alternately). Neither
    // splits K: taken where the row tiles alone (capacity / BM, a lower bound) fill the SMs.
    const bool experts = args.engine == Engine::automatic && p.seg_cols == 0 && p.b_seg_stride != 0;
    if constexpr (!std::is_same_v<T, float>) {
      const int64_t a_rows = a.size(0);
      // The wide engine (gather_wide.cu: 128 x 256 tiles, the warpgroups cooperating) where it
      // takes the experts and its tiles fill the SMs, unless turned off (set_gather_wide): on both
      // GPUs the up and gu GEMMs of MoE 7-10% faster than on the ping-pong engine at top-2, the
      // down and dx GEMMs level with it (docs/BENCHMARKS.md, thirtieth session).
      if (args.engine == Engine::wgmma_wide ||
          (experts && gather_wide().load() && gather_wide_fills(cap, n) && gather_wide_takes(p, a_rows))) {
        if (args.b_trans) launch_gather_wide<T, true>(p, cap, a_rows, stream);
        else launch_gather_wide<T, false>(p, cap, a_rows, stream);
        return;
      }
      const bool fills = (cap / Cfg::BM) * p.n_tiles >= sm_count();
      const bool tma = args.engine == Engine::wgmma_tma || args.engine == Engine::wgmma_tma_pingpong;
      const bool pp = args.engine == Engine::wgmma_pingpong || args.engine == Engine::wgmma_tma_pingpong ||
                      (experts && p.a_fast && p.b_fast && fills && p.segments <= kWsMaxSegments);
      if (pp || tma || args.engine == Engine::wgmma_persistent) {
        const auto go = [&]<bool kPp, bool kTma>() {
          if (args.b_trans) launch_gather_ws<T, true, kPp, kTma>(p, cap, a_rows, stream);
          else launch_gather_ws<T, false, kPp, kTma>(p, cap, a_rows, stream);
        };
        if (tma) {
          if (pp) go.template operator()<true, true>();
          else go.template operator()<false, true>();
        } else if (pp) {
          go.template operator()<true, false>();
        } else {
          go.template operator()<false, false>();
        }
        return;
      }
    }
    const bool wg = args.engine == Engine::automatic ? p.seg_cols == 0 || p.seg_cols > kShortK
                                                     : args.engine != Engine::mma;
    const bool deep = args.engine == Engine::wgmma_deep || experts;
    if constexpr (std::is_same_v<T, float>) run.template operator()<0>();
    else if (deep) run.template operator()<2>();
    else if (wg) run.template operator()<1>();
    else run.template operator()<0>();
  });
}

}  // namespace pit::sparse::cuda
