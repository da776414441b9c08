// Gather and scatter-add along one dim on the GPU.
//
// Indices are checked where they are loaded: a value outside [-n, n) is recorded in the
// device's error slot (core/cuda/device_error.cuh), which the host turns into a pit::Error at
// its next read; the element is then written as 0 (gather) or skipped (scatter_add) instead of
// reading or writing out of bounds. The check is one compare on a value the kernel loads anyway;
// nothing synchronises.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "core/convert.h"
#include "core/cuda/backend.h"
#include "core/cuda/device_error.cuh"
#include "core/cuda/launch.cuh"
#include "core/cuda/runtime.h"
#include "ops/cuda/index.h"

namespace pit::cuda {
namespace {

struct IndexGeometry {
  int64_t outer, n, m, inner;
  int64_t s0, s1, s2;  // index strides for (outer, m, inner)
};

// The index at position p of the index tensor, made non-negative; -1 (after recording the
// error) when it is outside [-n, n).
__device__ __forceinline__ int64_t load_index(const int64_t* __restrict__ idx, int64_t p,
                                              int64_t n, DeviceErrorSink err) {
  const int64_t v = idx[p];
  const int64_t k = v < 0 ? v + n : v;
  if (static_cast<uint64_t>(k) < static_cast<uint64_t>(n)) return k;
  record_device_error(err, v, n, p);
  return -1;
}

template <typename T>
__global__ void gather_kernel(const T* __restrict__ x, const int64_t* __restrict__ idx,
                              T* __restrict__ out, IndexGeometry g, DeviceErrorSink err) {
  const int64_t total = g.outer * g.m * g.inner;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total;
       e += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = e % g.inner, r = e / g.inner, j = r % g.m, o = r / g.m;
    const int64_t k = load_index(idx, o * g.s0 + j * g.s1 + i * g.s2, g.n, err);
    out[e] = k >= 0 ? x[(o * g.n + k) * g.inner + i] : convert<T>(0);
  }
}

// The same when the index names whole rows (it does not vary along `inner`: index_select,
// embedding) of 16-byte multiples at 16-byte aligned addresses: a warp per output row, the row's
// index loaded once (one broadcast load) and its 16-byte chunks copied by the lanes. The element
// kernel above spends 64-bit divisions and an index load on every element (16384 rows of 1024
// bf16 on an H100: ~810 GB/s, 19% of the copy bandwidth; bench/moe.cpp's "gather X rows"); this
// one moved them at 2503 GB/s, 84% of the copy (H100, `pit-bench dense`'s embedding row,
// 2026-12-06; torch 0.0262 ms against 0.0268).
template <typename T>
__global__ void gather_rows_kernel(const T* __restrict__ x, const int64_t* __restrict__ idx,
                                   T* __restrict__ out, IndexGeometry g, DeviceErrorSink err) {
  constexpr int kUnroll = 4;
  const int64_t rows = g.outer * g.m, chunks = g.inner * static_cast<int64_t>(sizeof(T)) / 16;
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int64_t warps = int64_t{gridDim.x} * (blockDim.x / 32);
  for (int64_t r = (blockIdx.x * int64_t{blockDim.x} + threadIdx.x) / 32; r < rows; r += warps) {
    const int64_t j = r % g.m, o = r / g.m;
    const int64_t k = load_index(idx, o * g.s0 + j * g.s1, g.n, err);
    const uint4* src = reinterpret_cast<const uint4*>(x + (o * g.n + (k >= 0 ? k : 0)) * g.inner);
    uint4* dst = reinterpret_cast<uint4*>(out + r * g.inner);
    for (int64_t c0 = lane; c0 < chunks; c0 += 32 * kUnroll) {
      uint4 v[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t c = c0 + 32 * u;
        v[u] = k >= 0 && c < chunks ? src[c] : uint4{0, 0, 0, 0};
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
        if (c0 + 32 * u < chunks) dst[c0 + 32 * u] = v[u];
    }
  }
}

template <typename T, typename Acc>
__global__ void scatter_add_kernel(Acc* __restrict__ out, const int64_t* __restrict__ idx,
                                   const T* __restrict__ src, IndexGeometry g,
                                   DeviceErrorSink err) {
  const int64_t total = g.outer * g.m * g.inner;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total;
       e += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = e % g.inner, r = e / g.inner, j = r % g.m, o = r / g.m;
    const int64_t k = load_index(idx, o * g.s0 + j * g.s1 + i * g.s2, g.n, err);
    if (k >= 0) atomicAdd(&out[(o * g.n + k) * g.inner + i], convert<Acc>(src[e]));
  }
}

IndexGeometry geometry(const int64_t is[3], int64_t outer, int64_t n, int64_t m, int64_t inner) {
  return {outer, n, m, inner, is[0], is[1], is[2]};
}

constexpr const char* kFindTheCall =
    "; to find the call that queued it, synchronise right after the suspect ops (every "
    "synchronisation checks)";

DeviceErrorKind index_kind(const char* op, const char* fix) {
  DeviceErrorKind k;
  k.op = op;
  k.value = "index";
  k.position = "index element";
  k.from_end = true;
  k.fix = std::string(fix) + kFindTheCall;
  return k;
}

// The registered error kind of each op, registered on first use.
int32_t error_kind(IndexOp op) {
  static const int32_t kinds[] = {
      register_device_error_kind(index_kind(
          "gather", "fix the index, or pass it as a CPU tensor to have it checked when gather is "
                    "called")),
      register_device_error_kind(index_kind(
          "index_select",
          "fix the indices (embedding looks its ids up with index_select along dim 0 of the "
          "weight, so ids must be below num_embeddings), or pass them as a CPU tensor to have "
          "them checked when the op is called")),
      register_device_error_kind(index_kind(
          "scatter_add", "fix the index, or pass it as a CPU tensor to have it checked when "
                         "scatter_add is called")),
      register_device_error_kind(index_kind(
          "index_add", "fix the indices, or pass them as a CPU tensor to have them checked when "
                       "index_add is called")),
  };
  return kinds[static_cast<int>(op)];
}

DeviceErrorSink sink(IndexOp op, int64_t dim, StreamRef stream) {
  return device_error_sink(stream.device.index, error_kind(op), static_cast<int32_t>(dim));
}

}  // namespace

void gather(const Tensor& x, const Tensor& index, const int64_t is[3], Tensor& out, int64_t outer,
            int64_t n, int64_t m, int64_t inner, IndexOp op, int64_t dim, StreamRef stream) {
  const int64_t total = outer * m * inner;
  if (total == 0) return;
  DeviceGuard guard(stream.device.index);
  const IndexGeometry g = geometry(is, outer, n, m, inner);
  const DeviceErrorSink err = sink(op, dim, stream);
  dispatch(x.dtype(), "gather", [&]<typename T>() {
    const bool whole_rows = is[2] == 0 && (inner * static_cast<int64_t>(sizeof(T))) % 16 == 0 &&
                            reinterpret_cast<uintptr_t>(x.data<T>()) % 16 == 0 &&
                            reinterpret_cast<uintptr_t>(out.data<T>()) % 16 == 0;
    if (whole_rows)
      gather_rows_kernel<T><<<grid_for(outer * m * 32, kThreads), kThreads, 0, native(stream)>>>(
          x.data<T>(), index.data<int64_t>(), out.data<T>(), g, err);
    else
      gather_kernel<T><<<grid_for(total, kThreads), kThreads, 0, native(stream)>>>(
          x.data<T>(), index.data<int64_t>(), out.data<T>(), g, err);
  });
  PIT_CUDA_CHECK(cudaGetLastError());
}

void scatter_add(Tensor& out, const Tensor& index, const int64_t is[3], const Tensor& src,
                 int64_t outer, int64_t n, int64_t m, int64_t inner, IndexOp op, int64_t dim,
                 StreamRef stream) {
  const int64_t total = outer * m * inner;
  if (total == 0) return;
  DeviceGuard guard(stream.device.index);
  const IndexGeometry g = geometry(is, outer, n, m, inner);
  const DeviceErrorSink err = sink(op, dim, stream);
  const unsigned blocks = grid_for(total, kThreads);
  dispatch_floating(out.dtype(), "scatter_add", [&]<typename T>() {
    if (op == IndexOp::index_add) {  // a 1-D index: the deterministic sorted path
      constexpr bool kWide = std::is_same_v<T, float> || std::is_same_v<T, double>;
      Tensor acc = kWide ? out : out.to(DType::f32);
      index_add_sorted(acc, index, is[1], src, outer, n, m, inner, err, stream);
      if (!kWide) out.copy_(acc);
    } else if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      scatter_add_kernel<T, T><<<blocks, kThreads, 0, native(stream)>>>(
          out.data<T>(), index.data<int64_t>(), src.data<T>(), g, err);
    } else {
      // Half-precision outputs: accumulate in f32, then round once into out.
      Tensor acc = out.to(DType::f32);
      scatter_add_kernel<T, float><<<blocks, kThreads, 0, native(stream)>>>(
          acc.data<float>(), index.data<int64_t>(), src.data<T>(), g, err);
      PIT_CUDA_CHECK(cudaGetLastError());
      out.copy_(acc);
    }
  });
  PIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace pit::cuda
