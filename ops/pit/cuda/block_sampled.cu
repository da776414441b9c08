// The values' gradient of a Linear on 64 x 64 blocks on CUDA (ops/pit/gemm.h sampled_gemm with
// blocks, a_trans, B as given: dV = dy^T x at V's listed blocks), f16/bf16, from dy [T, out] and
// x [T, in] as they lie. A work item is four blocks of one block row i (its last may have fewer):
// they share the rows of dy^T, dy's 64 columns of block row i. The k loop runs over the tokens,
// 64 a stage: dy's 64 x 64 box (A, MN-major) and x's 64 x 64 box at each block's column (B,
// MN-major) by TMA (ws_core.cuh tma_produce; an item's absent blocks are not loaded, the stage
// expects fewer bytes), two blocks per consumer warpgroup (wgmma m64n64k16 each), each block's
// 64 x 64 values written row by row (ws_core.cuh ws_store_tile). Counting the boxes' bytes (an
// estimate, not a counter reading), with two blocks an item a 4096 -> 16384 layer at 10 % moved
// about 7 TB/s from L2 on an H200 (0.35 ms), a third of it dy's boxes; four blocks an item read
// those half as often (0.333 -> 0.315 ms measured in one run). Tokens past T read as zeros, as do columns past
// out and in (so the values past the matrix edge come out 0). The items are numbered by a prefix
// over the block rows (gather_core.cuh tile_prefix / locate with tiles of four entries), made by
// each block in shared memory.
//
// The general sampled kernel (sampled_gemm.cu) runs one output row of 128 (of which a 64-row
// block used half) on mma.sync over the whole T: 1.85 ms for a 4096 -> 16384 layer at 10% on an
// H200 against 1.60 for cuBLAS's whole dense dW (docs/BENCHMARKS.md).
#include "ops/pit/cuda/gemm.h"

#include <cstdlib>
#include <string>

#include "ops/cuda/tensor_map.h"
#include "ops/cuda/tma_ptx.cuh"
#include "ops/pit/cuda/block_core.cuh"
#include "ops/pit/cuda/gather_core.cuh"
#include "ops/pit/cuda/launch.cuh"

namespace pit::sparse::cuda {
namespace {

template <typename T>
struct BlockSampledParams {
  const int32_t* offsets;  // [row blocks + 1]
  const int32_t* col;      // the block column of each entry
  T* values;               // [entries, 64 x 64]
  int64_t tokens;
  int row_blocks;
};

struct BlockSampledMaps {
  CUtensorMap dy, x;  // [T, out] and [T, in] in boxes of 64 x 64
};

// kHalves blocks per consumer warpgroup: four blocks an item (2), or two where
// PIT_BLOCK_SAMPLED_BLOCKS=2 says so (1; the benchmark compares the two).
template <typename T, int kHalves>
using SampledCfg = dev::BlockCfg<T, true, false, kHalves>;

template <typename T, int kHalves>
__global__ void __launch_bounds__(SampledCfg<T, kHalves>::kThreads, 1)
    block_sampled_kernel(const BlockSampledParams<T> p, const __grid_constant__ BlockSampledMaps maps) {
  using Cfg = SampledCfg<T, kHalves>;
  constexpr int BK = Cfg::BK, kItem = Cfg::kBlocksPerItem;
  constexpr uint32_t kABytes = Cfg::kAElems * sizeof(T), kBBytes = BK * Cfg::BN * sizeof(T);
  extern __shared__ uint4 smem_raw[];
  const dev::WsRing<Cfg> ring(dev::tile_base<Cfg>(smem_raw));
  int32_t* items = reinterpret_cast<int32_t*>(reinterpret_cast<char*>(ring.tiles) + Cfg::kSmem);  // [row blocks + 1]
  dev::tile_prefix<kItem>(p.offsets, p.row_blocks, items);
  ring.init(1);  // ends with a block barrier: the prefix is visible
  const int total = items[p.row_blocks];
  const int num_k = static_cast<int>((p.tokens + BK - 1) / BK);
  if (threadIdx.x < Cfg::kProducers) {
    const int lane = static_cast<int>(threadIdx.x) % 32;
    if (threadIdx.x == 0) {
      pit::cuda::tma::prefetch(&maps.dy);
      pit::cuda::tma::prefetch(&maps.x);
    }
    dev::TileAt at{};
    int32_t c = 0;  // lane j < kItem: the x column of the item's block j (when it has one)
    dev::tma_produce<Cfg, 0>(ring, total, [&](int t) {
      at = dev::locate<kItem>(items, p.offsets, p.row_blocks, 1, t);
      c = lane < at.count ? p.col[at.e0 + lane] * 64 : 0;
      return dev::TmaTile{num_k, kABytes + static_cast<uint32_t>(at.count) * kBBytes};
    }, [&](int kt, int slot, uint32_t bar) {
      const int32_t t0 = kt * BK;
      if (lane == kItem) pit::cuda::tma::load_2d(pit::cuda::ptx::smem_u32(ring.a(slot)), &maps.dy, at.s * 64, t0, bar);
      if (lane < at.count)
        pit::cuda::tma::load_2d(pit::cuda::ptx::smem_u32(ring.b(slot)) + lane * kBBytes, &maps.x, c, t0, bar);
    });
    return;  // the consumers synchronise among themselves only (named barriers)
  }
  dev::Acc<Cfg> acc;
  uint32_t it = 0;
  for (int t = blockIdx.x; t < total; t += gridDim.x) {
    const dev::TileAt at = dev::locate<kItem>(items, p.offsets, p.row_blocks, 1, t);
    dev::ws_consume<Cfg>(acc, ring, it, num_k);
    // Tile row r: row r % 64 of block e0 + r / 64 (none past the item's blocks: an absent block's
    // MMAs ran on whatever its B slot held, and are dropped here).
    dev::ws_store_tile<Cfg>(acc, ring, [&](int r) {
      return r / 64 < at.count ? dev::RowDst<T>{p.values + (int64_t{at.e0} + r / 64) * 4096 + (r % 64) * 64, 1.f}
                               : dev::RowDst<T>{nullptr, 1.f};
    }, 0, 64, dev::EpiArgs{});
  }
}

}  // namespace

bool block_sampled_takes(const Tensor& g, const Tensor& x, const BlockListIndex& out, bool a_trans, bool b_trans) {
  const DType dt = g.dtype();
  const auto aligned = [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; };
  return (dt == DType::bf16 || dt == DType::f16) && out.block == 64 && a_trans && !b_trans && g.size(0) > 0 &&
         g.size(0) < INT32_MAX && g.size(1) % 8 == 0 && x.size(1) % 8 == 0 && aligned(g) && aligned(x) &&
         aligned(out.values) && (out.rows + 63) / 64 <= kWsMaxSegments;
}

namespace {

template <int kHalves>
void launch_block_sampled(const Tensor& g, const Tensor& x, BlockListIndex& out, StreamRef stream) {
  dispatch_gemm(g.dtype(), "cuda::sampled_gemm (blocks)", [&]<typename T>() {
    if constexpr (!std::is_same_v<T, float>) {
      using Cfg = SampledCfg<T, kHalves>;
      BlockSampledParams<T> p{};
      p.offsets = i32p(out.offsets);
      p.col = i32p(out.col);
      p.values = out.values.data<T>();
      p.tokens = g.size(0);
      p.row_blocks = static_cast<int>((out.rows + 63) / 64);
      const DType kType = std::is_same_v<T, Half> ? DType::f16 : DType::bf16;
      BlockSampledMaps maps{};
      maps.dy = pit::cuda::tensor_map_2d(kType, g.data<T>(), g.size(0), g.size(1), g.size(1), 64, "sampled_gemm's A");
      maps.x = pit::cuda::tensor_map_2d(kType, x.data<T>(), x.size(0), x.size(1), x.size(1), 64, "sampled_gemm's B");
      auto* kernel = block_sampled_kernel<T, kHalves>;
      const size_t smem = Cfg::kSmem + Cfg::kAlignSlack + sizeof(int32_t) * (p.row_blocks + 1);
      const int per_sm = allow_smem(kernel, smem, Cfg::kThreads);
      // Items: at most the listed blocks over the blocks an item (rounded up) plus one per block row.
      const int64_t bound = out.values.numel() / 4096 / Cfg::kBlocksPerItem + p.row_blocks + 1;
      kernel<<<static_cast<unsigned>(persistent_grid(bound, per_sm)), Cfg::kThreads, smem, native(stream)>>>(p, maps);
      check_launch("cuda::sampled_gemm (blocks)");
    }
  });
}

}  // namespace

void block_sampled(const Tensor& g, const Tensor& x, BlockListIndex& out, StreamRef stream) {
  pit::cuda::DeviceGuard guard(stream.device.index);  // the operands' GPU, not the thread's current one
  const char* blocks = std::getenv("PIT_BLOCK_SAMPLED_BLOCKS");
  if (blocks != nullptr && std::string(blocks) == "2") launch_block_sampled<1>(g, x, out, stream);
  else launch_block_sampled<2>(g, x, out, stream);
}

}  // namespace pit::sparse::cuda
