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
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/convert.h"
#include "core/cuda/runtime.h"
#include "ops/cuda/device_utils.cuh"
#include "ops/cuda/attention.h"

namespace pit::cuda {
namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(Half v) { return __half2float(__ushort_as_half(v.bits)); }
__device__ __forceinline__ float to_float(BFloat16 v) {
  return __uint_as_float(static_cast<uint32_t>(v.bits) << 16);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int off = kWarp / 2; off > 0; off /= 2) v += __shfl_xor_sync(kFullMask, v, off);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int off = kWarp / 2; off > 0; off /= 2) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, off));
  return v;
}

// ================================ backward preprocessing =======================================

constexpr int kDeltaThreads = 256;  // one warp per row

// delta[r] = sum_d dout[r][d] * out[r][d] over rows of dh.
template <typename T>
__global__ void __launch_bounds__(kDeltaThreads)
    delta_kernel(const T* __restrict__ dout, const T* __restrict__ out, float* __restrict__ delta,
                 int64_t rows, int dh) {
  const int lane = threadIdx.x % kWarp;
  const int64_t warps = int64_t{gridDim.x} * (kDeltaThreads / kWarp);
  for (int64_t r = blockIdx.x * int64_t{kDeltaThreads / kWarp} + threadIdx.x / kWarp; r < rows;
       r += warps) {
    const T* a = dout + r * dh;
    const T* b = out + r * dh;
    float s = 0.f;
    for (int d = lane; d < dh; d += kWarp) s = fmaf(to_float(a[d]), to_float(b[d]), s);
    s = warp_sum(s);
    if (lane == 0) delta[r] = s;
  }
}

// ================================ CUDA-core kernels =============================================

constexpr int kGenThreads = 128;
constexpr int kGenWarps = kGenThreads / kWarp;
constexpr int kGenRowsPerWarp = 4;
constexpr int kGenRows = kGenWarps * kGenRowsPerWarp;  // rows (queries or keys) per block
constexpr int kGenChunk = kWarp;                       // keys (or queries) per chunk: one per lane

// Head dims handled with kC columns per lane: dh <= 32 * kC (the smem rows are padded to it).
template <int kC>
struct GenDims {
  static constexpr int kP = kC * kWarp;  // padded row, for rows read by column (lane = column)
  static constexpr int kKs = kP + 1;     // padded row, for rows read by row (lane = row)
};

// Copies `rows` rows from row0 of a dense [t][dh] matrix into smem rows of `stride` floats,
// times mul; columns in [dh, width) and rows >= t are zero.
template <typename T>
__device__ __forceinline__ void gen_load(float* dst, int stride, int width, const T* src, int row0,
                                         int rows, int t, int dh, float mul) {
  for (int i = threadIdx.x; i < rows * width; i += kGenThreads) {
    const int r = i / width, c = i % width, row = row0 + r;
    dst[r * stride + c] = (row < t && c < dh) ? to_float(src[int64_t{row} * dh + c]) * mul : 0.f;
  }
}

template <int kC>
constexpr size_t gen_forward_smem() {
  using G = GenDims<kC>;
  return sizeof(float) * (kGenRows * G::kP + kGenChunk * G::kKs + kGenChunk * G::kP);
}
template <int kC>
constexpr size_t gen_dq_smem() {
  using G = GenDims<kC>;
  return sizeof(float) * (2 * kGenRows * G::kP + 2 * kGenChunk * G::kKs);
}
template <int kC>
constexpr size_t gen_dkdv_smem() {
  using G = GenDims<kC>;
  return sizeof(float) * (2 * kGenRows * G::kP + 2 * kGenChunk * G::kKs + 2 * kGenChunk);
}

// Block (bh = blockIdx.x, 16 queries); warp w owns queries row0 + 4w .. row0 + 4w + 3.
template <typename T, int kC>
__global__ void __launch_bounds__(kGenThreads)
    gen_forward_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                       T* __restrict__ out, float* __restrict__ lse, int t, int dh, float scale) {
  constexpr int kR = kGenRowsPerWarp, kP = GenDims<kC>::kP, kKs = GenDims<kC>::kKs;
  extern __shared__ uint4 gen_smem[];
  float* sq = reinterpret_cast<float*>(gen_smem);  // [kGenRows][kP], times scale
  float* sk = sq + kGenRows * kP;                  // [kGenChunk][kKs]
  float* sv = sk + kGenChunk * kKs;                // [kGenChunk][kP]
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t base = int64_t{blockIdx.x} * t * dh;
  q += base;
  k += base;
  v += base;
  out += base;
  lse += int64_t{blockIdx.x} * t;
  const int row0 = static_cast<int>(gridDim.y - 1 - blockIdx.y) * kGenRows;
  const int wrow0 = row0 + warp * kR;
  const int wlast = min(wrow0 + kR, t) - 1;  // below wrow0 when the warp has no row

  gen_load(sq, kP, kP, q, row0, kGenRows, t, dh, scale);
  float m[kR], l[kR], acc[kR][kC];
#pragma unroll
  for (int r = 0; r < kR; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.f;
#pragma unroll
    for (int c = 0; c < kC; ++c) acc[r][c] = 0.f;
  }
  const float* qw = sq + warp * kR * kP;
  const int chunks = (min(row0 + kGenRows, t) - 1) / kGenChunk + 1;
  for (int ch = 0; ch < chunks; ++ch) {
    const int k0 = ch * kGenChunk;
    __syncthreads();  // the previous chunk is consumed (and sq is written)
    gen_load(sk, kKs, kP, k, k0, kGenChunk, t, dh, 1.f);
    gen_load(sv, kP, kP, v, k0, kGenChunk, t, dh, 1.f);
    __syncthreads();
    if (k0 > wlast) continue;  // the whole chunk is above the diagonal for this warp
    const int key = k0 + lane;
    const float* krow = sk + lane * kKs;
    float s[kR];
#pragma unroll
    for (int r = 0; r < kR; ++r) s[r] = 0.f;
#pragma unroll 4
    for (int d = 0; d < dh; ++d) {
      const float kv = krow[d];
#pragma unroll
      for (int r = 0; r < kR; ++r) s[r] = fmaf(qw[r * kP + d], kv, s[r]);
    }
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      const float x = (key <= wrow0 + r && key < t) ? s[r] : -INFINITY;
      const float m_new = fmaxf(m[r], warp_max(x));
      const float m_use = m_new == -INFINITY ? 0.f : m_new;  // a row with nothing yet: p = 0
      const float alpha = expf(m[r] - m_use);
      const float p = expf(x - m_use);
      l[r] = l[r] * alpha + warp_sum(p);
      m[r] = m_new;
      s[r] = p;
#pragma unroll
      for (int c = 0; c < kC; ++c) acc[r][c] *= alpha;
    }
    const int jn = min(kGenChunk, wlast - k0 + 1);  // keys past the warp's last row have p = 0
    for (int j = 0; j < jn; ++j) {
      float pj[kR];
#pragma unroll
      for (int r = 0; r < kR; ++r) pj[r] = __shfl_sync(kFullMask, s[r], j);
      const float* vrow = sv + j * kP;
#pragma unroll
      for (int c = 0; c < kC; ++c) {
        const float vv = vrow[lane + c * kWarp];
#pragma unroll
        for (int r = 0; r < kR; ++r) acc[r][c] = fmaf(pj[r], vv, acc[r][c]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kR; ++r) {
    const int row = wrow0 + r;
    if (row >= t) continue;
    const float inv = 1.f / l[r];
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      const int d = lane + c * kWarp;
      if (d < dh) out[int64_t{row} * dh + d] = convert<T>(acc[r][c] * inv);
    }
    if (lane == 0) lse[row] = m[r] + logf(l[r]);
  }
}

// Block (bh, 16 queries): dq_i = scale * sum_j P_ij (dP_ij - D_i) k_j.
template <typename T, int kC>
__global__ void __launch_bounds__(kGenThreads)
    gen_dq_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                  const T* __restrict__ dout, const float* __restrict__ lse,
                  const float* __restrict__ delta, T* __restrict__ dq, int t, int dh, float scale) {
  constexpr int kR = kGenRowsPerWarp, kP = GenDims<kC>::kP, kKs = GenDims<kC>::kKs;
  extern __shared__ uint4 gen_smem[];
  float* sq = reinterpret_cast<float*>(gen_smem);  // [kGenRows][kP], times scale
  float* sdo = sq + kGenRows * kP;                 // [kGenRows][kP]
  float* sk = sdo + kGenRows * kP;                 // [kGenChunk][kKs]
  float* sv = sk + kGenChunk * kKs;                // [kGenChunk][kKs]
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t base = int64_t{blockIdx.x} * t * dh;
  q += base;
  k += base;
  v += base;
  dout += base;
  dq += base;
  lse += int64_t{blockIdx.x} * t;
  delta += int64_t{blockIdx.x} * t;
  const int row0 = static_cast<int>(gridDim.y - 1 - blockIdx.y) * kGenRows;
  const int wrow0 = row0 + warp * kR;
  const int wlast = min(wrow0 + kR, t) - 1;

  gen_load(sq, kP, kP, q, row0, kGenRows, t, dh, scale);
  gen_load(sdo, kP, kP, dout, row0, kGenRows, t, dh, 1.f);
  float row_lse[kR], row_d[kR], acc[kR][kC];
#pragma unroll
  for (int r = 0; r < kR; ++r) {
    const int row = wrow0 + r;
    row_lse[r] = row < t ? lse[row] : 0.f;
    row_d[r] = row < t ? delta[row] : 0.f;
#pragma unroll
    for (int c = 0; c < kC; ++c) acc[r][c] = 0.f;
  }
  const float* qw = sq + warp * kR * kP;
  const float* dow = sdo + warp * kR * kP;
  const int chunks = (min(row0 + kGenRows, t) - 1) / kGenChunk + 1;
  for (int ch = 0; ch < chunks; ++ch) {
    const int k0 = ch * kGenChunk;
    __syncthreads();
    gen_load(sk, kKs, kP, k, k0, kGenChunk, t, dh, 1.f);
    gen_load(sv, kKs, kP, v, k0, kGenChunk, t, dh, 1.f);
    __syncthreads();
    if (k0 > wlast) continue;
    const int key = k0 + lane;
    const float* krow = sk + lane * kKs;
    const float* vrow = sv + lane * kKs;
    float s[kR], dp[kR];
#pragma unroll
    for (int r = 0; r < kR; ++r) s[r] = dp[r] = 0.f;
#pragma unroll 4
    for (int d = 0; d < dh; ++d) {
      const float kv = krow[d], vv = vrow[d];
#pragma unroll
      for (int r = 0; r < kR; ++r) {
        s[r] = fmaf(qw[r * kP + d], kv, s[r]);
        dp[r] = fmaf(dow[r * kP + d], vv, dp[r]);
      }
    }
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      const bool ok = key <= wrow0 + r && key < t;
      const float p = ok ? expf(s[r] - row_lse[r]) : 0.f;
      s[r] = ok ? p * (dp[r] - row_d[r]) : 0.f;  // dS
    }
    const int jn = min(kGenChunk, wlast - k0 + 1);
    for (int j = 0; j < jn; ++j) {
      float dsj[kR];
#pragma unroll
      for (int r = 0; r < kR; ++r) dsj[r] = __shfl_sync(kFullMask, s[r], j);
      const float* kj = sk + j * kKs;
#pragma unroll
      for (int c = 0; c < kC; ++c) {
        const float kv = kj[lane + c * kWarp];
#pragma unroll
        for (int r = 0; r < kR; ++r) acc[r][c] = fmaf(dsj[r], kv, acc[r][c]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kR; ++r) {
    const int row = wrow0 + r;
    if (row >= t) continue;
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      const int d = lane + c * kWarp;
      if (d < dh) dq[int64_t{row} * dh + d] = convert<T>(acc[r][c] * scale);
    }
  }
}

// Block (bh, 16 keys; blockIdx.y = 0 holds keys 0..15, the most queries); warp w owns keys
// key0 + 4w .. key0 + 4w + 3 and walks the queries from its chunk of the diagonal to the end:
// dv_j = sum_i P_ij dout_i, dk_j = scale * sum_i dS_ij q_i. Lane i takes query q0 + i.
template <typename T, int kC>
__global__ void __launch_bounds__(kGenThreads)
    gen_dkdv_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                    const T* __restrict__ dout, const float* __restrict__ lse,
                    const float* __restrict__ delta, T* __restrict__ dk, T* __restrict__ dv, int t,
                    int dh, float scale) {
  constexpr int kR = kGenRowsPerWarp, kP = GenDims<kC>::kP, kKs = GenDims<kC>::kKs;
  extern __shared__ uint4 gen_smem[];
  float* sk = reinterpret_cast<float*>(gen_smem);  // [kGenRows][kP], times scale
  float* sv = sk + kGenRows * kP;                  // [kGenRows][kP]
  float* sq = sv + kGenRows * kP;                  // [kGenChunk][kKs]
  float* sdo = sq + kGenChunk * kKs;               // [kGenChunk][kKs]
  float* slse = sdo + kGenChunk * kKs;             // [kGenChunk]
  float* sd = slse + kGenChunk;                    // [kGenChunk]
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t base = int64_t{blockIdx.x} * t * dh;
  q += base;
  k += base;
  v += base;
  dout += base;
  dk += base;
  dv += base;
  lse += int64_t{blockIdx.x} * t;
  delta += int64_t{blockIdx.x} * t;
  const int key0 = static_cast<int>(blockIdx.y) * kGenRows;
  const int wkey0 = key0 + warp * kR;

  gen_load(sk, kP, kP, k, key0, kGenRows, t, dh, scale);
  gen_load(sv, kP, kP, v, key0, kGenRows, t, dh, 1.f);
  float dk_acc[kR][kC], dv_acc[kR][kC];
#pragma unroll
  for (int r = 0; r < kR; ++r)
#pragma unroll
    for (int c = 0; c < kC; ++c) dk_acc[r][c] = dv_acc[r][c] = 0.f;
  const float* kw = sk + warp * kR * kP;
  const float* vw = sv + warp * kR * kP;
  const int last_chunk = (t - 1) / kGenChunk;
  for (int ch = key0 / kGenChunk; ch <= last_chunk; ++ch) {
    const int q0 = ch * kGenChunk;
    __syncthreads();
    gen_load(sq, kKs, kP, q, q0, kGenChunk, t, dh, 1.f);
    gen_load(sdo, kKs, kP, dout, q0, kGenChunk, t, dh, 1.f);
    if (threadIdx.x < kGenChunk) {
      const int qi = q0 + static_cast<int>(threadIdx.x);
      slse[threadIdx.x] = qi < t ? lse[qi] : 0.f;
      sd[threadIdx.x] = qi < t ? delta[qi] : 0.f;
    }
    __syncthreads();
    if (q0 + kGenChunk - 1 < wkey0) continue;  // every query of the chunk precedes the keys
    const int query = q0 + lane;
    const float* qrow = sq + lane * kKs;
    const float* dorow = sdo + lane * kKs;
    float s[kR], dp[kR];
#pragma unroll
    for (int r = 0; r < kR; ++r) s[r] = dp[r] = 0.f;
#pragma unroll 4
    for (int d = 0; d < dh; ++d) {
      const float qv = qrow[d], gv = dorow[d];
#pragma unroll
      for (int r = 0; r < kR; ++r) {
        s[r] = fmaf(qv, kw[r * kP + d], s[r]);
        dp[r] = fmaf(gv, vw[r * kP + d], dp[r]);
      }
    }
    const float my_lse = slse[lane], my_d = sd[lane];
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      const bool ok = query >= wkey0 + r && query < t;
      const float p = ok ? expf(s[r] - my_lse) : 0.f;
      dp[r] = ok ? p * (dp[r] - my_d) : 0.f;  // dS
      s[r] = p;
    }
    const int n_in = min(kGenChunk, t - q0);  // queries past the sequence have p = dS = 0
    for (int i = 0; i < n_in; ++i) {
      float pi[kR], dsi[kR];
#pragma unroll
      for (int r = 0; r < kR; ++r) {
        pi[r] = __shfl_sync(kFullMask, s[r], i);
        dsi[r] = __shfl_sync(kFullMask, dp[r], i);
      }
      const float* qi = sq + i * kKs;
      const float* gi = sdo + i * kKs;
#pragma unroll
      for (int c = 0; c < kC; ++c) {
        const float qv = qi[lane + c * kWarp], gv = gi[lane + c * kWarp];
#pragma unroll
        for (int r = 0; r < kR; ++r) {
          dv_acc[r][c] = fmaf(pi[r], gv, dv_acc[r][c]);
          dk_acc[r][c] = fmaf(dsi[r], qv, dk_acc[r][c]);
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kR; ++r) {
    const int key = wkey0 + r;
    if (key >= t) continue;
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      const int d = lane + c * kWarp;
      if (d < dh) {
        dk[int64_t{key} * dh + d] = convert<T>(dk_acc[r][c] * scale);
        dv[int64_t{key} * dh + d] = convert<T>(dv_acc[r][c]);
      }
    }
  }
}

// ================================ tensor-core kernels ===========================================

constexpr int kMmaThreads = 128;  // 4 warps
constexpr int kMmaWarps = kMmaThreads / kWarp;
constexpr int kBlockM = 64;  // queries per block (16 per warp) in forward and dq
constexpr int kBlockN = 64;  // keys per block (16 per warp in dk/dv; per step in forward and dq)
static_assert(kBlockM == kBlockN, "the diagonal logic assumes square blocks");
static_assert(kBlockM == 16 * kMmaWarps, "one m16 row slice per warp");

// Row stride of a shared-memory tile of kD 16-bit columns: 16 bytes of padding move each row
// to the next 16-byte bank group, so the 8 row addresses of an ldmatrix phase never collide.
template <int kD>
constexpr int kLd = kD + 8;
// Queries per step of the dk/dv kernel: fewer for dh 128, whose dk and dv accumulators
// (2 x 64 registers per thread) leave less room for the S^T and dP^T tiles.
template <int kD>
constexpr int kBlockQ = kD == 64 ? 64 : 32;

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, asynchronously; !valid writes zeros and reads nothing.
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
  const int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
               "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
// Waits until at most kPending of this thread's committed groups are still in flight.
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// Four 8x8 16-bit matrices; lanes 8i..8i+7 give the row addresses of matrix i, which lands in
// r[i]: lane l holds row l / 4, columns 2 (l % 4) and 2 (l % 4) + 1 (low half first).
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const uint16_t* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p))
               : "memory");
}
// The same, transposed: lane l holds rows 2 (l % 4) and 2 (l % 4) + 1 of column l / 4.
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], const uint16_t* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p))
               : "memory");
}

template <typename T>
struct Mma;

template <>
struct Mma<Half> {
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    return static_cast<uint32_t>(__half_as_ushort(__float2half_rn(lo))) |
           (static_cast<uint32_t>(__half_as_ushort(__float2half_rn(hi))) << 16);
  }
  // c += a b for A 16x16 (row-major fragments), B 16x8 (column fragments), f32 c.
  static __device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

template <>
struct Mma<BFloat16> {
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    return static_cast<uint32_t>(__bfloat16_as_ushort(__float2bfloat16_rn(lo))) |
           (static_cast<uint32_t>(__bfloat16_as_ushort(__float2bfloat16_rn(hi))) << 16);
  }
  static __device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

// Fragment layouts of mma.m16n8k16 (g = lane / 4, q = lane % 4):
//   A regs: (row g, cols 2q..2q+1), (row g+8, cols 2q..), (row g, cols 2q+8..), (row g+8, 2q+8..)
//   B regs: (k rows 2q..2q+1, col g), (k rows 2q+8..2q+9, col g)
//   C: c[0], c[1] at (row g, cols 2q, 2q+1); c[2], c[3] at (row g+8, cols 2q, 2q+1).

// A fragment: rows r0..r0+15, columns c0..c0+15 of a row-major tile (stride kLd<kD>).
template <int kD>
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const uint16_t* tile, int r0, int c0,
                                       int lane) {
  const int row = r0 + (lane % 8) + ((lane / 8) % 2) * 8;
  const int col = c0 + (lane / 16) * 8;
  ldsm_x4(a, tile + row * kLd<kD> + col);
}

// B fragments of two n-tiles for B[k][n] = tile[n][k] (tile rows are the n index):
// n0..n0+15, k0..k0+15. b[0], b[1]: n-tile n0; b[2], b[3]: n-tile n0 + 8.
template <int kD>
__device__ __forceinline__ void load_b_nk(uint32_t (&b)[4], const uint16_t* tile, int n0, int k0,
                                          int lane) {
  const int row = n0 + (lane % 8) + (lane / 16) * 8;
  const int col = k0 + ((lane / 8) % 2) * 8;
  ldsm_x4(b, tile + row * kLd<kD> + col);
}

// B fragments of two n-tiles for B[k][n] = tile[k][n] (tile rows are the k index):
// k0..k0+15, n0..n0+15. b[0], b[1]: n-tile n0; b[2], b[3]: n-tile n0 + 8.
template <int kD>
__device__ __forceinline__ void load_b_kn(uint32_t (&b)[4], const uint16_t* tile, int k0, int n0,
                                          int lane) {
  const int row = k0 + (lane % 8) + ((lane / 8) % 2) * 8;
  const int col = n0 + (lane / 16) * 8;
  ldsm_x4_trans(b, tile + row * kLd<kD> + col);
}

// The C fragments of n-tiles 2j and 2j+1 (a 16 x 16 block) as the A fragment of k-step j.
template <typename T>
__device__ __forceinline__ void c_to_a(uint32_t (&a)[4], const float (&c0)[4],
                                       const float (&c1)[4]) {
  a[0] = Mma<T>::pack(c0[0], c0[1]);
  a[1] = Mma<T>::pack(c0[2], c0[3]);
  a[2] = Mma<T>::pack(c1[0], c1[1]);
  a[3] = Mma<T>::pack(c1[2], c1[3]);
}

// Starts the copy of rows row0..row0+kRows-1 of a dense [t][kD] matrix into a tile (rows >= t
// are zero-filled). Every thread of the block takes part.
template <int kRows, int kD>
__device__ __forceinline__ void load_tile(uint16_t* tile, const uint16_t* src, int row0, int t) {
  constexpr int kChunksPerRow = kD / 8;
  constexpr int kChunks = kRows * kChunksPerRow;
  static_assert(kChunks % kMmaThreads == 0, "whole rounds of 16-byte chunks");
#pragma unroll
  for (int it = 0; it < kChunks / kMmaThreads; ++it) {
    const int i = static_cast<int>(threadIdx.x) + it * kMmaThreads;
    const int r = i / kChunksPerRow, c = i % kChunksPerRow, row = row0 + r;
    const bool valid = row < t;
    cp_async_16(tile + r * kLd<kD> + c * 8, src + int64_t{valid ? row : 0} * kD + c * 8, valid);
  }
}

// Writes a warp's 16 x kD f32 accumulator (rows r0.., row g scaled by mul_lo, row g + 8 by
// mul_hi) to rows r0..r0+15 (those < t) of a dense [t][kD] matrix: through `stage`, 16 rows of
// shared memory owned by this warp, so that the global stores are whole 16-byte chunks.
template <typename T, int kD>
__device__ __forceinline__ void store_rows(const float (&acc)[kD / 8][4], float mul_lo,
                                           float mul_hi, uint16_t* stage, uint16_t* dst, int r0,
                                           int t, int lane) {
  const int g = lane / 4, tq = lane % 4;
  __syncwarp();  // every lane is done reading `stage`
#pragma unroll
  for (int nt = 0; nt < kD / 8; ++nt) {
    const int col = nt * 8 + 2 * tq;
    *reinterpret_cast<uint32_t*>(stage + g * kLd<kD> + col) =
        Mma<T>::pack(acc[nt][0] * mul_lo, acc[nt][1] * mul_lo);
    *reinterpret_cast<uint32_t*>(stage + (g + 8) * kLd<kD> + col) =
        Mma<T>::pack(acc[nt][2] * mul_hi, acc[nt][3] * mul_hi);
  }
  __syncwarp();
  constexpr int kChunksPerRow = kD / 8;
static_assert(16 * kChunksPerRow % kWarp == 0, "whole rounds of 16-byte chunks");
#pragma unroll
  for (int it = 0; it < 16 * kChunksPerRow / kWarp; ++it) {
    const int i = lane + it * kWarp;
    const int r = i / kChunksPerRow, c = i % kChunksPerRow, row = r0 + r;
    if (row < t)
      *reinterpret_cast<uint4*>(dst + int64_t{row} * kD + c * 8) =
          *reinterpret_cast<const uint4*>(stage + r * kLd<kD> + c * 8);
  }
}

template <int kD>
constexpr size_t mma_forward_smem() {
  return sizeof(uint16_t) * kLd<kD> * (kBlockM + 4 * kBlockN);  // Q, 2 x K, 2 x V
}
template <int kD>
constexpr size_t mma_dq_smem() {
  return sizeof(uint16_t) * kLd<kD> * (2 * kBlockM + 4 * kBlockN);  // Q, dO, 2 x K, 2 x V
}
template <int kD>
constexpr size_t mma_dkdv_smem() {  // K, V, 2 x Q, 2 x dO, 2 x (lse, D)
  return sizeof(uint16_t) * kLd<kD> * (2 * kBlockN + 4 * kBlockQ<kD>) +
         sizeof(float) * 4 * kBlockQ<kD>;
}

// Block (bh = blockIdx.x, 64 queries); warp w owns queries m0 + 16w .. m0 + 16w + 15.
template <typename T, int kD>
__global__ void __launch_bounds__(kMmaThreads)
    mma_forward_kernel(const uint16_t* __restrict__ q, const uint16_t* __restrict__ k,
                       const uint16_t* __restrict__ v, uint16_t* __restrict__ out,
                       float* __restrict__ lse, int t, float scale_log2) {
  constexpr int kNT = kBlockN / 8;  // n-tiles of S
  constexpr int kDT = kD / 8;       // n-tiles of O
  constexpr int kKS = kD / 16;      // k-steps of Q K^T
  constexpr int kTile = kBlockN * kLd<kD>;
  extern __shared__ uint4 mma_smem[];
  uint16_t* sq = reinterpret_cast<uint16_t*>(mma_smem);
  uint16_t* sk = sq + kBlockM * kLd<kD>;  // two buffers
  uint16_t* sv = sk + 2 * kTile;          // two buffers
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int g = lane / 4, tq = lane % 4;
  const int64_t base = int64_t{blockIdx.x} * t * kD;
  q += base;
  k += base;
  v += base;
  out += base;
  lse += int64_t{blockIdx.x} * t;
  const int m0 = static_cast<int>(gridDim.y - 1 - blockIdx.y) * kBlockM;
  const int wr0 = m0 + warp * 16;  // this thread's rows: wr0 + g and wr0 + g + 8
  const int n_blocks = (min(t, m0 + kBlockM) + kBlockN - 1) / kBlockN;  // up to the diagonal

  load_tile<kBlockM, kD>(sq, q, m0, t);
  load_tile<kBlockN, kD>(sk, k, 0, t);
  load_tile<kBlockN, kD>(sv, v, 0, t);
  cp_async_commit();

  float o[kDT][4];
#pragma unroll
  for (int i = 0; i < kDT; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float row_m[2] = {-INFINITY, -INFINITY}, row_l[2] = {0.f, 0.f};  // exp2 domain
  uint32_t qf[kKS][4];

  for (int j = 0; j < n_blocks; ++j) {
    const int buf = j & 1;
    if (j + 1 < n_blocks) {
      load_tile<kBlockN, kD>(sk + (buf ^ 1) * kTile, k, (j + 1) * kBlockN, t);
      load_tile<kBlockN, kD>(sv + (buf ^ 1) * kTile, v, (j + 1) * kBlockN, t);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (j == 0) {
#pragma unroll
      for (int kk = 0; kk < kKS; ++kk) load_a<kD>(qf[kk], sq, warp * 16, kk * 16, lane);
    }
    const uint16_t* kt = sk + buf * kTile;
    const uint16_t* vt = sv + buf * kTile;

    float s[kNT][4];
#pragma unroll
    for (int i = 0; i < kNT; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < kKS; ++kk)
#pragma unroll
      for (int np = 0; np < kNT / 2; ++np) {
        uint32_t b[4];
        load_b_nk<kD>(b, kt, np * 16, kk * 16, lane);
        Mma<T>::mma(s[2 * np], qf[kk], b[0], b[1]);
        Mma<T>::mma(s[2 * np + 1], qf[kk], b[2], b[3]);
      }

    // Online softmax, rows g (h = 0) and g + 8 (h = 1); the last block holds the diagonal and
    // the keys past t.
    const bool mask = j == n_blocks - 1;
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = wr0 + g + (e / 2) * 8;
        const int key = j * kBlockN + nt * 8 + 2 * tq + (e % 2);
        float x = s[nt][e] * scale_log2;
        if (mask && (key > row || key >= t)) x = -INFINITY;
        s[nt][e] = x;
        mx[e / 2] = fmaxf(mx[e / 2], x);
      }
    float m_use[2], alpha[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(kFullMask, mx[h], 1));  // the 4 lanes of a row
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(kFullMask, mx[h], 2));
      const float m_new = fmaxf(row_m[h], mx[h]);
      m_use[h] = m_new == -INFINITY ? 0.f : m_new;
      alpha[h] = exp2f(row_m[h] - m_use[h]);
      row_m[h] = m_new;
      row_l[h] *= alpha[h];  // per-lane partial sums; the 4 lanes of a row add up at the end
    }
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float p = exp2f(s[nt][e] - m_use[e / 2]);
        s[nt][e] = p;
        row_l[e / 2] += p;
      }
#pragma unroll
    for (int i = 0; i < kDT; ++i) {
      o[i][0] *= alpha[0];
      o[i][1] *= alpha[0];
      o[i][2] *= alpha[1];
      o[i][3] *= alpha[1];
    }

    // O += P V (P rounded to T).
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      uint32_t a[4];
      c_to_a<T>(a, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int np = 0; np < kDT / 2; ++np) {
        uint32_t b[4];
        load_b_kn<kD>(b, vt, kk * 16, np * 16, lane);
        Mma<T>::mma(o[2 * np], a, b[0], b[1]);
        Mma<T>::mma(o[2 * np + 1], a, b[2], b[3]);
      }
    }
    __syncthreads();  // the buffers of this step are free for the load two steps on
  }

#pragma unroll
  for (int h = 0; h < 2; ++h) {
    row_l[h] += __shfl_xor_sync(kFullMask, row_l[h], 1);
    row_l[h] += __shfl_xor_sync(kFullMask, row_l[h], 2);
  }
  // The Q rows of this warp were read by this warp alone: reuse them as the staging area.
  store_rows<T, kD>(o, 1.f / row_l[0], 1.f / row_l[1], sq + warp * 16 * kLd<kD>, out, wr0, t,
                    lane);
  if (tq == 0) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = wr0 + g + h * 8;
      if (row < t) lse[row] = (row_m[h] + log2f(row_l[h])) * kLn2;
    }
  }
}

// Block (bh, 64 queries): dq = scale * dS K, walking key blocks 0..diagonal.
template <typename T, int kD>
__global__ void __launch_bounds__(kMmaThreads)
    mma_dq_kernel(const uint16_t* __restrict__ q, const uint16_t* __restrict__ k,
                  const uint16_t* __restrict__ v, const uint16_t* __restrict__ dout,
                  const float* __restrict__ lse, const float* __restrict__ delta,
                  uint16_t* __restrict__ dq, int t, float scale_log2, float scale) {
  constexpr int kNT = kBlockN / 8;
  constexpr int kDT = kD / 8;
  constexpr int kKS = kD / 16;
  constexpr int kTile = kBlockN * kLd<kD>;
  extern __shared__ uint4 mma_smem[];
  uint16_t* sq = reinterpret_cast<uint16_t*>(mma_smem);
  uint16_t* sdo = sq + kBlockM * kLd<kD>;
  uint16_t* sk = sdo + kBlockM * kLd<kD>;  // two buffers
  uint16_t* sv = sk + 2 * kTile;           // two buffers
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int g = lane / 4, tq = lane % 4;
  const int64_t base = int64_t{blockIdx.x} * t * kD;
  q += base;
  k += base;
  v += base;
  dout += base;
  dq += base;
  lse += int64_t{blockIdx.x} * t;
  delta += int64_t{blockIdx.x} * t;
  const int m0 = static_cast<int>(gridDim.y - 1 - blockIdx.y) * kBlockM;
  const int wr0 = m0 + warp * 16;
  const int n_blocks = (min(t, m0 + kBlockM) + kBlockN - 1) / kBlockN;

  load_tile<kBlockM, kD>(sq, q, m0, t);
  load_tile<kBlockM, kD>(sdo, dout, m0, t);
  load_tile<kBlockN, kD>(sk, k, 0, t);
  load_tile<kBlockN, kD>(sv, v, 0, t);
  cp_async_commit();

  float row_lse[2], row_d[2];  // lse in the exp2 domain
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = wr0 + g + h * 8;
    row_lse[h] = row < t ? lse[row] * kLog2e : 0.f;
    row_d[h] = row < t ? delta[row] : 0.f;
  }
  float acc[kDT][4];
#pragma unroll
  for (int i = 0; i < kDT; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;

  for (int j = 0; j < n_blocks; ++j) {
    const int buf = j & 1;
    if (j + 1 < n_blocks) {
      load_tile<kBlockN, kD>(sk + (buf ^ 1) * kTile, k, (j + 1) * kBlockN, t);
      load_tile<kBlockN, kD>(sv + (buf ^ 1) * kTile, v, (j + 1) * kBlockN, t);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const uint16_t* kt = sk + buf * kTile;
    const uint16_t* vt = sv + buf * kTile;

    float s[kNT][4], dp[kNT][4];
#pragma unroll
    for (int i = 0; i < kNT; ++i)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[i][e] = dp[i][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < kKS; ++kk) {
      uint32_t aq[4], ag[4];
      load_a<kD>(aq, sq, warp * 16, kk * 16, lane);
      load_a<kD>(ag, sdo, warp * 16, kk * 16, lane);
#pragma unroll
      for (int np = 0; np < kNT / 2; ++np) {
        uint32_t b[4];
        load_b_nk<kD>(b, kt, np * 16, kk * 16, lane);  // S = Q K^T
        Mma<T>::mma(s[2 * np], aq, b[0], b[1]);
        Mma<T>::mma(s[2 * np + 1], aq, b[2], b[3]);
        load_b_nk<kD>(b, vt, np * 16, kk * 16, lane);  // dP = dO V^T
        Mma<T>::mma(dp[2 * np], ag, b[0], b[1]);
        Mma<T>::mma(dp[2 * np + 1], ag, b[2], b[3]);
      }
    }
    const bool mask = j == n_blocks - 1;
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int h = e / 2;
        const int row = wr0 + g + h * 8;
        const int key = j * kBlockN + nt * 8 + 2 * tq + (e % 2);
        const bool off = mask && (key > row || key >= t);
        const float p = exp2f(s[nt][e] * scale_log2 - row_lse[h]);
        s[nt][e] = off ? 0.f : p * (dp[nt][e] - row_d[h]);  // dS
      }
    // dQ += dS K.
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      uint32_t a[4];
      c_to_a<T>(a, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int np = 0; np < kDT / 2; ++np) {
        uint32_t b[4];
        load_b_kn<kD>(b, kt, kk * 16, np * 16, lane);
        Mma<T>::mma(acc[2 * np], a, b[0], b[1]);
        Mma<T>::mma(acc[2 * np + 1], a, b[2], b[3]);
      }
    }
    __syncthreads();
  }
  store_rows<T, kD>(acc, scale, scale, sq + warp * 16 * kLd<kD>, dq, wr0, t, lane);
}

// Block (bh, 64 keys; blockIdx.y = 0 holds keys 0..63, the most queries); warp w owns keys
// n0 + 16w .. n0 + 16w + 15 and walks query blocks of kBlockQ from the diagonal to the end.
template <typename T, int kD>
__global__ void __launch_bounds__(kMmaThreads)
    mma_dkdv_kernel(const uint16_t* __restrict__ q, const uint16_t* __restrict__ k,
                    const uint16_t* __restrict__ v, const uint16_t* __restrict__ dout,
                    const float* __restrict__ lse, const float* __restrict__ delta,
                    uint16_t* __restrict__ dk, uint16_t* __restrict__ dv, int t, float scale_log2,
                    float scale) {
  constexpr int kBQ = kBlockQ<kD>;
  constexpr int kQT = kBQ / 8;  // n-tiles of S^T (queries)
  constexpr int kDT = kD / 8;
  constexpr int kKS = kD / 16;
  constexpr int kQTile = kBQ * kLd<kD>;
  extern __shared__ uint4 mma_smem[];
  uint16_t* sk = reinterpret_cast<uint16_t*>(mma_smem);
  uint16_t* sv = sk + kBlockN * kLd<kD>;
  uint16_t* sq = sv + kBlockN * kLd<kD>;  // two buffers
  uint16_t* sdo = sq + 2 * kQTile;        // two buffers
  float* slse = reinterpret_cast<float*>(sdo + 2 * kQTile);  // two buffers, exp2 domain
  float* sd = slse + 2 * kBQ;                                // two buffers
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int g = lane / 4, tq = lane % 4;
  const int64_t base = int64_t{blockIdx.x} * t * kD;
  q += base;
  k += base;
  v += base;
  dout += base;
  dk += base;
  dv += base;
  lse += int64_t{blockIdx.x} * t;
  delta += int64_t{blockIdx.x} * t;
  const int n0 = static_cast<int>(blockIdx.y) * kBlockN;
  const int wk0 = n0 + warp * 16;  // this thread's keys: wk0 + g and wk0 + g + 8
  const int i0 = n0 / kBQ;         // the first query block with a query >= n0
  const int n_steps = (t - 1) / kBQ - i0 + 1;

  // Loads query block i (tiles asynchronously, lse and D directly) into buffer b.
  const auto load_queries = [&](int i, int b) {
    const int qb0 = i * kBQ;
    load_tile<kBQ, kD>(sq + b * kQTile, q, qb0, t);
    load_tile<kBQ, kD>(sdo + b * kQTile, dout, qb0, t);
    if (threadIdx.x < kBQ) {
      const int qi = qb0 + static_cast<int>(threadIdx.x);
      slse[b * kBQ + threadIdx.x] = qi < t ? lse[qi] * kLog2e : 0.f;
      sd[b * kBQ + threadIdx.x] = qi < t ? delta[qi] : 0.f;
    }
  };
  load_tile<kBlockN, kD>(sk, k, n0, t);
  load_tile<kBlockN, kD>(sv, v, n0, t);
  load_queries(i0, 0);
  cp_async_commit();

  float dk_acc[kDT][4], dv_acc[kDT][4];
#pragma unroll
  for (int i = 0; i < kDT; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk_acc[i][e] = dv_acc[i][e] = 0.f;

  for (int it = 0; it < n_steps; ++it) {
    const int buf = it & 1;
    const int q0 = (i0 + it) * kBQ;
    if (it + 1 < n_steps) {
      load_queries(i0 + it + 1, buf ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    // Skip when every query of the block precedes this warp's keys (warp-uniform).
    if (q0 + kBQ - 1 >= wk0) {
      const uint16_t* qt = sq + buf * kQTile;
      const uint16_t* gt = sdo + buf * kQTile;
      const float* bl = slse + buf * kBQ;
      const float* bd = sd + buf * kBQ;
      float s[kQT][4], dp[kQT][4];  // S^T and dP^T: rows = keys, columns = queries
#pragma unroll
      for (int i = 0; i < kQT; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[i][e] = dp[i][e] = 0.f;
#pragma unroll
      for (int kk = 0; kk < kKS; ++kk) {
        uint32_t ak[4], av[4];
        load_a<kD>(ak, sk, warp * 16, kk * 16, lane);
        load_a<kD>(av, sv, warp * 16, kk * 16, lane);
#pragma unroll
        for (int np = 0; np < kQT / 2; ++np) {
          uint32_t b[4];
          load_b_nk<kD>(b, qt, np * 16, kk * 16, lane);  // S^T = K Q^T
          Mma<T>::mma(s[2 * np], ak, b[0], b[1]);
          Mma<T>::mma(s[2 * np + 1], ak, b[2], b[3]);
          load_b_nk<kD>(b, gt, np * 16, kk * 16, lane);  // dP^T = V dO^T
          Mma<T>::mma(dp[2 * np], av, b[0], b[1]);
          Mma<T>::mma(dp[2 * np + 1], av, b[2], b[3]);
        }
      }
      const bool mask = q0 < n0 + kBlockN || q0 + kBQ > t;
#pragma unroll
      for (int nt = 0; nt < kQT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = wk0 + g + (e / 2) * 8;
          const int ql = nt * 8 + 2 * tq + (e % 2);
          const int query = q0 + ql;
          const bool off = mask && (query < key || query >= t);
          const float p = exp2f(s[nt][e] * scale_log2 - bl[ql]);
          s[nt][e] = off ? 0.f : p;                            // P^T
          dp[nt][e] = off ? 0.f : p * (dp[nt][e] - bd[ql]);    // dS^T
        }
      // dV += P^T dO, dK += dS^T Q (k = queries).
#pragma unroll
      for (int kk = 0; kk < kBQ / 16; ++kk) {
        uint32_t ap[4], as[4];
        c_to_a<T>(ap, s[2 * kk], s[2 * kk + 1]);
        c_to_a<T>(as, dp[2 * kk], dp[2 * kk + 1]);
#pragma unroll
        for (int np = 0; np < kDT / 2; ++np) {
          uint32_t b[4];
          load_b_kn<kD>(b, gt, kk * 16, np * 16, lane);
          Mma<T>::mma(dv_acc[2 * np], ap, b[0], b[1]);
          Mma<T>::mma(dv_acc[2 * np + 1], ap, b[2], b[3]);
          load_b_kn<kD>(b, qt, kk * 16, np * 16, lane);
          Mma<T>::mma(dk_acc[2 * np], as, b[0], b[1]);
          Mma<T>::mma(dk_acc[2 * np + 1], as, b[2], b[3]);
        }
      }
    }
    __syncthreads();
  }
  // The K and V rows of this warp were read by this warp alone: reuse them as staging areas.
  store_rows<T, kD>(dk_acc, scale, scale, sk + warp * 16 * kLd<kD>, dk, wk0, t, lane);
  store_rows<T, kD>(dv_acc, 1.f, 1.f, sv + warp * 16 * kLd<kD>, dv, wk0, t, lane);
}

// ================================ launch ========================================================

template <typename T>
constexpr bool kSupported =
    std::is_same_v<T, float> || std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;
template <typename T>
constexpr bool kHalfWidth = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

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

}  // namespace

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
