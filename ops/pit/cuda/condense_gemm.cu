// K-condense PIT GEMMs (ops/pit/gemm.h condense_gemm, block_gemm): C = A B with A given by its
// non-zero micro-tiles. A block of the grid owns rows [i r, i r + r) of C (one row block of the
// index) and BN columns; its k loop runs over that row block's list only: SRead takes the
// condensed values of A (already in the order the loop reads them) and the rows of B the list
// names, so only non-zero micro-tiles of A and the matching rows of B are read.
//   r x 1 (K lists): the A tile is k-major, [BK entries][r] straight from the values.
//   b x b (blocks):  the A tile is [b][BK]; a stage covers BK / b blocks (b = 16) or half a
//                    block (b = 64) of the condensed K axis (length count * b).
// Tile configs (CondenseShape below): BM = the micro-tile's rows, rounded up to 16/32/64/128;
// BN = 256 on mma.sync so that a gathered B row feeds as many columns as possible; 128-row
// micro-tiles in f16/bf16 run on the wgmma engine (wg_core.cuh, 128 x 128 x 64 tiles, two
// blocks per SM); Engine::wgmma_persistent runs them on the persistent, warp-specialised one
// (ws_core.cuh: a block per SM walks the tiles, two producer warpgroups load while two consumer
// warpgroups compute and write), which measured even with it on an H200 at 90 % sparsity,
// 6 % faster at 95 %, slower at 0 % and 99 % (docs/BENCHMARKS.md). The row block's list is
// staged in shared memory first, so no gather waits on a global index load; SRead goes through
// cursors set up once per block (sread.cuh), and the epilogue stages the f32 tile in shared
// memory to write whole rows of C with 16-byte stores (swrite.cuh swrite_staged). Every output
// element belongs to one block, so accumulate is a plain read-modify-write and there is no
// split-K: at high sparsity the grid is still (row blocks x column tiles), a thousand blocks or
// more at 4096^2.
#include "ops/pit/cuda/gemm.h"

#include <algorithm>
#include <cstdint>

#include "ops/pit/cuda/launch.cuh"
#include "ops/pit/cuda/wg_core.cuh"
#include "ops/pit/cuda/ws_core.cuh"
#include "ops/pit/cuda/swrite.cuh"

namespace pit::sparse::cuda {
namespace {

template <typename T>
struct TileParams {
  const T* values;
  const int32_t* offsets;
  const int32_t* cols;  // k (K lists) or block column (blocks) of each entry
  const T* b;
  T* c;
  int64_t m, k, n;
  int tr;  // micro-tile rows (r or b; b == BM for blocks)
  int num_blocks, n_tiles;
  int idx_cap;  // list entries staged in shared memory (the rest are read from global memory)
  bool a_fast, b_fast;  // every SRead chunk of the values / of B 16-byte aligned
  dev::EpiArgs epi;
};

constexpr int bm_for(int64_t rows) { return rows <= 16 ? 16 : rows <= 32 ? 32 : rows <= 64 ? 64 : 128; }

// kBlocks: b x b blocks (A tile [BM][BK]) or r x 1 lists (A tile k-major). 8 warps; BN = 256 for
// BM <= 32 (warps of BM x 32) so that a gathered B row feeds as many columns as possible, else 128
// (warps of 64 x 32 or 32 x 32); 4 stages (70 to 78 KB: two blocks per SM), chosen over BM x 256
// tiles with 64 x 64 warp tiles (up to 248 registers, one block per SM: fewer warps to hide the
// gathers' latency); to be re-measured with pit-bench as the engine is tuned. f32: the same on
// the CUDA cores, 3 stages.
template <typename T, int BM>
struct CondenseShape {
  static constexpr bool kF32 = std::is_same_v<T, float>;
  static constexpr int BN = BM <= 32 ? 256 : 128;
  static constexpr int WM = BM <= 32 ? 1 : 2;
  static constexpr int WN = BM <= 32 ? 8 : 4;
  static constexpr int kStages = kF32 ? 3 : 4;
};
template <typename T, int BM, bool kBlocks>
using MmaCondenseCfg = dev::TileCfg<T, BM, CondenseShape<T, BM>::BN, CondenseShape<T, BM>::WM,
                                    CondenseShape<T, BM>::WN, !kBlocks, true, CondenseShape<T, BM>::kStages>;
// 128-row micro-tiles in f16/bf16 fill the wgmma engine's 128 x 128 tile (two warpgroups of 64
// rows); smaller ones stay on mma.sync (wgmma's M is 64 per warpgroup).
template <typename T, int BM, bool kBlocks>
using CondenseCfg =
    std::conditional_t<BM == 128 && !std::is_same_v<T, float>,
                       dev::WgCfg<T, !kBlocks, true, 3>,
                       MmaCondenseCfg<T, BM, kBlocks>>;

template <typename T, class Cfg, bool kBlocks>
__global__ void __launch_bounds__(Cfg::kThreads, Cfg::kMinBlocks) condense_kernel(const TileParams<T> p) {
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, NT = Cfg::kThreads;
  extern __shared__ uint4 smem_raw[];
  T* smem = dev::tile_base<Cfg>(smem_raw);
  int32_t* sidx = reinterpret_cast<int32_t*>(smem + Cfg::kSmemStaged / sizeof(T));
  const int tid = threadIdx.x;
  const int blk = static_cast<int>(blockIdx.x % p.num_blocks);
  const int nt = static_cast<int>(blockIdx.x / p.num_blocks);  // a column stripe's row blocks run together
  const int64_t n0 = int64_t{nt} * BN;
  const int off = p.offsets[blk];
  const int count = p.offsets[blk + 1] - off;
  // Blocks: b == BM, a compile-time constant (the divisions below are shifts).
  const int tr = kBlocks ? BM : p.tr;
  const int64_t klen = kBlocks ? int64_t{count} * tr : count;  // condensed K
  const int num_k = static_cast<int>((klen + BK - 1) / BK);
  const T* vals = p.values + int64_t{off} * tr * (kBlocks ? tr : 1);
  // The row block's list, staged in shared memory: the gathers then wait on no global index load.
  const int staged = min(count, p.idx_cap);
  for (int i = tid; i < staged; i += NT) sidx[i] = p.cols[off + i];
  __syncthreads();
  const auto col_at = [&](int j) { return j < p.idx_cap ? pit::cuda::ptx::ld_shared_s32(sidx + j) : p.cols[off + j]; };

  const int64_t m0 = int64_t{blk} * tr;
  const int64_t c_rows = min(int64_t{tr}, p.m - m0);  // rows of C this row block writes
  T* const c0 = p.c + m0 * p.n;
  const auto epilogue = [&](const dev::Acc<Cfg>& acc) {
    float* staged = reinterpret_cast<float*>(smem);
    acc.to_smem(staged);
    __syncthreads();
    dev::swrite_staged<T, BM, BN, NT>(staged, Cfg::kEpiLd, [&](int r) {
      return r < c_rows ? dev::RowDst<T>{c0 + r * p.n, 1.f} : dev::RowDst<T>{nullptr, 1.f};
    }, n0, p.n, p.epi);
  };
  // SRead cursors, set up once: the condensed values of A are read in order (one offset per
  // stage); the rows of B are named by the list, looked up at every stage.
  constexpr int V = Cfg::V;
  dev::RowGatherReader<T, BK, BN, typename Cfg::BLayout, NT> rb;
  rb.init(tid, [&](int, int c) { return dev::Src<T>{p.b + n0 + c, dev::valid_n(p.n - n0 - c, V)}; });
  if constexpr (!kBlocks) {
    // A: entry j's r-vector is values row j; tile row = entry, tile column = row of C.
    dev::StridedReader<T, BK, BM, typename Cfg::ALayout, NT, false> ra;
    ra.init(tid, [&](int r, int c) { return dev::Src<T>{vals + int64_t{r} * tr + c, dev::valid_n(tr - c, V)}; });
    const auto load = [&](int kt, T* sa, T* sb) {
      const int kb = kt * BK;
      ra.load(sa, tid, int64_t{kb} * tr, count - kb, p.a_fast, p.values);
      // The rows of B the stage's entries name: the entry index clamped (no branch), its row offset
      // a 32 x 32 -> 64-bit product; a stage whose entries are all staged reads only shared memory.
      const auto rows_of_b = [&](auto&& entry) {
        rb.load(sb, tid, [&](int r) {
          const int j = kb + r;
          const int64_t off = static_cast<int64_t>(static_cast<uint64_t>(static_cast<uint32_t>(entry(min(j, count - 1)))) *
                                                   static_cast<uint32_t>(p.n));
          return j < count ? off : int64_t{-1};
        }, p.b_fast, p.b);
      };
      if (kb + BK <= p.idx_cap) rows_of_b([&](int j) { return pit::cuda::ptx::ld_shared_s32(sidx + j); });
      else rows_of_b(col_at);
    };
    dev::Acc<Cfg> acc;
    dev::mainloop<Cfg>(acc, smem, num_k, load, dev::NoFixup{});
    epilogue(acc);
  } else {
    // A: row y of the tile, condensed column q = kb + c: block j = q / b, column x = q % b. Blocks
    // are stored [count][b][b], so a stage's sources lie (kb / b) b^2 + kb % b elements on from
    // stage 0's (BK divides b or b divides BK).
    dev::StridedReader<T, BM, BK, typename Cfg::ALayout, NT, true> ra;
    ra.init(tid, [&](int r, int c) {
      return dev::Src<T>{vals + (int64_t{c / BM} * BM + r) * BM + c % BM, V};
    });
    const int klen_i = static_cast<int>(klen);
    const auto load = [&](int kt, T* sa, T* sb) {
      const int kb = kt * BK;
      ra.load(sa, tid, int64_t{kb / BM} * BM * BM + kb % BM, klen_i - kb, p.a_fast, p.values);
      rb.load(sb, tid, [&](int r) {
        const int q = kb + r, j = q / BM, x = q % BM;
        const int64_t kk = j < count ? int64_t{col_at(j)} * BM + x : p.k;
        return kk < p.k ? kk * p.n : int64_t{-1};
      }, p.b_fast, p.b);
    };
    dev::Acc<Cfg> acc;
    dev::mainloop<Cfg>(acc, smem, num_k, load, dev::NoFixup{});
    epilogue(acc);
  }
}

// 128-row K lists in f16/bf16 on the persistent, warp-specialised engine (ws_core.cuh). Tiles are
// numbered as the grid of condense_kernel (a column stripe's row blocks together, so that the
// blocks running at one time share the stripe of B); each block takes every gridDim.x-th.
// Producers: per tile, the row block's list into shared memory (named barrier 1 over the producer
// warpgroups), the cursors, then the stages. Consumers: the MMAs, then each warpgroup stages its
// 64 rows of the f32 tile and writes them (named barriers 2 and 3). Sources must be 16-byte
// aligned (p.a_fast and p.b_fast): the stages are cp.async only.
template <typename T>
using WsCondenseCfg = dev::WsCfg<T, true, true, 4>;

template <typename T>
__global__ void __launch_bounds__(WsCondenseCfg<T>::kThreads, 1) condense_ws_kernel(const TileParams<T> p) {
  using Cfg = WsCondenseCfg<T>;
  namespace mbar = pit::cuda::mbar;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, V = Cfg::V;
  extern __shared__ uint4 smem_raw[];
  const dev::WsRing<Cfg> ring(dev::tile_base<Cfg>(smem_raw));
  int32_t* sidx = reinterpret_cast<int32_t*>(reinterpret_cast<char*>(ring.tiles) + Cfg::kSmem);
  ring.init();
  const int num_tiles = p.num_blocks * p.n_tiles;
  if (threadIdx.x < Cfg::kProducers) {
    const int tid = threadIdx.x;
    dev::StridedReader<T, BK, BM, typename Cfg::ALayout, Cfg::kProducers, false> ra;
    dev::RowGatherReader<T, BK, BN, typename Cfg::BLayout, Cfg::kProducers> rb;
    int off = 0, count = 0;
    const auto begin = [&](int t) {
      const int blk = t % p.num_blocks;
      const int64_t n0 = int64_t{t / p.num_blocks} * BN;
      off = p.offsets[blk];
      count = p.offsets[blk + 1] - off;
      mbar::sync_named(1, Cfg::kProducers);  // no producer thread reads the previous tile's list
      const int staged = min(count, p.idx_cap);
      for (int i = tid; i < staged; i += Cfg::kProducers) sidx[i] = p.cols[off + i];
      mbar::sync_named(1, Cfg::kProducers);
      const T* vals = p.values + int64_t{off} * p.tr;
      ra.init(tid, [&](int r, int c) { return dev::Src<T>{vals + int64_t{r} * p.tr + c, dev::valid_n(p.tr - c, V)}; });
      rb.init(tid, [&](int, int c) { return dev::Src<T>{p.b + n0 + c, dev::valid_n(p.n - n0 - c, V)}; });
      return (count + BK - 1) / BK;
    };
    const auto load = [&](int kt, T* sa, T* sb) {
      const int kb = kt * BK;
      ra.load(sa, tid, int64_t{kb} * p.tr, count - kb, true, p.values);
      rb.load(sb, tid, [&](int r) {
        const int j = kb + r;
        return j < count ? int64_t{j < p.idx_cap ? pit::cuda::ptx::ld_shared_s32(sidx + j) : p.cols[off + j]} * p.n
                         : int64_t{-1};
      }, true, p.b);
    };
    dev::ws_produce<Cfg>(ring, num_tiles, begin, load);
  } else {
    dev::Acc<Cfg> acc;
    uint32_t it = 0;
    for (int t = blockIdx.x; t < num_tiles; t += gridDim.x) {
      const int blk = t % p.num_blocks;
      const int64_t n0 = int64_t{t / p.num_blocks} * BN, m0 = int64_t{blk} * p.tr;
      dev::ws_consume<Cfg>(acc, ring, it, (p.offsets[blk + 1] - p.offsets[blk] + BK - 1) / BK);
      dev::ws_store_tile<Cfg>(acc, ring, [&](int r) {
        return r < p.tr && m0 + r < p.m ? dev::RowDst<T>{p.c + (m0 + r) * p.n, 1.f} : dev::RowDst<T>{nullptr, 1.f};
      }, n0, p.n, p.epi);
    }
  }
}

template <typename T>
void launch_ws(const TileParams<T>& p, StreamRef stream) {
  using Cfg = WsCondenseCfg<T>;
  auto* kernel = condense_ws_kernel<T>;
  const size_t smem = Cfg::kSmem + Cfg::kAlignSlack + sizeof(int32_t) * p.idx_cap;
  const int per_sm = allow_smem(kernel, smem, Cfg::kThreads);
  const int64_t tiles = int64_t{p.num_blocks} * p.n_tiles;
  const int64_t grid = persistent_grid(tiles, per_sm);
  kernel<<<static_cast<unsigned>(grid), Cfg::kThreads, smem, native(stream)>>>(p);
  check_launch("cuda::condense_gemm");
}

template <typename T, class Cfg, bool kBlocks>
void launch(const TileParams<T>& p, StreamRef stream) {
  auto* kernel = condense_kernel<T, Cfg, kBlocks>;
  const size_t smem = Cfg::kSmemStaged + Cfg::kAlignSlack + sizeof(int32_t) * p.idx_cap;
  allow_smem(kernel, smem, Cfg::kThreads);
  const int64_t grid = int64_t{p.num_blocks} * p.n_tiles;
  kernel<<<static_cast<unsigned>(grid), Cfg::kThreads, smem, native(stream)>>>(p);
  check_launch(kBlocks ? "cuda::block_gemm" : "cuda::condense_gemm");
}

template <typename T, bool kBlocks>
void run(TileParams<T> p, StreamRef stream, Engine engine = Engine::automatic) {
  PIT_CHECK(engine != Engine::wgmma_deep && engine != Engine::wgmma_pingpong && engine != Engine::wgmma_tma &&
                engine != Engine::wgmma_tma_pingpong && engine != Engine::wgmma_wide,
            "cuda::condense_gemm: Engine::wgmma_deep, wgmma_pingpong, wgmma_tma, wgmma_tma_pingpong and wgmma_wide are the "
            "M-gather's only (gather_gemm and its weight gradient); use "
            "Engine::automatic, mma, wgmma or wgmma_persistent");
  const auto go = [&]<class Cfg>() {
    p.n_tiles = static_cast<int>((p.n + Cfg::BN - 1) / Cfg::BN);
    launch<T, Cfg, kBlocks>(p, stream);
  };
  switch (bm_for(p.tr)) {
    case 16: go.template operator()<CondenseCfg<T, 16, kBlocks>>(); return;
    case 32: go.template operator()<CondenseCfg<T, 32, kBlocks>>(); return;
    case 64: go.template operator()<CondenseCfg<T, 64, kBlocks>>(); return;
    default: break;
  }
  if constexpr (!kBlocks && !std::is_same_v<T, float>) {
    PIT_CHECK(engine != Engine::wgmma_persistent || (p.a_fast && p.b_fast),
              "cuda::condense_gemm: the persistent wgmma engine needs 16-byte aligned rows of B and of the values "
              "(N and the micro-tile's rows multiples of 8); use Engine::automatic");
    if (engine == Engine::wgmma_persistent) {
      p.n_tiles = static_cast<int>((p.n + WsCondenseCfg<T>::BN - 1) / WsCondenseCfg<T>::BN);
      launch_ws<T>(p, stream);
      return;
    }
    if (engine == Engine::mma) {
      go.template operator()<MmaCondenseCfg<T, 128, false>>();
      return;
    }
  }
  go.template operator()<CondenseCfg<T, 128, kBlocks>>();
}

template <typename T>
TileParams<T> params(const Tensor& values, const Tensor& offsets, const Tensor& cols, int64_t m, int64_t k,
                     int64_t tr, const Tensor& b, Tensor& c, const Epilogue& ep) {
  TileParams<T> p{};
  p.values = values.data<T>();
  p.offsets = i32p(offsets);
  p.cols = i32p(cols);
  p.b = b.data<T>();
  p.c = c.data<T>();
  p.m = m;
  p.k = k;
  p.n = c.size(1);
  PIT_CHECK(p.n <= INT32_MAX, "cuda::condense_gemm: at most 2^31 - 1 columns of B and C, got ", p.n);
  p.tr = static_cast<int>(tr);
  p.num_blocks = static_cast<int>((m + tr - 1) / tr);
  // The longest list a row block can have (k, or block columns), staged up to 4096 entries (16 KB).
  const int64_t longest = tr == 0 ? 0 : (cols.numel() / std::max<int64_t>(p.num_blocks, 1));
  p.idx_cap = static_cast<int>(std::clamp<int64_t>(longest, 1, 4096));
  p.epi = epi_of(ep, false, c);
  // Values: entries of tr elements (lists) or blocks of b x b, each starting 16-byte aligned when
  // tr is a multiple of 16 bytes' worth of elements.
  p.a_fast = dev::chunks_aligned(p.values, tr);
  p.b_fast = dev::chunks_aligned(p.b, p.n);
  return p;
}

}  // namespace

void condense_gemm(const KListIndex& a, const Tensor& b, Tensor& c, const Epilogue& ep, StreamRef stream,
                   Engine engine) {
  pit::cuda::DeviceGuard guard(stream.device.index);  // the operands' GPU, not the thread's current one
  PIT_CHECK(a.block_rows >= 1 && a.block_rows <= 128, "cuda::condense_gemm: k micro-tiles of 1 to 128 rows, got ",
            a.block_rows);
  if (a.rows == 0 || c.size(1) == 0) return;
  dispatch_gemm(b.dtype(), "cuda::condense_gemm", [&]<typename T>() {
    run<T, false>(params<T>(a.values, a.offsets, a.k, a.rows, a.cols, a.block_rows, b, c, ep), stream, engine);
  });
}

void block_gemm(const BlockListIndex& a, const Tensor& b, Tensor& c, const Epilogue& ep, StreamRef stream) {
  pit::cuda::DeviceGuard guard(stream.device.index);  // the operands' GPU, not the thread's current one
  // A 16-byte chunk of the A tile must not straddle two blocks: b a multiple of 8 (f16/bf16) or
  // 4 (f32) elements.
  // The tile's BM is the block size (a compile-time constant in the kernel).
  PIT_CHECK(a.block == 16 || a.block == 32 || a.block == 64 || a.block == 128,
            "cuda::block_gemm: blocks of 16, 32, 64 or 128 on CUDA, got ", a.block);
  if (a.rows == 0 || c.size(1) == 0) return;
  dispatch_gemm(b.dtype(), "cuda::block_gemm", [&]<typename T>() {
    run<T, true>(params<T>(a.values, a.offsets, a.col, a.rows, a.cols, a.block, b, c, ep), stream);
  });
}

}  // namespace pit::sparse::cuda
