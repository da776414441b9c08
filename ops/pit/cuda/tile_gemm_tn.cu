// dB = A^T G for a sparse A (ops/pit/gemm.h condense_gemm_tn, block_gemm_tn), reading only the
// listed micro-tiles of A (the forward's index, no transposed lists needed). Per row block i of
// the index, its entries are the output rows (k of a K list, or the b columns of each block), the
// reduction runs over the block's r (or b) rows of G, and SWrite scatters the tile into those
// rows of an f32 workspace with atomic adds (several row blocks meet one row of dB); a last pass
// stores (or adds) the workspace into dB. The reduction per tile is short (r or b), so this is
// the simple, correct path, not a fast one: a transposed-list kernel that owns its output rows
// would remove the atomics (see the report in docs/BENCHMARKS.md).
//
// Tiles: 128 outputs rows (entries, or entry columns) x 128 columns, 8 warps of 64 x 32, BK 32,
// 4 stages (f32: CUDA cores, BK 16, 3 stages).
#include "ops/pit/cuda/gemm.h"

#include "core/tensor.h"
#include "ops/cuda/device_utils.cuh"
#include "ops/pit/cuda/gemm_core.cuh"
#include "ops/pit/cuda/launch.cuh"
#include "ops/pit/cuda/swrite.cuh"

namespace pit::sparse::cuda {
namespace {

template <typename T>
struct TnParams {
  const T* values;
  const int32_t* offsets;
  const int32_t* cols;
  const T* g;
  float* ws;  // [K, N] f32, zeroed
  int64_t m, k, n;
  int tr;
  int num_blocks, m_tiles, n_tiles;
};

// kBlocks false: A tile [BM entries][BK rows of G] (values rows are contiguous along r);
// kBlocks true: A tile k-major [BK rows][BM (entry, column x) pairs] (block rows contiguous in x).
template <typename T, bool kBlocks>
using TnCfg = dev::TileCfg<T, 128, 128, 2, 4, kBlocks, true, (std::is_same_v<T, float> ? 3 : 4)>;

template <typename T, bool kBlocks>
__global__ void __launch_bounds__(dev::kGemmThreads) tn_kernel(const TnParams<T> p) {
  using Cfg = TnCfg<T, kBlocks>;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK;
  extern __shared__ uint4 smem_raw[];
  T* smem = reinterpret_cast<T*>(smem_raw);
  const int tid = threadIdx.x;
  const int64_t w = blockIdx.x;
  const int nt = static_cast<int>(w % p.n_tiles);
  const int mt = static_cast<int>((w / p.n_tiles) % p.m_tiles);
  const int blk = static_cast<int>(w / (int64_t{p.n_tiles} * p.m_tiles));
  const int off = p.offsets[blk], count = p.offsets[blk + 1] - off;
  const int tr = p.tr;
  const int64_t rows_out = kBlocks ? int64_t{count} * tr : count;  // output rows of this block
  const int64_t u0 = int64_t{mt} * BM, n0 = int64_t{nt} * BN;
  if (u0 >= rows_out) return;  // uniform over the block: no barrier skipped by some threads only
  const int64_t g0 = int64_t{blk} * tr;  // first row of G
  const int num_k = (tr + BK - 1) / BK;
  const T* vals = p.values + int64_t{off} * tr * (kBlocks ? tr : 1);

  const auto load = [&](int kt, T* sa, T* sb) {
    const int y0 = kt * BK;
    if constexpr (!kBlocks) {
      dev::sread_tile<T, BM, BK, Cfg::kALd, dev::kGemmThreads>(sa, tid, [&](int r, int c) {
        const int64_t j = u0 + r;
        return dev::Src<T>{vals + j * tr + y0 + c, j < count ? dev::valid_n(tr - y0 - c, BK) : 0};
      });
    } else {
      dev::sread_tile<T, BK, BM, Cfg::kALd, dev::kGemmThreads>(sa, tid, [&](int r, int c) {
        const int64_t u = u0 + c, j = u / tr, x = u % tr, y = y0 + r;
        const bool ok = j < count && y < tr;
        return dev::Src<T>{vals + (j * tr + y) * tr + x, ok ? dev::valid_n(tr - x, BM) : 0};
      });
    }
    dev::sread_tile<T, BK, BN, Cfg::kBLd, dev::kGemmThreads>(sb, tid, [&](int r, int c) {
      const int64_t row = g0 + y0 + r;
      const bool ok = y0 + r < tr && row < p.m;
      return dev::Src<T>{p.g + row * p.n + n0 + c, ok ? dev::valid_n(p.n - n0 - c, BN) : 0};
    });
  };
  dev::Acc<Cfg> acc;
  dev::mainloop<Cfg>(acc, smem, num_k, load, dev::NoFixup{});
  dev::EpiArgs epi;
  epi.mode = dev::WriteMode::atomic;
  acc.for_each_pair([&](int r, int col, float v0, float v1) {
    const int64_t u = u0 + r;
    if (u >= rows_out) return;
    const int64_t krow = kBlocks ? int64_t{p.cols[off + u / tr]} * tr + u % tr : p.cols[off + u];
    if (krow >= p.k) return;
    dev::swrite_pair<float>(p.ws + krow * p.n, n0 + col, p.n, v0, v1, epi);
  });
}

// dB (=|+=) ws, element-wise.
template <typename T>
__global__ void finish_kernel(const float* __restrict__ ws, T* __restrict__ db, int64_t count, bool add) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count; i += int64_t{gridDim.x} * blockDim.x) {
    const float v = add ? pit::cuda::widen(db[i]) + ws[i] : ws[i];
    db[i] = pit::cuda::narrow<T>(v);
  }
}

template <typename T, bool kBlocks>
void run(const Tensor& values, const Tensor& offsets, const Tensor& cols, int64_t m, int64_t k, int64_t tr,
         const Tensor& g, Tensor& db, Write write, StreamRef stream) {
  using Cfg = TnCfg<T, kBlocks>;
  const int64_t n = g.size(1);
  Tensor ws = Tensor::empty({k, n}, DType::f32, g.device());
  PIT_CUDA_CHECK(cudaMemsetAsync(ws.data_ptr(), 0, ws.nbytes(), native(stream)));
  TnParams<T> p{};
  p.values = values.data<T>();
  p.offsets = i32p(offsets);
  p.cols = i32p(cols);
  p.g = g.data<T>();
  p.ws = ws.data<float>();
  p.m = m;
  p.k = k;
  p.n = n;
  p.tr = static_cast<int>(tr);
  p.num_blocks = static_cast<int>((m + tr - 1) / tr);
  // Most output rows one row block can have: every k (lists) or every block column x b (blocks).
  const int64_t max_rows = kBlocks ? ((k + tr - 1) / tr) * tr : k;
  p.m_tiles = static_cast<int>((max_rows + Cfg::BM - 1) / Cfg::BM);
  p.n_tiles = static_cast<int>((n + Cfg::BN - 1) / Cfg::BN);
  auto* kernel = tn_kernel<T, kBlocks>;
  allow_smem(kernel, Cfg::kSmem, dev::kGemmThreads);
  const int64_t grid = int64_t{p.num_blocks} * p.m_tiles * p.n_tiles;
  if (grid > 0) {
    PIT_CHECK(grid < (int64_t{1} << 31), "cuda::*_gemm_tn: problem too large for one grid");
    kernel<<<static_cast<unsigned>(grid), dev::kGemmThreads, Cfg::kSmem, native(stream)>>>(p);
    check_launch(kBlocks ? "cuda::block_gemm_tn" : "cuda::condense_gemm_tn");
  }
  const int64_t total = k * n;
  if (total == 0) return;
  const int64_t blocks = std::min<int64_t>((total + 255) / 256, int64_t{sm_count()} * 8);
  finish_kernel<T><<<static_cast<unsigned>(blocks), 256, 0, native(stream)>>>(p.ws, db.data<T>(), total,
                                                                             write == Write::accumulate);
  check_launch("cuda::*_gemm_tn finish");
}

}  // namespace

void condense_gemm_tn(const KListIndex& a, const Tensor& g, Tensor& db, Write write, StreamRef stream) {
  pit::cuda::DeviceGuard guard(stream.device.index);  // the operands' GPU, not the thread's current one
  dispatch_gemm(g.dtype(), "cuda::condense_gemm_tn", [&]<typename T>() {
    run<T, false>(a.values, a.offsets, a.k, a.rows, a.cols, a.block_rows, g, db, write, stream);
  });
}

void block_gemm_tn(const BlockListIndex& a, const Tensor& g, Tensor& db, Write write, StreamRef stream) {
  pit::cuda::DeviceGuard guard(stream.device.index);  // the operands' GPU, not the thread's current one
  const int64_t vec = 16 / static_cast<int64_t>(dtype_size(g.dtype()));
  PIT_CHECK(a.block % vec == 0, "cuda::block_gemm_tn: blocks in multiples of ", vec, " elements on CUDA for ",
            dtype_name(g.dtype()), ", got ", a.block);
  dispatch_gemm(g.dtype(), "cuda::block_gemm_tn", [&]<typename T>() {
    run<T, true>(a.values, a.offsets, a.col, a.rows, a.cols, a.block, g, db, write, stream);
  });
}

}  // namespace pit::sparse::cuda
