// Layernorm / rmsnorm backward in one pass over x and dy, for rows of up to 1024 elements in whole,
// 16-byte aligned packs (f32, f16, bf16).
//
// A warp takes a row at a time (rows w, w + W, ... of the W warps of the grid) and computes dx as
// ops/cuda/norm.cu's row kernel does. Lane t owns the packs t, t + 32, ... of every row, hence
// the same columns in every row, so it also adds dy * xhat and dy into dweight / dbias
// accumulators in its registers: x and dy are read once, where the general path reads them again
// in a column pass (on an H200, 16384 x 1024 bf16, the whole backward: 0.106 ms -> 0.045 ms).
// The rows travel by cp.async into a per-warp shared-memory ring, kDepth rows in flight per warp
// (the registers hold the accumulators, not the rows in flight); each lane copies exactly the
// packs it reads back, so it waits on its own copies only. The weight sits in shared memory, and
// packs past the row read as zeros, so the loops over a lane's packs have no bounds checks.
//
// At the end each block adds its warps' accumulators in warp order into one partial row (dweight,
// then dbias), and a second kernel adds the blocks' partials in block order. The grid depends on
// the shape alone (at most kMaxBlocks blocks), so dweight / dbias are bit-identical from run to
// run and GPU to GPU. The second kernel is launched with programmatic dependent launch: it is
// scheduled while the first still runs and waits (griddepcontrol.wait) for all of its writes,
// which hides its launch latency (it runs 3.6 us; launched plainly it added about 4 us to a
// standalone copy of these kernels).
#include "ops/cuda/norm_fused.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "core/cuda/runtime.h"
#include "core/memory.h"
#include "ops/cuda/device_utils.cuh"
#include "ops/cuda/mma_ptx.cuh"

namespace pit::cuda {
namespace {

constexpr int kThreads = 128;  // 4 warps; 158 registers a thread for 1024 bf16 elements: 3 blocks an SM
constexpr int kWarps = kThreads / kWarp;
constexpr int kMinBlocks = 3;
constexpr int kDepth = 2;  // rows in flight per warp (a standalone copy measured 3 and 4 slower)
// Blocks: enough warps for kMinRowsPerWarp rows each, at most kMaxBlocks (3 per SM on 128 SMs,
// so on an H100 / H200 every block is resident at once).
constexpr int64_t kMaxBlocks = 384;
constexpr int64_t kMinRowsPerWarp = 4;
constexpr int kMaxPacks = 4;  // packs per lane: 1024 elements of f16 / bf16, 512 of f32
constexpr int kFinishCols = 32, kFinishLanes = 8;

// Lets the dependent kernel (launched with programmatic stream serialization) be scheduled, and
// waits in that kernel for this one's completion and memory writes.
__device__ __forceinline__ void allow_dependents() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void wait_for_prerequisites() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// A pack of zeros, and of ones (the weight of a norm without one).
template <typename T>
__device__ __forceinline__ Pack<T> filled_pack(float v) {
  Pack<T> p;
#pragma unroll
  for (int e = 0; e < Pack<T>::kN; ++e) p.v[e] = narrow<T>(v);
  return p;
}

template <typename T>
__device__ __forceinline__ Pack<T> reload(const Pack<T>* p) {
  const uint4 u = ptx::ld_shared_u4(p);
  Pack<T> out;
  static_assert(sizeof(out) == sizeof(u));
  memcpy(&out, &u, sizeof u);
  return out;
}

// part [gridDim.x][2][d] (f32): this block's sums over its rows of dy * xhat, then of dy.
template <typename T, int kPacks>
__global__ void __launch_bounds__(kThreads, kMinBlocks)
    fused_backward_kernel(const T* __restrict__ dy, int64_t sdy, const T* __restrict__ x, int64_t sx,
                          const T* __restrict__ w, const float* __restrict__ mean_in,
                          const float* __restrict__ rstd_in, T* __restrict__ dx, int64_t rows, int d,
                          float inv_d, float* __restrict__ part) {
  using P = Pack<T>;
  constexpr int kN = P::kN, kSlot = kWarp * kPacks;  // packs of one operand in a stage
  extern __shared__ uint4 smem_raw[];
  allow_dependents();
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  P* const ring = reinterpret_cast<P*>(smem_raw) + warp * kDepth * 2 * kSlot;  // [kDepth][x, dy][kSlot]
  const int packs = d / kN;
  // The weight in shared memory, ones without one. Packs past the row get a zero weight and their
  // ring slots (never copied into) zeros, so they add nothing to the sums below: the loops need no
  // bounds checks, only the stores of dx.
  P* const wsh = reinterpret_cast<P*>(smem_raw) + kWarps * kDepth * 2 * kSlot;  // [kSlot]
  for (int q = threadIdx.x; q < kSlot; q += kThreads)
    wsh[q] = q >= packs ? filled_pack<T>(0.f) : w != nullptr ? reinterpret_cast<const P*>(w)[q] : filled_pack<T>(1.f);
#pragma unroll
  for (int p = 0; p < kPacks; ++p)
    if (lane + p * kWarp >= packs)
#pragma unroll
      for (int s = 0; s < 2 * kDepth; ++s) ring[s * kSlot + lane + p * kWarp] = filled_pack<T>(0.f);
  __syncthreads();
  const int64_t first = blockIdx.x * int64_t{kWarps} + warp, step = int64_t{gridDim.x} * kWarps;
  const auto issue = [&](int64_t r, int s) {
    if (r < rows) {
      const P* xr = reinterpret_cast<const P*>(x + r * sx);
      const P* gr = reinterpret_cast<const P*>(dy + r * sdy);
#pragma unroll
      for (int p = 0; p < kPacks; ++p) {
        const int q = lane + p * kWarp;
        if (q < packs) {
          ptx::cp_async_16(ring + 2 * s * kSlot + q, xr + q, 16);
          ptx::cp_async_16(ring + (2 * s + 1) * kSlot + q, gr + q, 16);
        }
      }
    }
    ptx::cp_async_commit();  // empty past the last row: the group count stays uniform
  };
#pragma unroll
  for (int s = 0; s < kDepth - 1; ++s) issue(first + s * step, s);

  float aw[kPacks * kN], ab[kPacks * kN];
#pragma unroll
  for (int i = 0; i < kPacks * kN; ++i) aw[i] = ab[i] = 0.f;
  int it = 0;
  for (int64_t r = first; r < rows; r += step, ++it) {
    issue(r + (kDepth - 1) * step, (it + kDepth - 1) % kDepth);
    ptx::cp_async_wait<kDepth - 1>();
    const P* xs = ring + 2 * (it % kDepth) * kSlot + lane;
    const P* gs = xs + kSlot;
    const float mean = mean_in != nullptr ? mean_in[r] : 0.f, rstd = rstd_in[r];
    float sum_gx = 0.f, sum_g = 0.f;
#pragma unroll
    for (int p = 0; p < kPacks; ++p) {
      float xf[kN], gf[kN], wf[kN];
      widen_pack(xs[p * kWarp].v, xf);  // one 16-byte shared load each
      widen_pack(gs[p * kWarp].v, gf);
      widen_pack(wsh[lane + p * kWarp].v, wf);
#pragma unroll
      for (int e = 0; e < kN; ++e) {
        const float xh = (xf[e] - mean) * rstd, g = gf[e] * wf[e];
        sum_gx += g * xh;
        sum_g += g;
        aw[p * kN + e] += gf[e] * xh;
        ab[p * kN + e] += gf[e];
      }
    }
    const float c1 = warp_sum(sum_gx) * inv_d;
    const float c2 = mean_in != nullptr ? warp_sum(sum_g) * inv_d : 0.f;
    P* out = reinterpret_cast<P*>(dx + r * d) + lane;
#pragma unroll
    for (int p = 0; p < kPacks; ++p) {
      float xf[kN], gf[kN], wf[kN], of[kN];
      widen_pack(reload(xs + p * kWarp).v, xf);  // not kept in registers since the first loop
      widen_pack(reload(gs + p * kWarp).v, gf);
      widen_pack(wsh[lane + p * kWarp].v, wf);
#pragma unroll
      for (int e = 0; e < kN; ++e) of[e] = rstd * (gf[e] * wf[e] - c2 - (xf[e] - mean) * rstd * c1);
      P o;
      narrow_pack(of, o.v);
      if (lane + p * kWarp < packs) out[p * kWarp] = o;
    }
  }
  ptx::cp_async_wait<0>();
  if (part == nullptr) return;  // no dweight / dbias asked for
  __syncthreads();  // the ring is reused for the block's sums
  float* acc = reinterpret_cast<float*>(smem_raw);  // [2][d]: needs 8 d bytes, the ring has 512 kPacks kN
  for (int k = 0; k < kWarps; ++k) {
    if (warp == k) {
#pragma unroll
      for (int p = 0; p < kPacks; ++p) {
        const int q = lane + p * kWarp;
        if (q < packs) {
#pragma unroll
          for (int e = 0; e < kN; ++e) {
            const int c = q * kN + e;
            acc[c] = (k > 0 ? acc[c] : 0.f) + aw[p * kN + e];
            acc[d + c] = (k > 0 ? acc[d + c] : 0.f) + ab[p * kN + e];
          }
        }
      }
    }
    __syncthreads();
  }
  float* mine = part + int64_t{blockIdx.x} * 2 * d;
  for (int i = threadIdx.x; i < 2 * d; i += kThreads) mine[i] = acc[i];
}

// dweight[c] / dbias[c] = the sum over blocks k (in order) of part[k][0 or 1][c]: kFinishCols
// columns x kFinishLanes block lanes a thread block, the lanes then added in order.
template <typename T>
__global__ void __launch_bounds__(kFinishCols * kFinishLanes)
    fused_finish_kernel(const float* __restrict__ part, int64_t blocks, int d, T* __restrict__ dweight,
                        T* __restrict__ dbias) {
  __shared__ float lanes[kFinishLanes][kFinishCols + 1];
  wait_for_prerequisites();
  const int tx = threadIdx.x % kFinishCols, ty = threadIdx.x / kFinishCols;
  const int c = blockIdx.x * kFinishCols + tx;  // of 2 d: dweight's columns, then dbias's
  float a = 0.f;
  if (c < 2 * d)
    for (int64_t k = ty; k < blocks; k += kFinishLanes) a += part[k * 2 * d + c];
  lanes[ty][tx] = a;
  __syncthreads();
  if (ty != 0 || c >= 2 * d) return;
  a = 0.f;
#pragma unroll
  for (int k = 0; k < kFinishLanes; ++k) a += lanes[k][tx];
  T* out = c < d ? dweight : dbias;
  if (out != nullptr) out[c < d ? c : c - d] = narrow<T>(a);
}

template <typename T>
bool run(const cpu::NormArgs& a, const T* dy, int64_t sdy, const T* x, int64_t sx, const T* w,
         const float* mean, const float* rstd, T* dx, T* dweight, T* dbias, StreamRef stream) {
  constexpr int kN = Pack<T>::kN;
  const int64_t rows = a.rows, d = a.dim;
  const auto rows_aligned = [](const T* p, int64_t stride) {
    return aligned16(p) && (stride * static_cast<int64_t>(sizeof(T))) % 16 == 0;
  };
  if (d > int64_t{kWarp} * kMaxPacks * kN || d % kN != 0 || rows == 0) return false;
  if (!rows_aligned(x, sx) || !rows_aligned(dy, sdy) || !aligned16(dx) || (w != nullptr && !aligned16(w)))
    return false;
  const int lane_packs = static_cast<int>(ceil_div(d / kN, kWarp));
  const int64_t blocks = std::clamp<int64_t>(ceil_div(rows, kWarps * kMinRowsPerWarp), 1, kMaxBlocks);
  DeviceGuard guard(stream.device.index);
  const cudaStream_t s = native(stream);
  // The block partials, from the stream's cache (released to it when this returns: later work on
  // the stream runs after the finishing kernel); none without dweight / dbias.
  const bool params = dweight != nullptr || dbias != nullptr;
  const auto workspace =
      params ? Storage::allocate(static_cast<size_t>(blocks * 2 * d) * sizeof(float), stream.device, stream) : nullptr;
  float* part = params ? static_cast<float*>(workspace->data()) : nullptr;
  const auto launch = [&]<int kPacks>() {
    auto* kernel = fused_backward_kernel<T, kPacks>;
    constexpr size_t smem = (size_t{kWarps} * kDepth * 2 + 1) * kWarp * kPacks * sizeof(Pack<T>);  // rings, weight
    static_assert(2 * kWarp * kPacks * kN * sizeof(float) <= smem, "the block sums fit in the ring");
    kernel<<<static_cast<unsigned>(blocks), kThreads, smem, s>>>(dy, sdy, x, sx, w, mean, rstd, dx, rows,
                                                                 static_cast<int>(d), 1.f / static_cast<float>(d), part);
  };
  switch (lane_packs) {
    case 1: launch.template operator()<1>(); break;
    case 2: launch.template operator()<2>(); break;
    default: launch.template operator()<4>(); break;
  }
  PIT_CUDA_CHECK(cudaGetLastError());
  if (!params) return true;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(ceil_div(2 * d, kFinishCols)));
  cfg.blockDim = dim3(kFinishCols * kFinishLanes);
  cfg.stream = s;
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = &attr;
  cfg.numAttrs = 1;
  PIT_CUDA_CHECK(cudaLaunchKernelEx(&cfg, fused_finish_kernel<T>, static_cast<const float*>(part), blocks,
                                    static_cast<int>(d), dweight, dbias));
  return true;
}

}  // namespace

bool norm_backward_fused(const cpu::NormArgs& a, const void* dy, int64_t dy_stride, const void* x,
                         int64_t x_stride, const void* weight, const void* mean, const void* rstd,
                         void* dx, void* dweight, void* dbias, StreamRef stream) {
  const auto go = [&]<typename T>() {
    return run<T>(a, static_cast<const T*>(dy), dy_stride, static_cast<const T*>(x), x_stride,
                  static_cast<const T*>(weight), static_cast<const float*>(mean),
                  static_cast<const float*>(rstd), static_cast<T*>(dx), static_cast<T*>(dweight),
                  static_cast<T*>(dbias), stream);
  };
  switch (a.dtype) {
    case DType::f32: return go.template operator()<float>();
    case DType::f16: return go.template operator()<Half>();
    case DType::bf16: return go.template operator()<BFloat16>();
    default: return false;  // f64: the general kernels
  }
}

}  // namespace pit::cuda
