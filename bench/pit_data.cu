// GPU-side operand generation for the PIT benchmark (bench/pit_data.h).
#include <cuda_runtime.h>

#include <algorithm>

#include "bench/pit_data.h"
#include "core/cuda/runtime.h"
#include "core/error.h"
#include "ops/cuda/device_utils.cuh"

namespace pit::bench {
namespace {

__device__ __forceinline__ uint32_t mix(uint64_t x) {  // splitmix64 finaliser, top 32 bits
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return static_cast<uint32_t>((x ^ (x >> 31)) >> 32);
}

template <typename T>
__global__ void fill_kernel(T* a, int64_t rows, int64_t cols, int64_t tr, int64_t tc, uint32_t keep_below,
                            uint64_t seed) {
  const int64_t nbc = (cols + tc - 1) / tc, n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    const bool keep = mix(seed * 0x100000001b3ull + (r / tr) * nbc + c / tc) < keep_below ||
                      keep_below == 0xffffffffu;
    float v = 0.f;
    if (keep) {
      v = mix(~seed + static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull) * (2.f / 4294967296.f) - 1.f;
      if (v == 0.f) v = 0.5f;
    }
    a[i] = pit::cuda::narrow<T>(v);
  }
}

template <typename T>
__global__ void ell_kernel(const int32_t* offsets, const int32_t* col, const T* vals, int64_t b, int64_t slots,
                           int64_t block_rows, int32_t* col_ind, T* ell) {
  // One thread per element of ell [block_rows * b, slots * b].
  const int64_t width = slots * b, n = block_rows * b * width;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t row = i / width, x = i % width, br = row / b, y = row % b, s = x / b, xx = x % b;
    const int64_t first = offsets[br], count = offsets[br + 1] - first;
    const bool ok = s < count;
    ell[i] = ok ? vals[((first + s) * b + y) * b + xx] : pit::cuda::narrow<T>(0.f);
    if (y == 0 && xx == 0) col_ind[br * slots + s] = ok ? col[first + s] : -1;
  }
}

}  // namespace

void fill_sparse(Tensor& a, int64_t tr, int64_t tc, double density, uint64_t seed) {
  const int64_t rows = a.size(0), cols = a.size(1);
  const uint32_t keep_below =
      density >= 1.0 ? 0xffffffffu : static_cast<uint32_t>(std::max(0.0, density) * 4294967296.0);
  dispatch<DType::f32, DType::f16, DType::bf16>(a.dtype(), "fill_sparse", [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      fill_kernel<T><<<132 * 16, 256>>>(a.data<T>(), rows, cols, tr, tc, keep_below, seed);
    }
  });
  PIT_CUDA_CHECK(cudaGetLastError());
}

void blocked_ell(const sparse::BlockListIndex& idx, int64_t slots, Tensor& col_ind, Tensor& values) {
  const int64_t b = idx.block, block_rows = idx.rows / b;
  PIT_CHECK(idx.rows % b == 0 && idx.cols % b == 0, "blocked_ell: rows and cols must be multiples of the block");
  col_ind = Tensor::empty({block_rows, slots}, DType::i32, idx.values.device());
  values = Tensor::empty({idx.rows, slots * b}, idx.values.dtype(), idx.values.device());
  dispatch<DType::f32, DType::f16, DType::bf16>(idx.values.dtype(), "blocked_ell", [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      ell_kernel<T><<<132 * 16, 256>>>(idx.offsets.data<int32_t>(), idx.col.data<int32_t>(), idx.values.data<T>(),
                                       b, slots, block_rows, col_ind.data<int32_t>(), values.data<T>());
    }
  });
  PIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace pit::bench
