// Constant fills, arange and Philox random draws on the GPU.
#include <cuda_runtime.h>

#include "core/convert.h"
#include "core/cuda/backend.h"
#include "core/cuda/launch.cuh"
#include "core/cuda/runtime.h"
#include "core/random.h"

namespace pit::cuda {
namespace {

template <typename T>
__global__ void fill_kernel(T* __restrict__ out, int64_t n, T value) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    out[i] = value;
}

template <typename T>
__global__ void arange_kernel(T* __restrict__ out, int64_t n, double start, double step) {
  // Same formula as the CPU, rounded the same way: nvcc would fuse a plain a * b + c into an fma.
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    out[i] = convert<T>(__dadd_rn(start, __dmul_rn(static_cast<double>(i), step)));
}

template <typename T, Distribution kDist>
__global__ void random_kernel(T* __restrict__ out, int64_t n, uint64_t seed, uint64_t offset) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const uint64_t k = static_cast<uint64_t>(i);
    const float v = kDist == Distribution::uniform ? philox_uniform_as<T>(seed, offset, k)
                                                   : philox_normal(seed, offset, k);
    out[i] = convert<T>(v);
  }
}

}  // namespace

void fill(void* data, int64_t n, DType dtype, double value, StreamRef stream) {
  if (n == 0) return;
  DeviceGuard guard(stream.device.index);
  dispatch(dtype, "fill", [&]<typename T>() {
    const T v = convert<T>(value);
    fill_kernel<T><<<grid_for(n, kThreads), kThreads, 0, native(stream)>>>(static_cast<T*>(data), n, v);
  });
  PIT_CUDA_CHECK(cudaGetLastError());
}

void arange(void* data, int64_t n, DType dtype, double start, double step, StreamRef stream) {
  if (n == 0) return;
  DeviceGuard guard(stream.device.index);
  dispatch(dtype, "arange", [&]<typename T>() {
    arange_kernel<T><<<grid_for(n, kThreads), kThreads, 0, native(stream)>>>(
        static_cast<T*>(data), n, start, step);
  });
  PIT_CUDA_CHECK(cudaGetLastError());
}

void random(void* data, int64_t n, DType dtype, Distribution dist, uint64_t seed,
            uint64_t offset, StreamRef stream) {
  if (n == 0) return;
  DeviceGuard guard(stream.device.index);
  dispatch_floating(dtype, dist == Distribution::uniform ? "rand" : "randn", [&]<typename T>() {
    T* out = static_cast<T*>(data);
    const unsigned blocks = grid_for(n, kThreads);
    if (dist == Distribution::uniform)
      random_kernel<T, Distribution::uniform><<<blocks, kThreads, 0, native(stream)>>>(out, n, seed, offset);
    else
      random_kernel<T, Distribution::normal><<<blocks, kThreads, 0, native(stream)>>>(out, n, seed, offset);
  });
  PIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace pit::cuda
