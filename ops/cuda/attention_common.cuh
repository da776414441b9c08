#pragma once
// Constants, warp reductions and the backward preprocessing (delta) kernel of causal attention.
// Internal to ops/cuda/attention.cu (included by it alone); see that file for the design.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/device_utils.cuh"

namespace pit::cuda::attention_impl {
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Widening loads: widen() of ops/cuda/device_utils.cuh.

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
    for (int d = lane; d < dh; d += kWarp) s = fmaf(widen(a[d]), widen(b[d]), s);
    s = warp_sum(s);
    if (lane == 0) delta[r] = s;
  }
}

}  // namespace pit::cuda::attention_impl
