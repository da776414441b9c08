#pragma once
// CUDA-core causal attention kernels (f32, any head dim up to 256, unaligned inputs).
// Internal to ops/cuda/attention.cu (included by it alone); see that file for the design.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/attention_common.cuh"

namespace pit::cuda::attention_impl {
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
    dst[r * stride + c] = (row < t && c < dh) ? widen(src[int64_t{row} * dh + c]) * mul : 0.f;
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

}  // namespace pit::cuda::attention_impl
