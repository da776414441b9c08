// Strided element copy with dtype conversion on the GPU.
#include <cuda_runtime.h>

#include <type_traits>

#include "core/convert.h"
#include "core/cuda/backend.h"
#include "core/cuda/launch.cuh"
#include "core/cuda/runtime.h"

namespace pit::cuda {
namespace {

// Element i of a row-major walk over `sizes`, as an offset with `strides`.
__device__ __forceinline__ int64_t strided_offset(int64_t i, int ndim, const int64_t* sizes,
                                                  const int64_t* strides) {
  int64_t off = 0;
  for (int d = ndim - 1; d >= 0; --d) {
    const int64_t s = sizes[d];
    off += (i % s) * strides[d];
    i /= s;
  }
  return off;
}

// dst = src or dst += alpha * src, element by element (core/convert.h: store_converted).
template <bool Accumulate, typename D, typename S>
__global__ void copy_dense_kernel(D* __restrict__ dst, const S* __restrict__ src, int64_t n,
                                  double alpha) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    store_converted<Accumulate>(dst[i], src[i], alpha);
}

template <bool Accumulate, typename D, typename S>
__global__ void copy_strided_kernel(StridedDesc dst, StridedDesc src, int64_t n, double alpha) {
  D* out = static_cast<D*>(dst.data);
  const S* in = static_cast<const S*>(src.data);
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    store_converted<Accumulate>(out[strided_offset(i, dst.ndim, dst.sizes, dst.strides)],
                      in[strided_offset(i, src.ndim, src.sizes, src.strides)], alpha);
}

template <bool Accumulate>
void launch_copy(StridedDesc dst, StridedDesc src, double alpha, StreamRef stream) {
  coalesce_pair(dst, src);
  int64_t n = 1;
  for (int d = 0; d < dst.ndim; ++d) n *= dst.sizes[d];
  if (n == 0) return;
  const bool dense = is_dense_row_major(dst) && is_dense_row_major(src);
  if (!Accumulate && dense && dst.dtype == src.dtype) {
    memcpy_d2d(dst.data, stream.device.index, src.data, stream.device.index,
               static_cast<size_t>(n) * dtype_size(dst.dtype), stream);
    return;
  }
  DeviceGuard guard(stream.device.index);
  const unsigned blocks = grid_for(n, kThreads);
  const auto launch = [&]<typename D>() {
    dispatch(src.dtype, "copy", [&]<typename S>() {
      if (dense)
        copy_dense_kernel<Accumulate, D, S><<<blocks, kThreads, 0, native(stream)>>>(
            static_cast<D*>(dst.data), static_cast<const S*>(src.data), n, alpha);
      else
        copy_strided_kernel<Accumulate, D, S><<<blocks, kThreads, 0, native(stream)>>>(dst, src, n, alpha);
    });
  };
  if constexpr (Accumulate)
    dispatch_floating(dst.dtype, "add_", launch);
  else
    dispatch(dst.dtype, "copy", launch);
  PIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void copy_strided(const StridedDesc& dst, const StridedDesc& src, StreamRef stream) {
  launch_copy<false>(dst, src, 0.0, stream);
}

void add_strided(const StridedDesc& dst, const StridedDesc& src, double alpha, StreamRef stream) {
  launch_copy<true>(dst, src, alpha, stream);
}

}  // namespace pit::cuda
