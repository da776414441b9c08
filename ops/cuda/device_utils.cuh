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

// All kN elements of a 16-byte pack, widened: f16 / bf16 two at a time from 32-bit words (bf16:
// a shift and a mask per pair), the same values as widen() element by element.
template <typename T, int kN>
__device__ __forceinline__ void widen_pack(const T (&v)[kN], compute_t<T> (&out)[kN]) {
  if constexpr (std::is_same_v<T, BFloat16> || std::is_same_v<T, Half>) {
    static_assert(kN % 2 == 0, "widen_pack: an even number of 16-bit elements");
    const uint32_t* u = reinterpret_cast<const uint32_t*>(v);
#pragma unroll
    for (int i = 0; i < kN / 2; ++i) {
      if constexpr (std::is_same_v<T, BFloat16>) {
        out[2 * i] = __uint_as_float(u[i] << 16);
        out[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
      } else {
        const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&u[i]));
        out[2 * i] = f.x;
        out[2 * i + 1] = f.y;
      }
    }
  } else {
#pragma unroll
    for (int e = 0; e < kN; ++e) out[e] = widen(v[e]);
  }
}

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

// kN values rounded to T (narrow's rounding), f16 / bf16 two per conversion instruction.
template <typename T, int kN>
__device__ __forceinline__ void narrow_pack(const compute_t<T> (&in)[kN], T (&out)[kN]) {
  if constexpr (std::is_same_v<T, BFloat16> || std::is_same_v<T, Half>) {
    static_assert(kN % 2 == 0, "narrow_pack: an even number of 16-bit elements");
    uint32_t* u = reinterpret_cast<uint32_t*>(out);
#pragma unroll
    for (int i = 0; i < kN / 2; ++i) {
      if constexpr (std::is_same_v<T, BFloat16>) {
        const __nv_bfloat162 h = __floats2bfloat162_rn(in[2 * i], in[2 * i + 1]);
        u[i] = *reinterpret_cast<const uint32_t*>(&h);
      } else {
        const __half2 h = __floats2half2_rn(in[2 * i], in[2 * i + 1]);
        u[i] = *reinterpret_cast<const uint32_t*>(&h);
      }
    }
  } else {
#pragma unroll
    for (int e = 0; e < kN; ++e) out[e] = narrow<T>(in[e]);
  }
}

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
  for (int off = kWarp / 2; off > 0; off /= 2) a += __shfl_xor_sync(kFullMask, a, off);
  return a;
}

// warp_sum of each of kN values, the kN shuffle chains interleaved (so they take about the latency
// of one); each sum is the same as warp_sum's.
template <typename C, int kN>
__device__ __forceinline__ void warp_sums(C (&a)[kN]) {
#pragma unroll
  for (int off = kWarp / 2; off > 0; off /= 2)
#pragma unroll
    for (int i = 0; i < kN; ++i) a[i] += __shfl_xor_sync(kFullMask, a[i], off);
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
