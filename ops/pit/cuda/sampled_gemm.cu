// Sampled-output PIT GEMM (ops/pit/gemm.h sampled_gemm): only the micro-tiles of
// C = op(A) op(B) that the output index lists are computed, and written compactly into its values
// in the index's order (the gradient of a pruned weight at its non-zero micro-tiles). A block of
// the grid owns one row block of the index (BM >= r or b rows of C) and a group of its entries
// (BN = 128 columns of C: 128 k-entries, or 128 / b blocks), and runs the full inner dimension.
//
// SRead reads op(A) and op(B) with 16-byte copies where their contiguous axis runs along the tile
// row: op(A)'s tile is k-major for a_trans (A given as [K, M], rows contiguous in m) and m-major
// otherwise; op(B)'s columns for a K-list output are gathered (n-major tile: contiguous when B is
// given as [N, K], b_trans) and for blocks are runs of b columns (k-major tile: contiguous when B
// is [K, N]). The other orientation falls back to element loads (correct, slower).
//
// Tiles: BM = 32 (micro-tiles of up to 32 rows; 8 warps of 32 x 16) or 128 (8 warps of 64 x 32),
// BN = 128, BK = 32, 4 stages (f32: CUDA cores, BK 16, 3 stages).
#include "ops/pit/cuda/gemm.h"

#include "ops/cuda/device_utils.cuh"
#include "ops/pit/cuda/gemm_core.cuh"
#include "ops/pit/cuda/launch.cuh"

namespace pit::sparse::cuda {
namespace {

template <typename T>
struct SampledParams {
  const T* a;
  const T* b;
  T* values;
  const int32_t* offsets;
  const int32_t* cols;
  int64_t m, n, kp;  // op(A) [m, kp], op(B) [kp, n]
  int tr;            // r (lists) or b (blocks)
  bool b_trans;
  int num_blocks, groups;
};

template <typename T, int BM, bool kATrans, bool kBlocks>
using SampledCfg = dev::TileCfg<T, BM, 128, (BM <= 32 ? 1 : 2), (BM <= 32 ? 8 : 4), kATrans, kBlocks,
                                (std::is_same_v<T, float> ? 3 : 4)>;

template <typename T, int BM, bool kATrans, bool kBlocks>
__global__ void __launch_bounds__(dev::kGemmThreads) sampled_kernel(const SampledParams<T> p) {
  using Cfg = SampledCfg<T, BM, kATrans, kBlocks>;
  constexpr int BN = Cfg::BN, BK = Cfg::BK;
  extern __shared__ uint4 smem_raw[];
  T* smem = reinterpret_cast<T*>(smem_raw);
  const int tid = threadIdx.x;
  const int blk = static_cast<int>(blockIdx.x % p.num_blocks);
  const int grp = static_cast<int>(blockIdx.x / p.num_blocks);
  const int off = p.offsets[blk], count = p.offsets[blk + 1] - off;
  const int tr = p.tr;
  const int64_t u0 = int64_t{grp} * BN;                          // first tile column (entry or block column)
  const int64_t width = kBlocks ? int64_t{count} * tr : count;   // tile columns of this row block
  if (u0 >= width) return;  // uniform over the block
  const int64_t m0 = int64_t{blk} * tr;
  const int64_t rows = min(int64_t{tr}, p.m - m0);  // rows of C in this row block
  const int num_k = static_cast<int>((p.kp + BK - 1) / BK);
  // Column of C for tile column u (u < width).
  const auto col_of = [&](int64_t u) {
    return kBlocks ? int64_t{p.cols[off + u / tr]} * tr + u % tr : int64_t{p.cols[off + u]};
  };

  const auto load = [&](int kt, T* sa, T* sb) {
    const int64_t k0 = int64_t{kt} * BK;
    if constexpr (kATrans) {  // A given as [kp, m]: tile row k, contiguous m
      dev::sread_tile<T, BK, BM, Cfg::kALd, dev::kGemmThreads>(sa, tid, [&](int r, int c) {
        const int64_t k = k0 + r;
        return dev::Src<T>{p.a + k * p.m + m0 + c, k < p.kp ? dev::valid_n(rows - c, BM) : 0};
      });
    } else {  // A [m, kp]: tile row m, contiguous k
      dev::sread_tile<T, BM, BK, Cfg::kALd, dev::kGemmThreads>(sa, tid, [&](int r, int c) {
        return dev::Src<T>{p.a + (m0 + r) * p.kp + k0 + c, r < rows ? dev::valid_n(p.kp - k0 - c, BK) : 0};
      });
    }
    if constexpr (!kBlocks) {  // tile row = entry (column k_j of C), along k
      dev::sread_tile<T, BN, BK, Cfg::kBLd, dev::kGemmThreads>(sb, tid, [&](int r, int c) {
        const int64_t u = u0 + r;
        const int64_t col = u < width ? col_of(u) : 0;
        const int n = u < width ? dev::valid_n(p.kp - k0 - c, BK) : 0;
        return p.b_trans ? dev::Src<T>{p.b + col * p.kp + k0 + c, n}
                         : dev::Src<T>{p.b + (k0 + c) * p.n + col, n, p.n};
      });
    } else {  // tile row = k, along the block's columns
      dev::sread_tile<T, BK, BN, Cfg::kBLd, dev::kGemmThreads>(sb, tid, [&](int r, int c) {
        const int64_t k = k0 + r, u = u0 + c;
        const int64_t col = u < width ? col_of(u) : 0;
        const int n = (u < width && k < p.kp) ? dev::valid_n(min(p.n - col, int64_t{tr - u % tr}), BN) : 0;
        return p.b_trans ? dev::Src<T>{p.b + col * p.kp + k, n, p.kp} : dev::Src<T>{p.b + k * p.n + col, n};
      });
    }
  };
  dev::Acc<Cfg> acc;
  dev::mainloop<Cfg>(acc, smem, num_k, load, dev::NoFixup{});
  // Every element of a listed micro-tile is written (those past the matrix edge come out 0: their
  // A rows or B columns were zero-filled).
  acc.for_each_pair([&](int r, int col, float v0, float v1) {
    if (r >= tr) return;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t u = u0 + col + h;
      if (u >= width) return;
      const int64_t e = kBlocks ? (int64_t{off} + u / tr) * tr * tr + int64_t{r} * tr + u % tr
                                : (int64_t{off} + u) * tr + r;
      p.values[e] = pit::cuda::narrow<T>(h == 0 ? v0 : v1);
    }
  });
}

template <typename T, bool kBlocks>
void run(const Tensor& a, const Tensor& b, const Tensor& offsets, const Tensor& cols, Tensor& values, int64_t m,
         int64_t n, int64_t tr, bool a_trans, bool b_trans, StreamRef stream) {
  SampledParams<T> p{};
  p.a = a.data<T>();
  p.b = b.data<T>();
  p.values = values.data<T>();
  p.offsets = i32p(offsets);
  p.cols = i32p(cols);
  p.m = m;
  p.n = n;
  p.kp = a_trans ? a.size(0) : a.size(1);
  p.tr = static_cast<int>(tr);
  p.b_trans = b_trans;
  p.num_blocks = static_cast<int>((m + tr - 1) / tr);
  const int64_t max_width = kBlocks ? ((n + tr - 1) / tr) * tr : n;
  p.groups = static_cast<int>((max_width + 127) / 128);
  const int64_t grid = int64_t{p.num_blocks} * p.groups;
  if (grid == 0) return;
  PIT_CHECK(grid < (int64_t{1} << 31), "cuda::sampled_gemm: problem too large for one grid");
  const auto go = [&]<int BM, bool kATrans>() {
    using Cfg = SampledCfg<T, BM, kATrans, kBlocks>;
    auto* kernel = sampled_kernel<T, BM, kATrans, kBlocks>;
    allow_smem(kernel, Cfg::kSmem, dev::kGemmThreads);
    kernel<<<static_cast<unsigned>(grid), dev::kGemmThreads, Cfg::kSmem, native(stream)>>>(p);
    check_launch("cuda::sampled_gemm");
  };
  if (tr <= 32) {
    if (a_trans) go.template operator()<32, true>();
    else go.template operator()<32, false>();
  } else {
    if (a_trans) go.template operator()<128, true>();
    else go.template operator()<128, false>();
  }
}

}  // namespace

void sampled_gemm(const Tensor& a, const Tensor& b, KListIndex& out, bool a_trans, bool b_trans, StreamRef stream) {
  pit::cuda::DeviceGuard guard(stream.device.index);  // the operands' GPU, not the thread's current one
  PIT_CHECK(out.block_rows >= 1 && out.block_rows <= 128, "cuda::sampled_gemm: k micro-tiles of 1 to 128 rows, got ",
            out.block_rows);
  dispatch_gemm(a.dtype(), "cuda::sampled_gemm", [&]<typename T>() {
    run<T, false>(a, b, out.offsets, out.k, out.values, out.rows, out.cols, out.block_rows, a_trans, b_trans, stream);
  });
}

void sampled_gemm(const Tensor& a, const Tensor& b, BlockListIndex& out, bool a_trans, bool b_trans,
                  StreamRef stream) {
  pit::cuda::DeviceGuard guard(stream.device.index);  // the operands' GPU, not the thread's current one
  const int64_t vec = 16 / static_cast<int64_t>(dtype_size(a.dtype()));
  PIT_CHECK(out.block >= 1 && out.block <= 128 && out.block % vec == 0, "cuda::sampled_gemm: blocks of ", vec,
            " to 128 in multiples of ", vec, " on CUDA for ", dtype_name(a.dtype()), ", got ", out.block);
  if (block_sampled_takes(a, b, out, a_trans, b_trans)) {  // 64 x 64 blocks, dy^T x: block_sampled.cu
    block_sampled(a, b, out, stream);
    return;
  }
  dispatch_gemm(a.dtype(), "cuda::sampled_gemm", [&]<typename T>() {
    run<T, true>(a, b, out.offsets, out.col, out.values, out.rows, out.cols, out.block, a_trans, b_trans, stream);
  });
}

}  // namespace pit::sparse::cuda
