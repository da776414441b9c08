#pragma once
// Shared pieces of the CUDA detection kernels: the non-zero test per element type and the
// launch helpers (scratch for the chained scan).
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "core/cuda/runtime.h"
#include "core/half.h"
#include "core/tensor.h"
#include "ops/cuda/device_utils.cuh"

namespace pit::sparse::cuda {

using pit::cuda::native;

// Non-zero: compares unequal to 0 (NaN is non-zero, -0 is zero), like the CPU's convert != 0.
__device__ __forceinline__ bool nz(Half v) { return (v.bits & 0x7fffu) != 0; }
__device__ __forceinline__ bool nz(BFloat16 v) { return (v.bits & 0x7fffu) != 0; }
template <typename T>
__device__ __forceinline__ bool nz(T v) {
  if constexpr (std::is_floating_point_v<T>) return !(v == T(0));
  else return v != T(0);
}

// Threads per block of the detection kernels: 8 warps, so a block-wide scan is 2 shuffle rounds.
inline constexpr int kDetectThreads = 256;

// Zeroed scratch for a chained scan over `tiles` tiles: word 0 is the ticket counter.
inline Tensor chain_state(int64_t tiles, Device device, StreamRef stream) {
  Tensor s = Tensor::empty({tiles + 1}, DType::i64, device);
  PIT_CUDA_CHECK(cudaMemsetAsync(s.data_ptr(), 0, s.nbytes(), native(stream)));
  return s;
}

inline unsigned long long* state_ptr(const Tensor& s) {
  return reinterpret_cast<unsigned long long*>(s.data_ptr());
}

inline void fill_bytes(const Tensor& t, int value, StreamRef stream) {
  if (t.numel() > 0) PIT_CUDA_CHECK(cudaMemsetAsync(t.data_ptr(), value, t.nbytes(), native(stream)));
}

}  // namespace pit::sparse::cuda
