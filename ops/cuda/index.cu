// Gather and scatter-add along one dim on the GPU.
#include <cuda_runtime.h>

#include <type_traits>

#include "core/convert.h"
#include "core/cuda/launch.cuh"
#include "core/cuda/runtime.h"
#include "ops/cuda/index.h"

namespace pit::cuda {
namespace {

struct IndexGeometry {
  int64_t outer, n, m, inner;
  int64_t s0, s1, s2;  // index strides for (outer, m, inner)
};

// Out-of-range indices are clamped on the device (a kernel cannot throw); the host-side
// validation in ops/index_ops.cpp is the user-facing check where it is affordable.
__device__ __forceinline__ int64_t wrap(int64_t v, int64_t n) {
  v = v < 0 ? v + n : v;
  return v < 0 ? 0 : (v >= n ? n - 1 : v);
}

template <typename T>
__global__ void gather_kernel(const T* __restrict__ x, const int64_t* __restrict__ idx,
                              T* __restrict__ out, IndexGeometry g) {
  const int64_t total = g.outer * g.m * g.inner;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total;
       e += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = e % g.inner, r = e / g.inner, j = r % g.m, o = r / g.m;
    const int64_t k = wrap(idx[o * g.s0 + j * g.s1 + i * g.s2], g.n);
    out[e] = x[(o * g.n + k) * g.inner + i];
  }
}

template <typename T, typename Acc>
__global__ void scatter_add_kernel(Acc* __restrict__ out, const int64_t* __restrict__ idx,
                                   const T* __restrict__ src, IndexGeometry g) {
  const int64_t total = g.outer * g.m * g.inner;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total;
       e += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = e % g.inner, r = e / g.inner, j = r % g.m, o = r / g.m;
    const int64_t k = wrap(idx[o * g.s0 + j * g.s1 + i * g.s2], g.n);
    atomicAdd(&out[(o * g.n + k) * g.inner + i], convert<Acc>(src[e]));
  }
}

IndexGeometry geometry(const int64_t is[3], int64_t outer, int64_t n, int64_t m, int64_t inner) {
  return {outer, n, m, inner, is[0], is[1], is[2]};
}

}  // namespace

void gather(const Tensor& x, const Tensor& index, const int64_t is[3], Tensor& out, int64_t outer,
            int64_t n, int64_t m, int64_t inner, StreamRef stream) {
  const int64_t total = outer * m * inner;
  if (total == 0) return;
  DeviceGuard guard(stream.device.index);
  const IndexGeometry g = geometry(is, outer, n, m, inner);
  dispatch(x.dtype(), "gather", [&]<typename T>() {
    gather_kernel<T><<<grid_for(total, kThreads), kThreads, 0, native(stream)>>>(
        x.data<T>(), index.data<int64_t>(), out.data<T>(), g);
  });
  PIT_CUDA_CHECK(cudaGetLastError());
}

void scatter_add(Tensor& out, const Tensor& index, const int64_t is[3], const Tensor& src,
                 int64_t outer, int64_t n, int64_t m, int64_t inner, StreamRef stream) {
  const int64_t total = outer * m * inner;
  if (total == 0) return;
  DeviceGuard guard(stream.device.index);
  const IndexGeometry g = geometry(is, outer, n, m, inner);
  const unsigned blocks = grid_for(total, kThreads);
  dispatch_floating(out.dtype(), "scatter_add", [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      scatter_add_kernel<T, T><<<blocks, kThreads, 0, native(stream)>>>(
          out.data<T>(), index.data<int64_t>(), src.data<T>(), g);
    } else {
      // Half-precision outputs: accumulate in f32, then round once into out.
      Tensor acc = out.to(DType::f32);
      scatter_add_kernel<T, float><<<blocks, kThreads, 0, native(stream)>>>(
          acc.data<float>(), index.data<int64_t>(), src.data<T>(), g);
      PIT_CUDA_CHECK(cudaGetLastError());
      out.copy_(acc);
    }
  });
  PIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace pit::cuda
