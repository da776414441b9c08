#pragma once
// Tensor-core causal attention kernels (f16/bf16, head dims 64 and 128): mma.sync, ldmatrix, cp.async.
// Internal to ops/cuda/attention.cu (included by it alone); see that file for the design.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include <type_traits>

#include "ops/cuda/attention_common.cuh"
#include "ops/cuda/mma_ptx.cuh"

namespace pit::cuda::attention_impl {
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

using ptx::cp_async_commit;
using ptx::cp_async_wait;
using ptx::ldsm_x4;
using ptx::ldsm_x4_trans;
using ptx::smem_u32;
// 16 bytes global -> shared, asynchronously; !valid writes zeros and reads nothing.
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
  ptx::cp_async_16(dst, src, valid ? 16 : 0);
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
    ptx::mma16816<Half>(c, a, b0, b1);
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
    ptx::mma16816<BFloat16>(c, a, b0, b1);
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

// Two products of a warp's 16 rows at once, sharing the k loop: x = A1 B1^T and y = A2 B2^T, where
// A1, A2 are rows r0..r0+15 of tiles a1, a2 ([.][kD]) and B1, B2 the first kN rows of b1, b2.
// Both accumulators are zeroed first. The backward's S with dP (queries by keys) and S^T with
// dP^T (keys by queries) are both this.
template <typename T, int kD, int kN>
__device__ __forceinline__ void two_products(float (&x)[kN / 8][4], float (&y)[kN / 8][4],
                                             const uint16_t* a1, const uint16_t* a2, int r0,
                                             const uint16_t* b1, const uint16_t* b2, int lane) {
#pragma unroll
  for (int i = 0; i < kN / 8; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) x[i][e] = y[i][e] = 0.f;
#pragma unroll
  for (int kk = 0; kk < kD / 16; ++kk) {
    uint32_t f1[4], f2[4];
    load_a<kD>(f1, a1, r0, kk * 16, lane);
    load_a<kD>(f2, a2, r0, kk * 16, lane);
#pragma unroll
    for (int np = 0; np < kN / 16; ++np) {
      uint32_t b[4];
      load_b_nk<kD>(b, b1, np * 16, kk * 16, lane);
      Mma<T>::mma(x[2 * np], f1, b[0], b[1]);
      Mma<T>::mma(x[2 * np + 1], f1, b[2], b[3]);
      load_b_nk<kD>(b, b2, np * 16, kk * 16, lane);
      Mma<T>::mma(y[2 * np], f2, b[0], b[1]);
      Mma<T>::mma(y[2 * np + 1], f2, b[2], b[3]);
    }
  }
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

    float s[kNT][4], dp[kNT][4];  // S = Q K^T, dP = dO V^T
    two_products<T, kD, kBlockN>(s, dp, sq, sdo, warp * 16, kt, vt, lane);
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
      // S^T = K Q^T and dP^T = V dO^T: rows = keys, columns = queries
      float s[kQT][4], dp[kQT][4];
      two_products<T, kD, kBQ>(s, dp, sk, sv, warp * 16, qt, gt, lane);
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

}  // namespace pit::cuda::attention_impl
