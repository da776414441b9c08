// CUDA causal attention: fused forward and backward that never materialise the T x T matrix.
//
// Layout: q, k, v, out, dout and the gradients are dense [bh][t][dh]; lse and delta [bh][t] f32.
// Scores use scale = 1 / sqrt(dh); row i attends to keys 0..i.
//
// Two families of kernels:
//
// 1. Tensor cores (f16 / bf16, dh 64 or 128, 16-byte aligned pointers). A block of 4 warps
//    owns 64 rows; each warp owns 16 of them and multiplies with mma.sync.m16n8k16 (f32
//    accumulation), fragments read from shared memory with ldmatrix (rows padded by 16 bytes,
//    so both ldmatrix and the epilogue stores are free of bank conflicts). Tiles are fetched
//    with cp.async into double buffers: the next tile loads while the current one is multiplied.
//    - forward: the block owns 64 queries and walks key blocks 0..diagonal with the online
//      softmax of FlashAttention (running max and sum per row, in the exp2 domain); P stays in
//      registers: the S accumulator fragments are exactly the A fragments of P V. Only the
//      diagonal block is masked; blocks above it are never visited.
//    - backward: D_i = dout_i . out_i first (delta_kernel). Then two kernels, each recomputing
//      P = exp(s - lse) from the saved lse:
//      * dk/dv: the block owns 64 keys and walks the query blocks from the diagonal to the end.
//        Each warp computes S^T = K Q^T and dP^T = V dO^T for its 16 keys, so P^T and
//        dS^T = P^T (dP^T - D) are already A fragments of dV += P^T dO and dK += dS^T Q.
//      * dq: the block owns 64 queries and walks key blocks 0..diagonal: S = Q K^T,
//        dP = dO V^T, dS = P (dP - D), dQ += dS K.
//      Splitting dq from dk/dv costs two extra products (S and dP are computed twice) but needs
//      no atomics: every gradient element is written once, by one thread, after a fixed
//      sequence of additions, so the backward is deterministic (bitwise reproducible).
// 2. CUDA cores (f32, and f16 / bf16 with any other head dim up to 256 or unaligned pointers):
//    the same three passes with f32 FMAs. A block of 4 warps owns 16 rows (4 per warp); chunks
//    of 32 keys (or queries) go through shared memory (f32, rows padded to dodge bank
//    conflicts), lane j computes the score of key j of the chunk for each of the warp's rows,
//    and the weighted sums are accumulated with each lane owning head-dim columns lane,
//    lane + 32, .... Also deterministic.
//
// Grids are (bh, row blocks) with the heaviest row blocks (the most keys / queries under the
// causal mask) in the lowest blockIdx.y, so they are scheduled first. Every launch goes on the
// caller's stream and is checked; nothing synchronizes.
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/convert.h"
#include "core/cuda/runtime.h"
#include "ops/cuda/attention.h"
#include "ops/cuda/attention_generic.cuh"
#include "ops/cuda/attention_mma.cuh"

namespace pit::cuda {
namespace attention_impl {

// ================================ launch ========================================================

template <typename T>
constexpr bool kSupported =
    std::is_same_v<T, float> || std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;
template <typename T>
constexpr bool kHalfWidth = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

template <typename Kernel>
void allow_smem(Kernel* kernel, size_t bytes) {
  PIT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(bytes)));
}

unsigned blocks_of(int64_t n, int64_t per_block, const char* op) {
  const int64_t blocks = (n + per_block - 1) / per_block;
  PIT_CHECK(blocks <= 65535, op, ": sequence length ", n, " is too long for the CUDA kernels (at most ",
            65535 * per_block, ")");
  return static_cast<unsigned>(blocks);
}

// Calls fn.template operator()<kC>() with the columns per lane that hold dh (<= 256).
template <typename Fn>
void with_columns(int64_t dh, Fn&& fn) {
  if (dh <= 32)
    fn.template operator()<1>();
  else if (dh <= 64)
    fn.template operator()<2>();
  else if (dh <= 128)
    fn.template operator()<4>();
  else
    fn.template operator()<8>();
}

// Calls fn.template operator()<kD>() for dh 64 or 128.
template <typename Fn>
void with_head_dim(int64_t dh, Fn&& fn) {
  if (dh == 64)
    fn.template operator()<64>();
  else
    fn.template operator()<128>();
}

struct Launch {
  unsigned bh;  // grid.x
  cudaStream_t stream;
  int t, dh;
  float scale;
};

template <typename T>
void forward_typed(const cpu::AttentionDims& d, const void* q, const void* k, const void* v,
                   void* out, float* lse, const Launch& L, bool tensor_cores) {
  if constexpr (kHalfWidth<T>) {
    if (tensor_cores) {
      with_head_dim(d.dh, [&]<int kD>() {
        constexpr size_t smem = mma_forward_smem<kD>();
        allow_smem(mma_forward_kernel<T, kD>, smem);
        const dim3 grid(L.bh, blocks_of(d.t, kBlockM, "causal_attention"));
        mma_forward_kernel<T, kD><<<grid, kMmaThreads, smem, L.stream>>>(
            static_cast<const uint16_t*>(q), static_cast<const uint16_t*>(k),
            static_cast<const uint16_t*>(v), static_cast<uint16_t*>(out), lse, L.t,
            L.scale * kLog2e);
      });
      PIT_CUDA_CHECK(cudaGetLastError());
      return;
    }
  }
  with_columns(d.dh, [&]<int kC>() {
    constexpr size_t smem = gen_forward_smem<kC>();
    allow_smem(gen_forward_kernel<T, kC>, smem);
    const dim3 grid(L.bh, blocks_of(d.t, kGenRows, "causal_attention"));
    gen_forward_kernel<T, kC><<<grid, kGenThreads, smem, L.stream>>>(
        static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v),
        static_cast<T*>(out), lse, L.t, L.dh, L.scale);
  });
  PIT_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void backward_typed(const cpu::AttentionDims& d, const void* dout, const void* q, const void* k,
                    const void* v, const void* out, const float* lse, float* delta, void* dq,
                    void* dk, void* dv, const Launch& L, bool tensor_cores) {
  const int64_t rows = d.bh * d.t;
  const int64_t delta_blocks =
      std::min<int64_t>((rows + kDeltaThreads / kWarp - 1) / (kDeltaThreads / kWarp), int64_t{1} << 20);
  delta_kernel<T><<<static_cast<unsigned>(delta_blocks), kDeltaThreads, 0, L.stream>>>(
      static_cast<const T*>(dout), static_cast<const T*>(out), delta, rows, L.dh);
  PIT_CUDA_CHECK(cudaGetLastError());
  const char* op = "causal_attention_backward";
  if constexpr (kHalfWidth<T>) {
    if (tensor_cores) {
      with_head_dim(d.dh, [&]<int kD>() {
        const auto* q16 = static_cast<const uint16_t*>(q);
        const auto* k16 = static_cast<const uint16_t*>(k);
        const auto* v16 = static_cast<const uint16_t*>(v);
        const auto* g16 = static_cast<const uint16_t*>(dout);
        constexpr size_t smem_kv = mma_dkdv_smem<kD>();
        allow_smem(mma_dkdv_kernel<T, kD>, smem_kv);
        const dim3 grid_kv(L.bh, blocks_of(d.t, kBlockN, op));
        mma_dkdv_kernel<T, kD><<<grid_kv, kMmaThreads, smem_kv, L.stream>>>(
            q16, k16, v16, g16, lse, delta, static_cast<uint16_t*>(dk),
            static_cast<uint16_t*>(dv), L.t, L.scale * kLog2e, L.scale);
        PIT_CUDA_CHECK(cudaGetLastError());
        constexpr size_t smem_q = mma_dq_smem<kD>();
        allow_smem(mma_dq_kernel<T, kD>, smem_q);
        const dim3 grid_q(L.bh, blocks_of(d.t, kBlockM, op));
        mma_dq_kernel<T, kD><<<grid_q, kMmaThreads, smem_q, L.stream>>>(
            q16, k16, v16, g16, lse, delta, static_cast<uint16_t*>(dq), L.t, L.scale * kLog2e,
            L.scale);
        PIT_CUDA_CHECK(cudaGetLastError());
      });
      return;
    }
  }
  with_columns(d.dh, [&]<int kC>() {
    const auto* qt = static_cast<const T*>(q);
    const auto* kt = static_cast<const T*>(k);
    const auto* vt = static_cast<const T*>(v);
    const auto* gt = static_cast<const T*>(dout);
    const dim3 grid(L.bh, blocks_of(d.t, kGenRows, op));
    constexpr size_t smem_kv = gen_dkdv_smem<kC>();
    allow_smem(gen_dkdv_kernel<T, kC>, smem_kv);
    gen_dkdv_kernel<T, kC><<<grid, kGenThreads, smem_kv, L.stream>>>(
        qt, kt, vt, gt, lse, delta, static_cast<T*>(dk), static_cast<T*>(dv), L.t, L.dh, L.scale);
    PIT_CUDA_CHECK(cudaGetLastError());
    constexpr size_t smem_q = gen_dq_smem<kC>();
    allow_smem(gen_dq_kernel<T, kC>, smem_q);
    gen_dq_kernel<T, kC><<<grid, kGenThreads, smem_q, L.stream>>>(
        qt, kt, vt, gt, lse, delta, static_cast<T*>(dq), L.t, L.dh, L.scale);
    PIT_CUDA_CHECK(cudaGetLastError());
  });
}

Launch make_launch(const cpu::AttentionDims& d, StreamRef stream, const char* op) {
  PIT_CHECK(d.dh >= 1 && d.dh <= kMaxAttentionHeadDim, op, ": head_dim ", d.dh,
            " is not supported on CUDA (1 to ", kMaxAttentionHeadDim, ")");
  PIT_CHECK(d.bh <= INT_MAX && d.t <= INT_MAX, op, ": batch * heads ", d.bh, " or sequence length ",
            d.t, " is too large");
  return {static_cast<unsigned>(d.bh), native(stream), static_cast<int>(d.t),
          static_cast<int>(d.dh), static_cast<float>(1.0 / std::sqrt(static_cast<double>(d.dh)))};
}

}  // namespace attention_impl

using namespace attention_impl;

bool attention_uses_tensor_cores(DType dtype, int64_t dh) {
  return (dtype == DType::f16 || dtype == DType::bf16) && (dh == 64 || dh == 128);
}

void causal_attention(DType dtype, const cpu::AttentionDims& dims, const void* q, const void* k,
                      const void* v, void* out, float* lse, StreamRef stream) {
  if (dims.bh * dims.t == 0) return;
  const char* op = "causal_attention";
  const Launch L = make_launch(dims, stream, op);
  DeviceGuard guard(stream.device.index);
  const bool tc = attention_uses_tensor_cores(dtype, dims.dh) && aligned16(q) && aligned16(k) &&
                  aligned16(v) && aligned16(out);
  dispatch<DType::f32, DType::f16, DType::bf16>(dtype, op, [&]<typename T>() {
    if constexpr (kSupported<T>) forward_typed<T>(dims, q, k, v, out, lse, L, tc);
  });
}

void causal_attention_backward(DType dtype, const cpu::AttentionDims& dims, const void* dout,
                               const void* q, const void* k, const void* v, const void* out,
                               const float* lse, float* delta, void* dq, void* dk, void* dv,
                               StreamRef stream) {
  if (dims.bh * dims.t == 0) return;
  const char* op = "causal_attention_backward";
  const Launch L = make_launch(dims, stream, op);
  DeviceGuard guard(stream.device.index);
  const bool tc = attention_uses_tensor_cores(dtype, dims.dh) && aligned16(dout) && aligned16(q) &&
                  aligned16(k) && aligned16(v) && aligned16(dq) && aligned16(dk) && aligned16(dv);
  dispatch<DType::f32, DType::f16, DType::bf16>(dtype, op, [&]<typename T>() {
    if constexpr (kSupported<T>)
      backward_typed<T>(dims, dout, q, k, v, out, lse, delta, dq, dk, dv, L, tc);
  });
}

}  // namespace pit::cuda
