// CUDA dropout and its backward. One thread per group of four consecutive elements: a single
// Philox call (block offset + group) gives their four uniforms, lane j for element 4 * group + j,
// which is philox_uniform(seed, offset, i) (core/random.h), the rule the CPU kernel uses too, so
// the masks agree bit for bit. The scaling is one f32 (f64) multiply rounded once, as on the
// CPU, so the outputs agree bit for bit as well. A group is loaded and stored as one vector
// access (four elements, four mask bytes) when the tensors' starts allow it; the last partial
// group, and every group of misaligned tensors, element by element.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "core/convert.h"
#include "core/cuda/launch.cuh"
#include "core/cuda/runtime.h"
#include "core/random.h"
#include "ops/cuda/device_utils.cuh"
#include "ops/cuda/dropout.h"

namespace pit::cuda {
namespace {

template <typename T>
struct alignas(4 * sizeof(T)) Quad {
  T v[4];
};

struct alignas(4) MaskQuad {
  uint8_t v[4];
};

bool aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

template <typename T>
__global__ void dropout_kernel(const T* __restrict__ x, T* __restrict__ y, uint8_t* __restrict__ mask,
                               int64_t n, float p, compute_t<T> scale, uint64_t seed,
                               uint64_t offset, bool vec) {
  using C = compute_t<T>;
  const int64_t groups = (n + 3) / 4;
  for (int64_t g = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; g < groups;
       g += int64_t{gridDim.x} * blockDim.x) {
    const Philox4x32 r = philox4x32_10(offset + static_cast<uint64_t>(g), 0, seed);
    const int64_t i0 = g * 4;
    if (vec && i0 + 4 <= n) {
      const Quad<T> in = reinterpret_cast<const Quad<T>*>(x)[g];
      Quad<T> out;
      MaskQuad m;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const bool keep = uniform_from_bits(r.v[j]) >= p;
        m.v[j] = keep ? 1 : 0;
        out.v[j] = keep ? convert<T>(static_cast<C>(widen(in.v[j])) * scale) : convert<T>(C(0));
      }
      reinterpret_cast<Quad<T>*>(y)[g] = out;
      reinterpret_cast<MaskQuad*>(mask)[g] = m;
    } else {
      for (int j = 0; j < 4 && i0 + j < n; ++j) {
        const bool keep = uniform_from_bits(r.v[j]) >= p;
        mask[i0 + j] = keep ? 1 : 0;
        y[i0 + j] = keep ? convert<T>(static_cast<C>(widen(x[i0 + j])) * scale) : convert<T>(C(0));
      }
    }
  }
}

template <typename T>
__global__ void dropout_backward_kernel(const T* __restrict__ dy, const uint8_t* __restrict__ mask,
                                        T* __restrict__ dx, int64_t n, compute_t<T> scale, bool vec) {
  using C = compute_t<T>;
  const int64_t groups = (n + 3) / 4;
  for (int64_t g = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; g < groups;
       g += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i0 = g * 4;
    if (vec && i0 + 4 <= n) {
      const Quad<T> in = reinterpret_cast<const Quad<T>*>(dy)[g];
      const MaskQuad m = reinterpret_cast<const MaskQuad*>(mask)[g];
      Quad<T> out;
#pragma unroll
      for (int j = 0; j < 4; ++j)
        out.v[j] = m.v[j] ? convert<T>(static_cast<C>(widen(in.v[j])) * scale) : convert<T>(C(0));
      reinterpret_cast<Quad<T>*>(dx)[g] = out;
    } else {
      for (int j = 0; j < 4 && i0 + j < n; ++j)
        dx[i0 + j] = mask[i0 + j] ? convert<T>(static_cast<C>(widen(dy[i0 + j])) * scale)
                                  : convert<T>(C(0));
    }
  }
}

}  // namespace

void dropout(const cpu::DropoutArgs& a, const void* x, void* y, uint8_t* mask, uint64_t seed,
             uint64_t offset, StreamRef stream) {
  if (a.n == 0) return;
  DeviceGuard guard(stream.device.index);
  const cudaStream_t s = native(stream);
  dispatch_floating(a.dtype, "dropout", [&]<typename T>() {
    using C = compute_t<T>;
    const bool vec = aligned(x, sizeof(Quad<T>)) && aligned(y, sizeof(Quad<T>)) && aligned(mask, 4);
    dropout_kernel<T><<<grid_for((a.n + 3) / 4, kThreads), kThreads, 0, s>>>(
        static_cast<const T*>(x), static_cast<T*>(y), mask, a.n, a.p, static_cast<C>(a.scale),
        seed, offset, vec);
    PIT_CUDA_CHECK(cudaGetLastError());
  });
}

void dropout_backward(const cpu::DropoutArgs& a, const void* dy, const uint8_t* mask, void* dx,
                      StreamRef stream) {
  if (a.n == 0) return;
  DeviceGuard guard(stream.device.index);
  const cudaStream_t s = native(stream);
  dispatch_floating(a.dtype, "dropout_backward", [&]<typename T>() {
    using C = compute_t<T>;
    const bool vec = aligned(dy, sizeof(Quad<T>)) && aligned(dx, sizeof(Quad<T>)) && aligned(mask, 4);
    dropout_backward_kernel<T><<<grid_for((a.n + 3) / 4, kThreads), kThreads, 0, s>>>(
        static_cast<const T*>(dy), mask, static_cast<T*>(dx), a.n, static_cast<C>(a.scale), vec);
    PIT_CUDA_CHECK(cudaGetLastError());
  });
}

}  // namespace pit::cuda
