// CUDA pooling kernels and the per-channel bias add of conv2d; contract in ops/cuda/conv.h.
//
// One thread per output element (forward), per input element (avg backward: a gather over the
// windows covering it, so no atomics), or per dy element (max backward: a scatter through the
// saved indices with atomicAdd). Grid-stride loops over int64 indices; f32 math (f64 for f64).
// Window scans follow the CPU kernels (ops/cpu/conv.cpp) element for element, so forward results
// and max indices match the CPU exactly (avg up to the f32 rounding of the sum).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "core/convert.h"
#include "core/cuda/runtime.h"
#include "ops/cuda/conv.h"

namespace pit::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 20;  // grid-stride beyond this

template <typename T>
using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

int blocks_for(int64_t n) {
  return static_cast<int>(std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, kMaxBlocks));
}

__device__ __forceinline__ int64_t global_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

__device__ __forceinline__ int64_t ceil_div_signed(int64_t a, int64_t b) {  // b > 0
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}
__device__ __forceinline__ int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

template <typename T>
__global__ void add_bias_kernel(T* y, const T* bias, int64_t total, int64_t c, int64_t hw) {
  using A = acc_t<T>;
  for (int64_t i = global_index(); i < total; i += grid_stride()) {
    const int64_t ch = (i / hw) % c;
    y[i] = convert<T>(convert<A>(y[i]) + convert<A>(bias[ch]));
  }
}

template <typename T>
__global__ void max_pool_kernel(const T* x, T* y, int64_t* indices, cpu::PoolGeometry g,
                                int64_t total) {
  using A = acc_t<T>;
  const int64_t out_plane = g.h_out * g.w_out, in_plane = g.h * g.w;
  for (int64_t o = global_index(); o < total; o += grid_stride()) {
    const int64_t p = o / out_plane, r = o % out_plane;
    const int64_t oh = r / g.w_out, ow = r % g.w_out;
    const T* xp = x + p * in_plane;
    A best = A(0);
    int64_t arg = -1;
    for (int64_t i = 0; i < g.kernel_h; ++i) {
      const int64_t ih = oh * g.stride_h - g.pad_h + i;
      if (ih < 0 || ih >= g.h) continue;
      for (int64_t j = 0; j < g.kernel_w; ++j) {
        const int64_t iw = ow * g.stride_w - g.pad_w + j;
        if (iw < 0 || iw >= g.w) continue;
        const A v = convert<A>(xp[ih * g.w + iw]);
        // First maximum in row-major window order; NaN wins over numbers (the first NaN).
        if (arg < 0 || v > best || (v != v && best == best)) {
          best = v;
          arg = ih * g.w + iw;
        }
      }
    }
    y[o] = convert<T>(best);
    indices[o] = arg;
  }
}

template <typename T>
__global__ void avg_pool_kernel(const T* x, T* y, cpu::PoolGeometry g, int64_t total) {
  using A = acc_t<T>;
  const int64_t out_plane = g.h_out * g.w_out, in_plane = g.h * g.w;
  const A scale = A(1) / static_cast<A>(g.kernel_h * g.kernel_w);
  for (int64_t o = global_index(); o < total; o += grid_stride()) {
    const int64_t p = o / out_plane, r = o % out_plane;
    const int64_t oh = r / g.w_out, ow = r % g.w_out;
    const T* xp = x + p * in_plane;
    A sum = A(0);
    for (int64_t i = 0; i < g.kernel_h; ++i) {
      const int64_t ih = oh * g.stride_h - g.pad_h + i;
      if (ih < 0 || ih >= g.h) continue;
      for (int64_t j = 0; j < g.kernel_w; ++j) {
        const int64_t iw = ow * g.stride_w - g.pad_w + j;
        if (iw >= 0 && iw < g.w) sum += convert<A>(xp[ih * g.w + iw]);
      }
    }
    y[o] = convert<T>(sum * scale);
  }
}

template <typename T>
__global__ void avg_pool_backward_kernel(const T* dy, T* dx, cpu::PoolGeometry g, int64_t total) {
  using A = acc_t<T>;
  const int64_t out_plane = g.h_out * g.w_out, in_plane = g.h * g.w;
  const A scale = A(1) / static_cast<A>(g.kernel_h * g.kernel_w);
  for (int64_t e = global_index(); e < total; e += grid_stride()) {
    const int64_t p = e / in_plane, r = e % in_plane;
    const int64_t ih = r / g.w, iw = r % g.w;
    // Windows with o * stride - pad <= i <= o * stride - pad + kernel - 1.
    const int64_t oh_lo = max64(0, ceil_div_signed(ih + g.pad_h - g.kernel_h + 1, g.stride_h));
    const int64_t oh_hi = min64(g.h_out - 1, (ih + g.pad_h) / g.stride_h);
    const int64_t ow_lo = max64(0, ceil_div_signed(iw + g.pad_w - g.kernel_w + 1, g.stride_w));
    const int64_t ow_hi = min64(g.w_out - 1, (iw + g.pad_w) / g.stride_w);
    const T* dyp = dy + p * out_plane;
    A sum = A(0);
    for (int64_t oh = oh_lo; oh <= oh_hi; ++oh)
      for (int64_t ow = ow_lo; ow <= ow_hi; ++ow) sum += convert<A>(dyp[oh * g.w_out + ow]);
    dx[e] = convert<T>(sum * scale);
  }
}

// target (planes, in_plane) += dy at the indices; A is float or double (native atomicAdd).
template <typename T, typename A>
__global__ void max_pool_scatter_kernel(const T* dy, const int64_t* indices, A* target,
                                        int64_t in_plane, int64_t out_plane, int64_t total) {
  for (int64_t o = global_index(); o < total; o += grid_stride()) {
    const int64_t idx = indices[o];
    if (idx < 0 || idx >= in_plane) continue;
    atomicAdd(target + (o / out_plane) * in_plane + idx, convert<A>(dy[o]));
  }
}

template <typename T>
__global__ void round_kernel(const float* src, T* dst, int64_t total) {
  for (int64_t i = global_index(); i < total; i += grid_stride()) dst[i] = convert<T>(src[i]);
}

template <typename T>
constexpr bool kPoolType = std::is_same_v<T, float> || std::is_same_v<T, double> ||
                           std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

void check_launch() { PIT_CUDA_CHECK(cudaGetLastError()); }

}  // namespace

void add_channel_bias(int64_t n, int64_t c, int64_t hw, DType dtype, void* y, const void* bias,
                      StreamRef stream) {
  const int64_t total = n * c * hw;
  if (total == 0) return;
  DeviceGuard guard(stream.device.index);
  dispatch_floating(dtype, "conv2d bias (CUDA)", [&]<typename T>() {
    if constexpr (kPoolType<T>) {
      add_bias_kernel<T><<<blocks_for(total), kThreads, 0, native(stream)>>>(
          static_cast<T*>(y), static_cast<const T*>(bias), total, c, hw);
      check_launch();
    }
  });
}

void max_pool2d(const cpu::PoolGeometry& g, DType dtype, const void* x, void* y, int64_t* indices,
                StreamRef stream) {
  const int64_t total = g.planes * g.h_out * g.w_out;
  if (total == 0) return;
  DeviceGuard guard(stream.device.index);
  dispatch_floating(dtype, "max_pool2d (CUDA)", [&]<typename T>() {
    if constexpr (kPoolType<T>) {
      max_pool_kernel<T><<<blocks_for(total), kThreads, 0, native(stream)>>>(
          static_cast<const T*>(x), static_cast<T*>(y), indices, g, total);
      check_launch();
    }
  });
}

void max_pool2d_backward(int64_t planes, int64_t in_plane, int64_t out_plane, DType dtype,
                         const void* dy, const int64_t* indices, void* dx, float* scratch,
                         StreamRef stream) {
  const int64_t in_total = planes * in_plane, out_total = planes * out_plane;
  if (in_total == 0) return;
  DeviceGuard guard(stream.device.index);
  const cudaStream_t s = native(stream);
  dispatch_floating(dtype, "max_pool2d_backward (CUDA)", [&]<typename T>() {
    if constexpr (kPoolType<T>) {
      using A = acc_t<T>;
      A* target = nullptr;
      if constexpr (std::is_same_v<T, A>) {
        target = static_cast<A*>(dx);
      } else {
        PIT_CHECK(scratch != nullptr, "max_pool2d_backward (CUDA): ", dtype_name(dtype),
                  " needs an f32 scratch buffer");
        target = scratch;
      }
      PIT_CUDA_CHECK(cudaMemsetAsync(target, 0, static_cast<size_t>(in_total) * sizeof(A), s));
      if (out_total > 0) {
        max_pool_scatter_kernel<T, A><<<blocks_for(out_total), kThreads, 0, s>>>(
            static_cast<const T*>(dy), indices, target, in_plane, out_plane, out_total);
        check_launch();
      }
      if constexpr (!std::is_same_v<T, A>) {
        round_kernel<T><<<blocks_for(in_total), kThreads, 0, s>>>(scratch, static_cast<T*>(dx),
                                                                  in_total);
        check_launch();
      }
    }
  });
}

void avg_pool2d(const cpu::PoolGeometry& g, DType dtype, const void* x, void* y, StreamRef stream) {
  const int64_t total = g.planes * g.h_out * g.w_out;
  if (total == 0) return;
  DeviceGuard guard(stream.device.index);
  dispatch_floating(dtype, "avg_pool2d (CUDA)", [&]<typename T>() {
    if constexpr (kPoolType<T>) {
      avg_pool_kernel<T><<<blocks_for(total), kThreads, 0, native(stream)>>>(
          static_cast<const T*>(x), static_cast<T*>(y), g, total);
      check_launch();
    }
  });
}

void avg_pool2d_backward(const cpu::PoolGeometry& g, DType dtype, const void* dy, void* dx,
                         StreamRef stream) {
  const int64_t total = g.planes * g.h * g.w;
  if (total == 0) return;
  DeviceGuard guard(stream.device.index);
  dispatch_floating(dtype, "avg_pool2d_backward (CUDA)", [&]<typename T>() {
    if constexpr (kPoolType<T>) {
      avg_pool_backward_kernel<T><<<blocks_for(total), kThreads, 0, native(stream)>>>(
          static_cast<const T*>(dy), static_cast<T*>(dx), g, total);
      check_launch();
    }
  });
}

}  // namespace pit::cuda
