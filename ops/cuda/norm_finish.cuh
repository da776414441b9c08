#pragma once
// What the one-pass layernorm / rmsnorm backward kernels share (ops/cuda/norm_fused.cu,
// ops/cuda/norm_bulk.cu): their arguments, and the last step, adding the blocks' dweight / dbias
// partial rows into dweight / dbias in block order.
//
// Each block of such a kernel writes one partial row part[block][dweight, dbias][d] (f32). Where the
// device takes a cooperative launch of the whole grid (every block resident at once), the grid then
// synchronises and adds the partials itself (finish_columns); otherwise a second kernel does
// (finish_kernel), launched with programmatic dependent launch: it is scheduled while the first still
// runs and waits (griddepcontrol.wait) for all of its writes, which hides its launch latency. The
// grids depend on the shape and the number of SMs alone, so dweight / dbias are bit-identical from
// run to run on a GPU model.
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <utility>

#include "core/cuda/runtime.h"
#include "core/device.h"
#include "core/memory.h"
#include "ops/cpu/norm.h"
#include "ops/cuda/device_utils.cuh"

namespace pit::cuda::norm_finish {

// The most blocks a one-pass kernel launches (the finishing loads per thread are sized for it).
inline constexpr int64_t kMaxBlocks = 512;

// A one-pass backward kernel's arguments. part: [blocks][2][d] f32, null without dweight / dbias;
// dweight / dbias (either may be null) are written by the kernel itself only in its grid-synchronised
// instance.
template <typename T>
struct Args {
  const T* dy;
  int64_t sdy;
  const T* x;
  int64_t sx;
  const T* w;
  const float* mean;  // null for rmsnorm
  const float* rstd;
  T* dx;
  int64_t rows;
  int d;
  float inv_d;
  float* part;
  T* dweight;
  T* dbias;
};

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

// dweight[c] / dbias[c] = the sum over blocks k of part[k][0 or 1][c], in a kernel of kThreads
// threads a block once its grid has synchronised: block b takes the b-th share of the 2 d columns,
// all of them at once where they are at most kThreads (else kThreads at a time), each column in
// kThreads / columns lanes of blocks. A lane has kBatch loads in flight before its first add (one
// batch for 16 columns of 132 blocks in 288 threads: a single trip to the L2), then the lanes are
// added in order. `lanes` is shared memory for kThreads floats.
template <typename T, int kThreads>
__device__ void finish_columns(const float* part, int d, T* dweight, T* dbias, float* lanes) {
  constexpr int kBatch = 8;
  const int blocks = static_cast<int>(gridDim.x), per = (2 * d + blocks - 1) / blocks;
  const int c0 = static_cast<int>(blockIdx.x) * per, c1 = min(2 * d, c0 + per);
  const int cols = min(per, kThreads), nl = kThreads / cols;
  const int tx = threadIdx.x % cols, ty = threadIdx.x / cols;
  for (int base = c0; base < c1; base += cols) {
    const int c = base + tx;
    float a = 0.f;
    if (ty < nl && c < c1)
      for (int k0 = ty; k0 < blocks; k0 += kBatch * nl) {
        float v[kBatch];
#pragma unroll
        for (int i = 0; i < kBatch; ++i) {
          const int k = k0 + i * nl;
          v[i] = k < blocks ? __ldcg(part + int64_t{k} * 2 * d + c) : 0.f;  // L2: other SMs wrote it
        }
#pragma unroll
        for (int i = 0; i < kBatch; ++i) a += v[i];
      }
    if (ty < nl) lanes[ty * cols + tx] = a;
    __syncthreads();
    if (ty == 0 && c < c1) {
      a = 0.f;
      for (int l = 0; l < nl; ++l) a += lanes[l * cols + tx];
      T* out = c < d ? dweight : dbias;
      if (out != nullptr) out[c < d ? c : c - d] = narrow<T>(a);
    }
    __syncthreads();
  }
}

// Grid-synchronises (a cooperative launch) once this block's partial row is written, then adds the
// partials (finish_columns). Every thread of every block calls it.
template <typename T, int kThreads>
__device__ __forceinline__ void sync_and_finish(const Args<T>& a, float* lanes) {
  cooperative_groups::this_grid().sync();  // every block's partial row written and visible
  finish_columns<T, kThreads>(a.part, a.d, a.dweight, a.dbias, lanes);
}

// Stores a lane's dweight / dbias accumulators (lane l holds the columns (l + 32 p) kN + e) into
// its warp's rows of shared memory, w_row and b_row (32 kPacks kN floats each, 16-byte aligned), in
// 16-byte stores: a lane's kN columns are adjacent (scalar stores were 8-way bank conflicted, and
// the block's step took 2-3 us on an H100).
template <int kPacks, int kN>
__device__ __forceinline__ void stash_sums(float* w_row, float* b_row, const float (&aw)[kPacks * kN],
                                           const float (&ab)[kPacks * kN]) {
  static_assert(kN % 4 == 0);
  const int lane = threadIdx.x % kWarp;
#pragma unroll
  for (int p = 0; p < kPacks; ++p)
#pragma unroll
    for (int e = 0; e < kN; e += 4) {
      const int c = (lane + p * kWarp) * kN + e, i = p * kN + e;
      *reinterpret_cast<float4*>(w_row + c) = make_float4(aw[i], aw[i + 1], aw[i + 2], aw[i + 3]);
      *reinterpret_cast<float4*>(b_row + c) = make_float4(ab[i], ab[i + 1], ab[i + 2], ab[i + 3]);
    }
}

// The block's partial row, its kWarps warps' stashed rows (warp k's dweight row at
// acc + k * warp_stride, its dbias row bias_offset floats on) added in warp order, then
// (kGridSync) the grid's sum. Every thread of the block calls it after a __syncthreads that
// follows every warp's stash_sums; `acc` (its first kThreads floats) is reused as the finishing
// lanes.
template <typename T, int kThreads, int kWarps, bool kGridSync>
__device__ __forceinline__ void finish_block(const Args<T>& a, float* acc, int warp_stride, int bias_offset) {
  float* const out = a.part + int64_t{blockIdx.x} * 2 * a.d;
  for (int c = threadIdx.x; c < 2 * a.d; c += kThreads) {
    const int at = c < a.d ? c : bias_offset + c - a.d;
    float sum = 0.f;
#pragma unroll
    for (int k = 0; k < kWarps; ++k) sum += acc[k * warp_stride + at];
    out[c] = sum;
  }
  if constexpr (kGridSync) sync_and_finish<T, kThreads>(a, acc);  // acc: the finishing lanes, after the sync
}

constexpr int kFinishCols = 16, kFinishLanes = 64;  // finish_kernel's block

// dweight[c] / dbias[c] = the sum over blocks k (in order) of part[k][0 or 1][c]: kFinishCols
// columns x kFinishLanes block lanes a thread block, the lanes then added in order.
template <typename T>
__global__ void __launch_bounds__(kFinishCols * kFinishLanes)
    finish_kernel(const float* __restrict__ part, int64_t blocks, int d, T* __restrict__ dweight,
                  T* __restrict__ dbias) {
  __shared__ float lanes[kFinishLanes][kFinishCols + 1];
  wait_for_prerequisites();
  const int tx = threadIdx.x % kFinishCols, ty = threadIdx.x / kFinishCols;
  const int c = blockIdx.x * kFinishCols + tx;  // of 2 d: dweight's columns, then dbias's
  // Every load issued before the first add (blocks <= kMaxBlocks).
  constexpr int kPer = (kMaxBlocks + kFinishLanes - 1) / kFinishLanes;
  float v[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int64_t k = ty + int64_t{i} * kFinishLanes;
    v[i] = c < 2 * d && k < blocks ? part[k * 2 * d + c] : 0.f;
  }
  float a = 0.f;
#pragma unroll
  for (int i = 0; i < kPer; ++i) a += v[i];
  lanes[ty][tx] = a;
  __syncthreads();
  if (ty != 0 || c >= 2 * d) return;
  a = 0.f;
#pragma unroll
  for (int k = 0; k < kFinishLanes; ++k) a += lanes[k][tx];
  T* out = c < d ? dweight : dbias;
  if (out != nullptr) out[c < d ? c : c - d] = narrow<T>(a);
}

// A launch configuration with one attribute (set `attr` before launching; not copyable, cfg
// points at attr).
struct OneAttributeLaunch {
  cudaLaunchConfig_t cfg{};
  cudaLaunchAttribute attr{};
  OneAttributeLaunch(dim3 grid, dim3 block, size_t smem, cudaStream_t stream) {
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
  }
  OneAttributeLaunch(const OneAttributeLaunch&) = delete;
  OneAttributeLaunch& operator=(const OneAttributeLaunch&) = delete;
};

// How many blocks of `kernel` (`threads` threads, `smem` bytes) can be resident at once on `device`
// for a cooperative launch (0 where the device cannot launch one); worked out once per kernel and
// device, lowered to `lower_to` after a refused launch.
inline int64_t resident_blocks(const void* kernel, int threads, size_t smem, int device, int64_t lower_to = -1) {
  static std::mutex mu;
  static std::map<std::pair<const void*, int>, int64_t> known;
  const std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_pair(kernel, device);
  if (lower_to >= 0) return known[key] = lower_to;  // a launch of lower_to + 1 blocks was refused
  if (const auto it = known.find(key); it != known.end()) return it->second;
  int coop = 0, per_sm = 0;
  PIT_CUDA_CHECK(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, device));
  if (smem > 48 * 1024)
    PIT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  PIT_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem));
  return known[key] = coop != 0 ? int64_t{per_sm} * sm_count(device) : 0;
}

// Launches a one-pass backward kernel of `blocks` blocks: `synced` (its grid-synchronised instance)
// cooperatively where dweight / dbias are wanted and the grid fits resident, else `plain` and then
// finish_kernel. PIT_NORM_NO_GRID_SYNC=1 forces the second way (tests run both).
template <typename T>
void launch_backward(void (*synced)(Args<T>), void (*plain)(Args<T>), Args<T> a, int64_t blocks, int threads,
                     size_t smem, StreamRef stream) {
  const cudaStream_t s = native(stream);
  const bool params = a.part != nullptr;
  const char* no_sync = std::getenv("PIT_NORM_NO_GRID_SYNC");
  const auto coop = reinterpret_cast<const void*>(synced);
  if (params && !(no_sync != nullptr && no_sync[0] == '1') &&
      resident_blocks(coop, threads, smem, stream.device.index) >= blocks) {
    OneAttributeLaunch l(dim3(static_cast<unsigned>(blocks)), dim3(threads), smem, s);
    l.attr.id = cudaLaunchAttributeCooperative;
    l.attr.val.cooperative = 1;
    const cudaError_t e = cudaLaunchKernelEx(&l.cfg, synced, a);
    if (e == cudaSuccess) return;
    // The driver may hold fewer blocks resident than the occupancy query said (an H200 refused
    // 257 where it reported 264): remember the bound, take the second way.
    if (e != cudaErrorCooperativeLaunchTooLarge) PIT_CUDA_CHECK(e);
    (void)cudaGetLastError();
    resident_blocks(coop, threads, smem, stream.device.index, blocks - 1);
  }
  if (smem > 48 * 1024)
    PIT_CUDA_CHECK(cudaFuncSetAttribute(plain, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  Args<T> p = a;
  p.dweight = p.dbias = nullptr;
  plain<<<static_cast<unsigned>(blocks), threads, smem, s>>>(p);
  PIT_CUDA_CHECK(cudaGetLastError());
  if (!params) return;
  OneAttributeLaunch l(dim3(static_cast<unsigned>(ceil_div(2 * int64_t{a.d}, kFinishCols))),
                       dim3(kFinishCols * kFinishLanes), 0, s);
  l.attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  l.attr.val.programmaticStreamSerializationAllowed = 1;
  PIT_CUDA_CHECK(cudaLaunchKernelEx(&l.cfg, finish_kernel<T>, static_cast<const float*>(a.part), blocks, a.d,
                                    a.dweight, a.dbias));
}

// The host side of a one-pass backward: for rows of f32 / f16 / bf16 a kernel takes (at most
// 32 kMaxPacks 16-byte packs, whole packs, x / dy rows and dx, weight 16-byte aligned), asks
// blocks_for.template operator()<T>(rows) for the grid (0: the kernel does not run here), fills
// its arguments (the partials from the stream's cache, released to it on return: later work on
// the stream runs after the kernels; none without dweight / dbias) and calls
// launch.template operator()<T, kPacks>(args, blocks) with the packs a lane holds (1, 2 or 4).
// Returns false, having launched nothing, where it does not take the rows.
template <int kMaxPacks, typename BlocksFor, typename Launch>
bool one_pass(const cpu::NormArgs& na, const void* dy, int64_t sdy, const void* x, int64_t sx, const void* w,
              const void* mean, const void* rstd, void* dx, void* dweight, void* dbias, StreamRef stream,
              BlocksFor&& blocks_for, Launch&& launch) {
  const auto typed = [&]<typename T>() {
    constexpr int kN = Pack<T>::kN;
    const int64_t rows = na.rows, d = na.dim;
    const auto rows_aligned = [](const void* p, int64_t stride) {
      return aligned16(p) && (stride * static_cast<int64_t>(sizeof(T))) % 16 == 0;
    };
    if (d > int64_t{kWarp} * kMaxPacks * kN || d % kN != 0 || rows == 0) return false;
    if (!rows_aligned(x, sx) || !rows_aligned(dy, sdy) || !aligned16(dx) || (w != nullptr && !aligned16(w)))
      return false;
    DeviceGuard guard(stream.device.index);  // blocks_for asks the device about its kernels
    const int64_t blocks = blocks_for.template operator()<T>(rows);
    if (blocks == 0) return false;
    const bool params = dweight != nullptr || dbias != nullptr;
    const auto workspace =
        params ? Storage::allocate(static_cast<size_t>(blocks * 2 * d) * sizeof(float), stream.device, stream) : nullptr;
    const Args<T> args{static_cast<const T*>(dy), sdy, static_cast<const T*>(x), sx, static_cast<const T*>(w),
                       static_cast<const float*>(mean), static_cast<const float*>(rstd), static_cast<T*>(dx), rows,
                       static_cast<int>(d), 1.f / static_cast<float>(d),
                       params ? static_cast<float*>(workspace->data()) : nullptr, static_cast<T*>(dweight),
                       static_cast<T*>(dbias)};
    switch (ceil_div(d / kN, kWarp)) {
      case 1: launch.template operator()<T, 1>(args, blocks); break;
      case 2: launch.template operator()<T, 2>(args, blocks); break;
      default: launch.template operator()<T, 4>(args, blocks); break;
    }
    return true;
  };
  switch (na.dtype) {
    case DType::f32: return typed.template operator()<float>();
    case DType::f16: return typed.template operator()<Half>();
    case DType::bf16: return typed.template operator()<BFloat16>();
    default: return false;  // f64: the general kernels
  }
}

}  // namespace pit::cuda::norm_finish
