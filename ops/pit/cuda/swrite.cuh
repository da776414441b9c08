#pragma once
// SWrite: the epilogue that puts an f32 accumulator tile where it belongs: rows of C named by an
// index (scattered) or compact, with a plain store (+ bias, activation), an accumulate that
// owns its elements (read-modify-write), or an atomic accumulate where several tiles meet one
// output element (MoE combine, K-chunk segments, scattered partial sums). The accumulator
// fragments give each thread pairs of adjacent columns of one row: swrite_pair writes such a
// pair, as one 4-byte access (8 for f32) where the address allows.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "ops/cuda/device_utils.cuh"

namespace pit::sparse::cuda::dev {

enum class WriteMode : int { store = 0, accumulate = 1, atomic = 2 };
// Fused activations (ops/elementwise_op.h semantics, in f32).
enum class Act : int { none = 0, relu, gelu_tanh, gelu_erf, silu };

struct EpiArgs {
  WriteMode mode = WriteMode::store;
  Act act = Act::none;
  const void* bias = nullptr;  // [N] or [S, N] (row `segment` taken by the caller); store only
};

__device__ __forceinline__ float activate(Act act, float x) {
  switch (act) {
    case Act::relu: return x > 0.f ? x : 0.f;
    case Act::gelu_tanh: {
      const float k0 = 0.7978845608028654f, k1 = 0.044715f;  // sqrt(2/pi), cubic coefficient
      return 0.5f * x * (1.f + tanhf(k0 * (x + k1 * x * x * x)));
    }
    case Act::gelu_erf: return 0.5f * x * (1.f + erff(x * 0.7071067811865476f));
    case Act::silu: return x / (1.f + expf(-x));
    default: return x;
  }
}

template <typename T>
__device__ __forceinline__ void atomic_add1(T* p, float v) {
  if constexpr (std::is_same_v<T, float>) {
    atomicAdd(p, v);
  } else if constexpr (std::is_same_v<T, BFloat16>) {
    atomicAdd(reinterpret_cast<__nv_bfloat16*>(p), __float2bfloat16_rn(v));
  } else {
    atomicAdd(reinterpret_cast<__half*>(p), __float2half_rn(v));
  }
}

// Two adjacent elements p[0], p[1]; p is 2-element aligned (4 bytes for f16/bf16).
template <typename T>
__device__ __forceinline__ void atomic_add2(T* p, float v0, float v1) {
  if constexpr (std::is_same_v<T, float>) {
    atomicAdd(p, v0);
    atomicAdd(p + 1, v1);
  } else if constexpr (std::is_same_v<T, BFloat16>) {
    atomicAdd(reinterpret_cast<__nv_bfloat162*>(p), __floats2bfloat162_rn(v0, v1));
  } else {
    atomicAdd(reinterpret_cast<__half2*>(p), __floats2half2_rn(v0, v1));
  }
}

// Final value of one element for a store: bias, then activation, in f32.
template <typename T>
__device__ __forceinline__ float finish(float v, const EpiArgs& e, int64_t col) {
  if (e.bias) v += pit::cuda::widen(static_cast<const T*>(e.bias)[col]);
  if (e.act != Act::none) v = activate(e.act, v);
  return v;
}

// Writes v at row[col] (col < ncols checked by the caller).
template <typename T>
__device__ __forceinline__ void swrite_one(T* row, int64_t col, float v, const EpiArgs& e) {
  using pit::cuda::narrow;
  using pit::cuda::widen;
  switch (e.mode) {
    case WriteMode::store: row[col] = narrow<T>(finish<T>(v, e, col)); break;
    case WriteMode::accumulate: row[col] = narrow<T>(widen(row[col]) + v); break;
    case WriteMode::atomic: atomic_add1(row + col, v); break;
  }
}

// Writes columns col and col + 1 of a row (col + 1 only when < ncols).
template <typename T>
__device__ __forceinline__ void swrite_pair(T* row, int64_t col, int64_t ncols, float v0, float v1,
                                            const EpiArgs& e) {
  using pit::cuda::narrow;
  using pit::cuda::widen;
  if (col >= ncols) return;
  T* p = row + col;
  const bool pair = col + 1 < ncols && (reinterpret_cast<uintptr_t>(p) % (2 * sizeof(T))) == 0;
  if (!pair) {
    swrite_one(row, col, v0, e);
    if (col + 1 < ncols) swrite_one(row, col + 1, v1, e);
    return;
  }
  if (e.mode == WriteMode::atomic) {
    atomic_add2(p, v0, v1);
    return;
  }
  if (e.mode == WriteMode::store) {
    v0 = finish<T>(v0, e, col);
    v1 = finish<T>(v1, e, col + 1);
  } else {
    v0 += widen(p[0]);
    v1 += widen(p[1]);
  }
  if constexpr (std::is_same_v<T, float>) {
    *reinterpret_cast<float2*>(p) = make_float2(v0, v1);
  } else {
    const uint32_t bits = static_cast<uint32_t>(narrow<T>(v0).bits) |
                          (static_cast<uint32_t>(narrow<T>(v1).bits) << 16);
    *reinterpret_cast<uint32_t*>(p) = bits;
  }
}

}  // namespace pit::sparse::cuda::dev
