#pragma once
// Device primitives shared by the ops/cuda kernels: compute types, widening loads and rounding
// stores for f16/bf16, 16-byte packs, warp reductions.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "core/half.h"

namespace pit::cuda {

inline constexpr unsigned kFullMask = 0xffffffffu;
inline constexpr int kWarp = 32;

__host__ __device__ __forceinline__ int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Whether p may be accessed 16 bytes at a time.
__host__ __device__ __forceinline__ bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// f16/bf16/f32 compute in f32, f64 in f64.
template <typename T>
using compute_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

__device__ __forceinline__ float widen(Half v) { return __half2float(__ushort_as_half(v.bits)); }
__device__ __forceinline__ float widen(BFloat16 v) {
  return __uint_as_float(static_cast<uint32_t>(v.bits) << 16);
}
__device__ __forceinline__ float widen(float v) { return v; }
__device__ __forceinline__ double widen(double v) { return v; }

// Rounding stores: one conversion instruction each (round to nearest even, like convert<T>;
// only NaN payloads may differ).
template <typename T>
__device__ __forceinline__ T narrow(compute_t<T> v) {
  if constexpr (std::is_same_v<T, Half>)
    return Half::from_bits(__half_as_ushort(__float2half_rn(v)));
  else if constexpr (std::is_same_v<T, BFloat16>)
    return BFloat16::from_bits(__bfloat16_as_ushort(__float2bfloat16_rn(v)));
  else
    return v;
}

// exp and log in the compute type.
__device__ __forceinline__ float ex(float v) { return expf(v); }
__device__ __forceinline__ double ex(double v) { return exp(v); }
__device__ __forceinline__ float ln(float v) { return logf(v); }
__device__ __forceinline__ double ln(double v) { return log(v); }

// 16 bytes of T: the unit of vector loads and stores.
template <typename T>
struct alignas(16) Pack {
  static constexpr int kN = 16 / sizeof(T);
  T v[kN];
};

// Sum over the warp; every lane gets the result.
template <typename C>
__device__ __forceinline__ C warp_sum(C a) {
#pragma unroll
  for (int off = kWarp / 2; off > 0; off /= 2) a += __shfl_down_sync(kFullMask, a, off);
  return __shfl_sync(kFullMask, a, 0);
}

// Sum over the block (blockDim.x a multiple of 32, every thread calls it); every thread gets the
// result, merged in a fixed order. The leading barrier lets a loop call it again.
template <typename C>
__device__ __forceinline__ C block_sum(C a) {
  __shared__ C part[kWarp];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  a = warp_sum(a);
  __syncthreads();
  if (lane == 0) part[warp] = a;
  __syncthreads();
  a = lane < static_cast<int>(blockDim.x / kWarp) ? part[lane] : C(0);
  return warp_sum(a);
}

// Rows of this thread's warp (kBlock false) or block (kBlock true); the loop bounds are the same
// for every thread of the warp / block, so all of them reach every shuffle and barrier.
template <bool kBlock>
struct RowWalk {
  __device__ static int64_t first() {
    return kBlock ? int64_t{blockIdx.x}
                  : blockIdx.x * int64_t{blockDim.x / kWarp} + threadIdx.x / kWarp;
  }
  __device__ static int64_t step() {
    return kBlock ? int64_t{gridDim.x} : int64_t{gridDim.x} * (blockDim.x / kWarp);
  }
  __device__ static int t() { return kBlock ? static_cast<int>(threadIdx.x) : static_cast<int>(threadIdx.x % kWarp); }
  __device__ static int nt() { return kBlock ? static_cast<int>(blockDim.x) : kWarp; }
};

}  // namespace pit::cuda
