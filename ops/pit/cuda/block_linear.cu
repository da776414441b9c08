// block_linear (ops/pit/gemm.h) on CUDA: y = x V^T for a V of 64 x 64 blocks, f16/bf16, read and
// written as they are: x [T, in] and y [T, out] row-major, no transposes (block_gemm computes
// y^T = V x^T, so a Linear on it transposes x and y, and dy and dx in the backward: on an H200
// those four copies cost 0.99 ms of a 4096 -> 16384 layer's 4.4 at 10% density, docs/BENCHMARKS.md).
//
// An output tile is 128 tokens x one block row of V (64 outputs); its k loop runs over that block
// row's list, one block a stage: the 64 columns of x the block's column names (128 rows, one TMA
// box) and the block's values (64 x 64, one TMA box of the compact values; they are row-major, a
// row an output, so K-major for the MMA as they lie). A persistent block per SM walks the tiles,
// numbered block row fastest: the blocks running at one time share a token tile of x (its rows
// read from DRAM once, then from L2) while V's blocks (a tenth of the dense weight at 90%
// sparsity) stay in L2; the stages come in by TMA (ws_core.cuh tma_produce: four producer warps, a ring slot
// each) and two consumer warpgroups take 64 tokens each (wgmma m64n64k16) and SWrite their rows
// (ws_core.cuh ws_store_tile). Tokens past T and columns past `in` read as zeros (the TMA bounds);
// outputs past `out` are not written. A block row with no block gives zeros (or the bias: a bias
// [out] is added in the epilogue, and the ReLU taken there when asked for).
//
// The backward's dx = dy W (block_linear_dx) is the same kernel over W's transposed lists
// (t_offsets, t_rows), each stage's B the block t_pos names as it lies in W's values ([64 outputs
// of W = k][64 inputs = n], MN-major for the MMA): no transposed copy of the values (on an H200
// that copy, an index_select and a transpose, cost 0.058 ms a step of a 4096 -> 16384 layer at 10 %).
//
// The ReLU between two such layers as bits (kMask, for ops::sparse_relu_ffn): the first layer's
// forward (kMask 1) also writes bit i of mask[t][j] = (y[t][8 j + i] > 0), y as stored; the second
// layer's dx (kMask 2) keeps its outputs where those bits are set, which is the first layer's
// gradient before the ReLU, and sums each tile's columns of it (as stored) into a partial row of
// the first layer's bias gradient, one row per tile and consumer warpgroup, added in a fixed
// order. The ReLU's backward pass (read dh and h, write dpre, sum the bias: on an H100 0.273 ms a
// step of a 4096 -> 16384 FFN, docs/BENCHMARKS.md) becomes a read of 1/16 of h's bytes.
#include "ops/pit/cuda/gemm.h"

#include <cstdlib>
#include <string>

#include "ops/cuda/tensor_map.h"
#include "ops/cuda/tma_ptx.cuh"
#include "ops/pit/cuda/block_core.cuh"
#include "ops/pit/cuda/launch.cuh"

namespace pit::sparse::cuda {
namespace {

template <typename T>
struct BlockLinParams {
  const int32_t* offsets;  // [row blocks + 1]
  const int32_t* col;      // the block column of each entry
  const int32_t* pos;      // kTransB: the values' block of each entry (else the entry's own)
  T* y;
  int64_t tokens, out;
  int row_blocks, m_tiles;
  dev::EpiArgs epi;  // store, with the bias when there is one
  // kMask 1: the ReLU's bits written; 2: read (mask_in) and the bias partials written ([m_tiles *
  // 2][out] f32: token tile m, warpgroup w at row 2 m + w).
  uint8_t* mask_out;
  const uint8_t* mask_in;
  int64_t mask_ld;  // bytes a row of the mask: out / 8
  float* part;
};

struct BlockLinMaps {
  CUtensorMap x, v;  // x [T, in] in boxes of 128 x 64; the values [entries x 64, 64] in 64 x 64
};

// The epilogue of a tile with the ReLU's bits (kMask 1 or 2, p.out % 8 == 0): the staging of
// ws_store_tile, then each thread a run of 8 columns in kRowsEach rows of its warpgroup's half;
// kMask 2 loads its bits before staging, and adds its runs' columns (lanes, then warps in order)
// into part row 2 m_tile + warpgroup.
template <class Cfg, int kMask, typename T>
__device__ __forceinline__ void store_tile_relu_bits(const dev::Acc<Cfg>& acc, const dev::WsRing<Cfg>& ring,
                                                     const BlockLinParams<T>& p, int64_t t0, int64_t n0, int m_tile) {
  using namespace pit::cuda;
  constexpr int kHalf = Cfg::BM / 2, kPerRow = Cfg::BN / 8, kStep = 128 / kPerRow, kRowsEach = kHalf / kStep;
  static_assert(Cfg::BN == 64 && kHalf % kStep == 0, "runs of 8 of a 64-column tile");
  const int ctid = static_cast<int>(threadIdx.x) - Cfg::kConsumerBase, wg = ctid / 128, tid = ctid % 128;
  const int c = (tid % kPerRow) * 8;
  const int64_t col = n0 + c;
  const bool on = col < p.out;  // the whole run: out % 8 == 0
  const auto token = [&](int j) { return t0 + wg * kHalf + tid / kPerRow + j * kStep; };
  constexpr uint32_t kInfBits = std::is_same_v<T, Half> ? 0x7c00u : 0x7f80u;  // +inf in T (f16 or bf16)
  uint32_t bits[kRowsEach];
  if constexpr (kMask == 2) {
#pragma unroll
    for (int j = 0; j < kRowsEach; ++j)
      bits[j] = on && token(j) < p.tokens ? p.mask_in[token(j) * p.mask_ld + col / 8] : 0u;
  }
  float* const staged = ring.epi();
  acc.to_smem(staged);
  mbar::sync_named(2 + wg, 128);
  const float* const rows = staged + (wg * kHalf + tid / kPerRow) * Cfg::kEpiLd + c;
  float bias[8] = {}, sums[8] = {};
  if constexpr (kMask == 1) {
    if (on && p.epi.bias != nullptr)
#pragma unroll
      for (int i = 0; i < 8; ++i) bias[i] = widen(static_cast<const T*>(p.epi.bias)[col + i]);
  }
#pragma unroll
  for (int j = 0; j < kRowsEach; ++j) {
    const int64_t t = token(j);
    if (!on || t >= p.tokens) continue;
    const float4 lo = ptx::ld_shared_f4(rows + j * kStep * Cfg::kEpiLd);
    const float4 hi = ptx::ld_shared_f4(rows + j * kStep * Cfg::kEpiLd + 4);
    float v[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      if constexpr (kMask == 1) v[i] = v[i] + bias[i] <= 0.f ? 0.f : v[i] + bias[i];  // NaN stays NaN
      else v[i] = (bits[j] >> i) & 1u ? v[i] : 0.f;
    }
    T out[8];
    narrow_pack<T, 8>(v, out);
    uint32_t byte = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      // y > 0, as the other ReLU backwards test it. The ReLU above gives +0 (never -0), a positive
      // value or a NaN (of either sign), and only the positive ones have bits in [1, +inf]: one
      // subtraction and one unsigned compare (+0 wraps to the largest value).
      if constexpr (kMask == 1) byte |= uint32_t{out[i].bits} - 1u < kInfBits ? 1u << i : 0u;
      else sums[i] += widen(out[i]);
    }
    *reinterpret_cast<uint4*>(p.y + t * p.out + col) = *reinterpret_cast<const uint4*>(out);
    if constexpr (kMask == 1) p.mask_out[t * p.mask_ld + col / 8] = static_cast<uint8_t>(byte);
  }
  if constexpr (kMask == 2) {
    // The lanes of one run of columns (lane % 8 alike), then the warpgroup's 4 warps in order.
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      sums[i] += __shfl_xor_sync(0xffffffffu, sums[i], 8);
      sums[i] += __shfl_xor_sync(0xffffffffu, sums[i], 16);
    }
    mbar::sync_named(2 + wg, 128);  // every staged row of this half read
    float* const scratch = staged + wg * kHalf * Cfg::kEpiLd;  // [4 warps][64]
    if (tid % 32 < kPerRow)
#pragma unroll
      for (int i = 0; i < 8; ++i) scratch[(tid / 32) * 64 + c + i] = sums[i];
    mbar::sync_named(2 + wg, 128);
    if (tid < 64 && n0 + tid < p.out)
      p.part[(int64_t{m_tile} * 2 + wg) * p.out + n0 + tid] =
          ((scratch[tid] + scratch[64 + tid]) + scratch[128 + tid]) + scratch[192 + tid];
  }
  mbar::sync_named(2 + wg, 128);  // the staging tile is free for the next tile's
}

template <typename T, bool kTransB, int kHalves, int kMask>
__global__ void __launch_bounds__(dev::BlockCfg<T, false, kTransB, kHalves>::kThreads, 1)
    block_linear_kernel(const BlockLinParams<T> p, const __grid_constant__ BlockLinMaps maps) {
  using Cfg = dev::BlockCfg<T, false, kTransB, kHalves>;
  constexpr int BM = Cfg::BM, BN = Cfg::BN;
  extern __shared__ uint4 smem_raw[];
  const dev::WsRing<Cfg> ring(dev::tile_base<Cfg>(smem_raw));
  ring.init(1);  // a stage is filled by its TMA bytes after one arrive.expect_tx
  const int total = p.row_blocks * p.m_tiles;
  if (threadIdx.x < Cfg::kProducers) {
    const int lane = static_cast<int>(threadIdx.x) % 32;
    if (threadIdx.x == 0) {
      pit::cuda::tma::prefetch(&maps.x);
      pit::cuda::tma::prefetch(&maps.v);
    }
    int off = 0;
    int32_t t0 = 0;
    dev::tma_produce<Cfg, (Cfg::kAElems + Cfg::kBElems) * sizeof(T)>(ring, total, [&](int t) {
      const int rb = t % p.row_blocks;
      t0 = (t / p.row_blocks) * BM;
      off = p.offsets[rb];
      return p.offsets[rb + 1] - off;
    }, [&](int kt, int slot, uint32_t bar) {
      const int e = off + kt;
      if (lane == 0) pit::cuda::tma::load_2d(pit::cuda::ptx::smem_u32(ring.a(slot)), &maps.x, p.col[e] * 64, t0, bar);
      if (lane == 1) {
        const int block = kTransB ? p.pos[e] : e;
        pit::cuda::tma::load_2d(pit::cuda::ptx::smem_u32(ring.b(slot)), &maps.v, 0, block * 64, bar);
      }
    });
    return;  // the consumers synchronise among themselves only (named barriers)
  }
  dev::Acc<Cfg> acc;
  uint32_t it = 0;
  for (int t = blockIdx.x; t < total; t += gridDim.x) {
    const int rb = t % p.row_blocks;
    const int64_t t0 = int64_t{t / p.row_blocks} * BM;
    dev::ws_consume<Cfg>(acc, ring, it, p.offsets[rb + 1] - p.offsets[rb]);
    if constexpr (kMask != 0) {
      store_tile_relu_bits<Cfg, kMask>(acc, ring, p, t0, int64_t{rb} * BN, t / p.row_blocks);
    } else {
      dev::ws_store_tile<Cfg>(acc, ring, [&](int r) {
        return t0 + r < p.tokens ? dev::RowDst<T>{p.y + (t0 + r) * p.out, 1.f} : dev::RowDst<T>{nullptr, 1.f};
      }, int64_t{rb} * BN, p.out, p.epi);
    }
  }
}

}  // namespace

bool block_values_take(const BlockListIndex& v) {
  const Tensor& values = v.values;
  return values.defined() && (values.dtype() == DType::bf16 || values.dtype() == DType::f16) && v.block == 64 &&
         values.numel() > 0 && values.numel() / 64 < INT32_MAX &&
         reinterpret_cast<uintptr_t>(values.data_ptr()) % 16 == 0;
}

bool block_linear_takes(const Tensor& x, const BlockListIndex& v) {
  const DType dt = x.dtype();
  return (dt == DType::bf16 || dt == DType::f16) && x.size(1) % 8 == 0 && x.size(0) > 0 && x.size(0) < INT32_MAX &&
         reinterpret_cast<uintptr_t>(x.data_ptr()) % 16 == 0 && block_values_take(v);
}

namespace {

// Output tiles of 256 tokens (two 64-row halves a consumer warpgroup), or of 128 where
// PIT_BLOCK_LINEAR_TOKENS=128 says so (the benchmark compares the two).
int tile_halves() {
  const char* v = std::getenv("PIT_BLOCK_LINEAR_TOKENS");
  return v != nullptr && std::string(v) == "128" ? 1 : 2;
}

// The ReLU's bits of block_linear_relu_bits / block_linear_dx_relu_bits: mask [T, out / 8] u8;
// part [block_linear_part_rows(T), out] f32 (kMask 2).
struct ReluBits {
  Tensor mask, part;
};

// y = x V^T (kTransB false: V's lists) or y = x V (kTransB: V's transposed lists, V's blocks
// transposed as they are read); `out` columns of y. kMask: ReluBits written (1) or read (2).
template <bool kTransB, int kHalves, int kMask = 0>
void launch_block_linear(const Tensor& x, const BlockListIndex& v, int64_t out, Tensor& y, const Tensor& bias, bool relu,
                         StreamRef stream, const char* op, const ReluBits& bits = {}) {
  dispatch_gemm(x.dtype(), op, [&]<typename T>() {
    if constexpr (!std::is_same_v<T, float>) {
      using Cfg = dev::BlockCfg<T, false, kTransB, kHalves>;
      BlockLinParams<T> p{};
      if constexpr (kMask != 0) {
        p.mask_ld = out / 8;
        if constexpr (kMask == 1) p.mask_out = bits.mask.data<uint8_t>();
        else p.mask_in = bits.mask.data<uint8_t>();
        if constexpr (kMask == 2) p.part = bits.part.data<float>();
      }
      p.offsets = i32p(kTransB ? v.t_offsets : v.offsets);
      p.col = i32p(kTransB ? v.t_rows : v.col);
      p.pos = kTransB ? i32p(v.t_pos) : nullptr;
      p.y = y.data<T>();
      p.tokens = x.size(0);
      p.out = out;
      p.row_blocks = static_cast<int>((out + 63) / 64);
      p.m_tiles = static_cast<int>((x.size(0) + Cfg::BM - 1) / Cfg::BM);
      if (bias.defined()) p.epi.bias = bias.data<T>();
      if (relu) p.epi.act = dev::Act::relu;
      const DType kType = std::is_same_v<T, Half> ? DType::f16 : DType::bf16;
      BlockLinMaps maps{};
      maps.x = pit::cuda::tensor_map_2d(kType, x.data<T>(), x.size(0), x.size(1), x.size(1), Cfg::BM, "block_linear's x");
      maps.v = pit::cuda::tensor_map_2d(kType, v.values.data<T>(), v.values.numel() / 64, 64, 64, 64,
                                        "block_linear's values");
      auto* kernel = block_linear_kernel<T, kTransB, kHalves, kMask>;
      const size_t smem = Cfg::kSmem + Cfg::kAlignSlack;
      const int per_sm = allow_smem(kernel, smem, Cfg::kThreads);
      const int64_t tiles = int64_t{p.row_blocks} * p.m_tiles;
      PIT_CHECK(tiles < INT32_MAX, op, ": too many output tiles (", tiles, ")");
      kernel<<<static_cast<unsigned>(persistent_grid(tiles, per_sm)), Cfg::kThreads, smem, native(stream)>>>(p, maps);
      check_launch(op);
    }
  });
}

}  // namespace

void block_linear(const Tensor& x, const BlockListIndex& v, Tensor& y, const Tensor& bias, bool relu, StreamRef stream) {
  pit::cuda::DeviceGuard guard(stream.device.index);  // the operands' GPU, not the thread's current one
  PIT_CHECK(block_linear_takes(x, v), "cuda::block_linear: f16/bf16, 64 x 64 blocks and 16-byte aligned rows only "
            "(ops/pit/gemm.cpp takes the transposing way otherwise)");
  if (tile_halves() == 2) launch_block_linear<false, 2>(x, v, v.rows, y, bias, relu, stream, "cuda::block_linear");
  else launch_block_linear<false, 1>(x, v, v.rows, y, bias, relu, stream, "cuda::block_linear");
}

void block_linear_dx(const Tensor& dy, const BlockListIndex& v, Tensor& dx, StreamRef stream) {
  pit::cuda::DeviceGuard guard(stream.device.index);  // the operands' GPU, not the thread's current one
  PIT_CHECK(block_linear_dx_takes(dy, v), "cuda::block_linear_dx: f16/bf16, 64 x 64 blocks with their transposed lists "
            "and 16-byte aligned rows only (ops/pit/gemm.cpp takes the transposed copy otherwise)");
  if (tile_halves() == 2) launch_block_linear<true, 2>(dy, v, v.cols, dx, Tensor(), false, stream, "cuda::block_linear_dx");
  else launch_block_linear<true, 1>(dy, v, v.cols, dx, Tensor(), false, stream, "cuda::block_linear_dx");
}

bool block_linear_dx_takes(const Tensor& dy, const BlockListIndex& v) {
  return block_linear_takes(dy, v) && v.t_offsets.defined() && v.t_rows.defined() && v.t_pos.defined();
}

int64_t block_linear_part_rows(int64_t tokens) { return 2 * ((tokens + 128 * tile_halves() - 1) / (128 * tile_halves())); }

void block_linear_relu_bits(const Tensor& x, const BlockListIndex& v, Tensor& y, const Tensor& bias, Tensor& mask,
                            StreamRef stream) {
  pit::cuda::DeviceGuard guard(stream.device.index);  // the operands' GPU, not the thread's current one
  PIT_CHECK(block_linear_takes(x, v) && v.rows % 8 == 0, "cuda::block_linear_relu_bits: f16/bf16, 64 x 64 blocks, "
            "16-byte aligned rows and a multiple of 8 outputs only");
  const ReluBits bits{mask, Tensor()};
  const char* op = "cuda::block_linear_relu_bits";
  if (tile_halves() == 2) launch_block_linear<false, 2, 1>(x, v, v.rows, y, bias, true, stream, op, bits);
  else launch_block_linear<false, 1, 1>(x, v, v.rows, y, bias, true, stream, op, bits);
}

void block_linear_dx_relu_bits(const Tensor& dy, const BlockListIndex& v, const Tensor& mask, Tensor& dx, Tensor& part,
                               StreamRef stream) {
  pit::cuda::DeviceGuard guard(stream.device.index);  // the operands' GPU, not the thread's current one
  PIT_CHECK(block_linear_dx_takes(dy, v) && v.cols % 8 == 0, "cuda::block_linear_dx_relu_bits: f16/bf16, 64 x 64 "
            "blocks with their transposed lists, 16-byte aligned rows and a multiple of 8 inputs only");
  const ReluBits bits{mask, part};
  const char* op = "cuda::block_linear_dx_relu_bits";
  if (tile_halves() == 2) launch_block_linear<true, 2, 2>(dy, v, v.cols, dx, Tensor(), false, stream, op, bits);
  else launch_block_linear<true, 1, 2>(dy, v, v.cols, dx, Tensor(), false, stream, op, bits);
}

}  // namespace pit::sparse::cuda
