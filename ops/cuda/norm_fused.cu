// Layernorm / rmsnorm backward in one pass over x and dy, for rows of up to 1024 elements in whole,
// 16-byte aligned packs (f32, f16, bf16).
//
// A warp takes two of its rows at a time (a stage: rows r and r + W of the W warps of the grid)
// and computes dx as ops/cuda/norm.cu's row kernel does. Lane t owns the packs t, t + 32, ... of
// every row, hence the same columns in every row, so it also adds dy * xhat and dy into dweight /
// dbias accumulators in its registers: x and dy are read once, where the general path reads them
// again in a column pass (on an H200, 16384 x 1024 bf16, the whole backward: 0.106 ms -> 0.045
// ms). The rows travel by cp.async into a per-warp shared-memory ring of kDepth stages, with their
// mean and rstd (loaded where they were used, their latency was the kernel's largest stall: 0.0387
// -> 0.0353 ms); each lane copies exactly the packs it reads back, so it waits on its own copies
// only. Two rows a stage interleave two rows' shuffle reductions and loads (with one row a stage,
// 3 blocks an SM: 0.0359 ms). The weight sits in shared memory, and packs past the row read as
// zeros, so the loops over a lane's packs have no bounds checks.
//
// At the end each block adds its warps' accumulators in warp order into one partial row (dweight,
// then dbias), and a second kernel adds the blocks' partials in block order. The grid depends on
// the shape and the number of SMs alone (every block resident at once), so dweight / dbias are
// bit-identical from run to run on a GPU model. The second kernel is launched with programmatic
// dependent launch: it is scheduled while the first still runs and waits (griddepcontrol.wait)
// for all of its writes, which hides its launch latency.
#include "ops/cuda/norm_fused.h"

#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <utility>

#include "core/cuda/runtime.h"
#include "core/memory.h"
#include "ops/cuda/device_utils.cuh"
#include "ops/cuda/mma_ptx.cuh"

namespace pit::cuda {
namespace {

constexpr int kThreads = 128;  // 4 warps; 247-249 registers a thread for 1024 bf16 elements (ptxas)
constexpr int kWarps = kThreads / kWarp;
constexpr int kMinBlocks = 2;  // resident blocks an SM
constexpr int kRows = 2;       // rows a stage
constexpr int kDepth = 2;      // stages in a warp's ring: one in flight while one is used
// Blocks: at most kMinBlocks per SM (all resident) and kMaxBlocks (the finishing kernel's loads
// per thread); a warp takes kMinRowsPerWarp rows at least.
constexpr int64_t kMaxBlocks = 512;
constexpr int64_t kMinRowsPerWarp = 4;
constexpr int kMaxPacks = 4;  // packs per lane: 1024 elements of f16 / bf16, 512 of f32
constexpr int kFinishCols = 16, kFinishLanes = 64;  // the finishing kernel's block
constexpr int kSyncCols = 8, kSyncLanes = kThreads / kSyncCols;  // finish_columns

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

// dweight[c] / dbias[c] = the sum over blocks k of part[k][0 or 1][c], in the fused kernel once
// the grid has synchronised: block b takes the b-th share of the 2 d columns, kSyncCols columns x
// kSyncLanes lanes of blocks at a time (every load in flight before the first add), the lanes then
// added in order. `lanes` is shared memory for kThreads floats.
template <typename T>
__device__ void finish_columns(const float* part, int d, T* dweight, T* dbias, float* lanes) {
  constexpr int kPer = static_cast<int>((kMaxBlocks + kSyncLanes - 1) / kSyncLanes);
  const int blocks = static_cast<int>(gridDim.x), per = (2 * d + blocks - 1) / blocks;
  const int c0 = static_cast<int>(blockIdx.x) * per, c1 = min(2 * d, c0 + per);
  const int tx = threadIdx.x % kSyncCols, ty = threadIdx.x / kSyncCols;
  for (int base = c0; base < c1; base += kSyncCols) {
    const int c = base + tx;
    float v[kPer];
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int k = ty + i * kSyncLanes;
      v[i] = c < c1 && k < blocks ? __ldcg(part + int64_t{k} * 2 * d + c) : 0.f;  // L2: other SMs wrote it
    }
    float a = 0.f;
#pragma unroll
    for (int i = 0; i < kPer; ++i) a += v[i];
    lanes[ty * kSyncCols + tx] = a;
    __syncthreads();
    if (ty == 0 && c < c1) {
      a = 0.f;
#pragma unroll
      for (int l = 0; l < kSyncLanes; ++l) a += lanes[l * kSyncCols + tx];
      T* out = c < d ? dweight : dbias;
      if (out != nullptr) out[c < d ? c : c - d] = narrow<T>(a);
    }
    __syncthreads();
  }
}

// part [gridDim.x][2][d] (f32): this block's sums over its rows of dy * xhat, then of dy.
// kGridSync (a cooperative launch): after the partials, the grid synchronises and adds them into
// dweight / dbias itself (finish_columns), with no second kernel.
template <typename T, int kPacks, bool kGridSync>
__global__ void __launch_bounds__(kThreads, kMinBlocks)
    fused_backward_kernel(const T* __restrict__ dy, int64_t sdy, const T* __restrict__ x, int64_t sx,
                          const T* __restrict__ w, const float* __restrict__ mean_in,
                          const float* __restrict__ rstd_in, T* __restrict__ dx, int64_t rows, int d,
                          float inv_d, float* __restrict__ part, T* __restrict__ dweight,
                          T* __restrict__ dbias) {
  using P = Pack<T>;
  constexpr int kN = P::kN, kSlot = kWarp * kPacks;  // packs of one operand of one row
  constexpr int kStage = kRows * 2 * kSlot;          // [kRows][x, dy][kSlot]
  extern __shared__ uint4 smem_raw[];
  allow_dependents();
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  P* const ring = reinterpret_cast<P*>(smem_raw) + warp * kDepth * kStage;  // [kDepth][kStage]
  const int packs = d / kN;
  // The weight in shared memory, ones without one. Packs past the row get a zero weight and their
  // ring slots (never copied into) zeros, so they add nothing to the sums below: the loops need no
  // bounds checks, only the stores of dx.
  P* const wsh = reinterpret_cast<P*>(smem_raw) + kWarps * kDepth * kStage;  // [kSlot]
  // The stages' statistics, [kDepth][kRows][mean, rstd] a warp.
  float* const stats = reinterpret_cast<float*>(wsh + kSlot) + warp * kDepth * kRows * 2;
  const int64_t first = blockIdx.x * int64_t{kWarps} + warp, step = int64_t{gridDim.x} * kWarps;
  const int64_t hop = kRows * step;  // from one stage's first row to the next's
  // Copies the rows r0, r0 + step, ... of a stage and their mean (lane 0) and rstd (lane 1) into
  // ring stage s. A row past the end reads as zeros, its statistics too, so it adds nothing to
  // the sums.
  const auto issue = [&](int64_t r0, int s) {
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      const int64_t r = r0 + j * step;
      const bool in = r < rows;
      P* const xs = ring + s * kStage + j * 2 * kSlot;
      const P* xr = reinterpret_cast<const P*>(x + r * sx);
      const P* gr = reinterpret_cast<const P*>(dy + r * sdy);
      float* const st = stats + (s * kRows + j) * 2;
      if (lane == 0) {
        if (in && mean_in != nullptr) ptx::cp_async_4(st, mean_in + r);
        else st[0] = 0.f;
      } else if (lane == 1) {
        if (in) ptx::cp_async_4(st + 1, rstd_in + r);
        else st[1] = 0.f;
      }
#pragma unroll
      for (int p = 0; p < kPacks; ++p) {
        const int q = lane + p * kWarp;
        if (q >= packs) continue;
        if (in) {
          ptx::cp_async_16(xs + q, xr + q, 16);
          ptx::cp_async_16(xs + kSlot + q, gr + q, 16);
        } else {
          xs[q] = filled_pack<T>(0.f);
          xs[kSlot + q] = filled_pack<T>(0.f);
        }
      }
    }
    ptx::cp_async_commit();  // empty past the last row: the group count stays uniform
  };
#pragma unroll
  for (int s = 0; s < kDepth - 1; ++s) issue(first + s * hop, s);
  // The weight and the zeros past the row, while the first stage is on its way (they touch other
  // slots than the copies).
  for (int q = threadIdx.x; q < kSlot; q += kThreads)
    wsh[q] = q >= packs ? filled_pack<T>(0.f) : w != nullptr ? reinterpret_cast<const P*>(w)[q] : filled_pack<T>(1.f);
#pragma unroll
  for (int p = 0; p < kPacks; ++p)
    if (lane + p * kWarp >= packs)
#pragma unroll
      for (int s = 0; s < kDepth * kRows * 2; ++s) ring[s * kSlot + lane + p * kWarp] = filled_pack<T>(0.f);
  __syncthreads();

  float aw[kPacks * kN], ab[kPacks * kN];
#pragma unroll
  for (int i = 0; i < kPacks * kN; ++i) aw[i] = ab[i] = 0.f;
  int it = 0;
  for (int64_t r0 = first; r0 < rows; r0 += hop, ++it) {
    issue(r0 + (kDepth - 1) * hop, (it + kDepth - 1) % kDepth);
    ptx::cp_async_wait<kDepth - 1>();
    // Lanes 0 and 1 copied the statistics. (Their slot is next written two stages on, after every
    // lane has used it and passed the shuffles of warp_sums below.)
    __syncwarp();
    const P* const st = ring + (it % kDepth) * kStage + lane;
    const float* const ms = stats + (it % kDepth) * kRows * 2;
    // xhat = (x - mean) rstd; for 16-bit x as one fma, x rstd + shift (the shift -mean rstd rounded
    // once in f32: well below the 16-bit input's own rounding), in f32 as written.
    float mean[kRows], rstd[kRows], shift[kRows], sums[2 * kRows];  // sums: dy w xhat of each row, then dy w
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      mean[j] = ms[2 * j];
      rstd[j] = ms[2 * j + 1];
      shift[j] = -mean[j] * rstd[j];
      sums[j] = sums[kRows + j] = 0.f;
    }
    const auto xhat = [&](float xv, int j) {
      if constexpr (kN == 8) return fmaf(xv, rstd[j], shift[j]);
      else return (xv - mean[j]) * rstd[j];
    };
#pragma unroll
    for (int p = 0; p < kPacks; ++p) {
      float wf[kN];
      widen_pack(wsh[lane + p * kWarp].v, wf);
#pragma unroll
      for (int j = 0; j < kRows; ++j) {
        float xf[kN], gf[kN];
        widen_pack(st[j * 2 * kSlot + p * kWarp].v, xf);  // one 16-byte shared load each
        widen_pack(st[j * 2 * kSlot + kSlot + p * kWarp].v, gf);
#pragma unroll
        for (int e = 0; e < kN; ++e) {
          const float xh = xhat(xf[e], j), g = gf[e] * wf[e];
          sums[j] += g * xh;
          sums[kRows + j] += g;
          aw[p * kN + e] += gf[e] * xh;
          ab[p * kN + e] += gf[e];
        }
      }
    }
    warp_sums(sums);
    // dx = rstd (g w - c2 - xhat c1) = (g w) rstd + (x - mean) k1 + k0; for 16-bit x,
    // (g w) rstd + x k1 + (k0 - mean k1) (as xhat above).
    float k1[kRows], k0[kRows];
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      const float c1 = sums[j] * inv_d, c2 = mean_in != nullptr ? sums[kRows + j] * inv_d : 0.f;
      k1[j] = -rstd[j] * rstd[j] * c1;
      k0[j] = -rstd[j] * c2;
      if constexpr (kN == 8) k0[j] -= mean[j] * k1[j];
    }
    // Pack by pack, both rows: the weight widened once for the two.
#pragma unroll
    for (int p = 0; p < kPacks; ++p) {
      float wf[kN];
      widen_pack(wsh[lane + p * kWarp].v, wf);
#pragma unroll
      for (int j = 0; j < kRows; ++j) {
        const int64_t r = r0 + j * step;
        float xf[kN], gf[kN], of[kN];
        widen_pack(reload(st + j * 2 * kSlot + p * kWarp).v, xf);  // not kept in registers since the first loop
        widen_pack(reload(st + j * 2 * kSlot + kSlot + p * kWarp).v, gf);
#pragma unroll
        for (int e = 0; e < kN; ++e) {
          const float xk = kN == 8 ? fmaf(xf[e], k1[j], k0[j]) : fmaf(xf[e] - mean[j], k1[j], k0[j]);
          of[e] = fmaf(gf[e] * wf[e], rstd[j], xk);
        }
        P o;
        narrow_pack(of, o.v);
        if (r < rows && lane + p * kWarp < packs) reinterpret_cast<P*>(dx + r * d)[lane + p * kWarp] = o;
      }
    }
  }
  ptx::cp_async_wait<0>();
  if (part == nullptr) return;  // no dweight / dbias asked for
  __syncthreads();  // the ring is reused for the warps' sums
  // Each warp stores its accumulators (rows of kCols, padded), then the block adds them in warp
  // order, a thread a column at a time.
  constexpr int kCols = kSlot * kN;
  float* const acc = reinterpret_cast<float*>(smem_raw);  // [kWarps][dweight, dbias][kCols]
  {
    float* const mine = acc + warp * 2 * kCols;
#pragma unroll
    for (int p = 0; p < kPacks; ++p) {
      const int c = (lane + p * kWarp) * kN;
#pragma unroll
      for (int e = 0; e < kN; ++e) {
        mine[c + e] = aw[p * kN + e];
        mine[kCols + c + e] = ab[p * kN + e];
      }
    }
  }
  __syncthreads();
  float* const out = part + int64_t{blockIdx.x} * 2 * d;
  for (int i = threadIdx.x; i < 2 * d; i += kThreads) {
    const int at = i < d ? i : kCols + i - d;
    float a = 0.f;
#pragma unroll
    for (int k = 0; k < kWarps; ++k) a += acc[k * 2 * kCols + at];
    out[i] = a;
  }
  if constexpr (kGridSync) {
    cooperative_groups::this_grid().sync();  // every block's partial row written and visible
    finish_columns(part, d, dweight, dbias, acc);
  }
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

// How many blocks of `kernel` (kThreads threads, `smem` bytes) can be resident at once on
// `device` for a cooperative launch (0 where the device cannot launch one); worked out once per
// kernel and device (keyed by the kernel's address: the kPacks instances share a type), lowered to
// `lower_to` after a refused launch.
int64_t resident_blocks(const void* kernel, size_t smem, int device, int64_t lower_to = -1) {
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
  PIT_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, smem));
  return known[key] = coop != 0 ? int64_t{per_sm} * sm_count(device) : 0;
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
  // As many stages a warp as the resident blocks need, then the fewest blocks that take the rows
  // in that many (16384 rows on 132 SMs: 8 stages, 256 blocks; with 264 every other warp's last
  // stage was half empty, and the backward took 0.8 us longer).
  const int64_t most = std::min<int64_t>(kMaxBlocks, int64_t{kMinBlocks} * sm_count(stream.device.index));
  const int64_t stages = std::max(ceil_div(rows, kWarps * kRows * most), ceil_div(kMinRowsPerWarp, kRows));
  const int64_t blocks = ceil_div(rows, kWarps * kRows * stages);
  DeviceGuard guard(stream.device.index);
  const cudaStream_t s = native(stream);
  // The block partials, from the stream's cache (released to it when this returns: later work on
  // the stream runs after the finishing kernel); none without dweight / dbias.
  const bool params = dweight != nullptr || dbias != nullptr;
  const auto workspace =
      params ? Storage::allocate(static_cast<size_t>(blocks * 2 * d) * sizeof(float), stream.device, stream) : nullptr;
  float* part = params ? static_cast<float*>(workspace->data()) : nullptr;
  // One kernel where the grid may synchronise (a cooperative launch, every block resident at
  // once: 0.0354 -> 0.0348 ms on an H200 at 16384 x 1024 bf16); else the partials are added by a second
  // kernel. PIT_NORM_NO_GRID_SYNC=1 forces the second way (tests run both).
  const char* no_sync = std::getenv("PIT_NORM_NO_GRID_SYNC");
  const bool try_sync = params && !(no_sync != nullptr && no_sync[0] == '1');
  bool synced = false;
  const auto launch = [&]<int kPacks>() {
    constexpr size_t ring = size_t{kWarps} * kDepth * kRows * 2 * kWarp * kPacks * sizeof(Pack<T>);
    constexpr size_t smem = ring + kWarp * kPacks * sizeof(Pack<T>) + kWarps * kDepth * kRows * 2 * sizeof(float);  // rings, weight, stats
    static_assert(size_t{kWarps} * 2 * kWarp * kPacks * kN * sizeof(float) <= ring, "the warps' sums fit in the rings");
    const float inv_d = 1.f / static_cast<float>(d);
    const void* coop = reinterpret_cast<const void*>(fused_backward_kernel<T, kPacks, true>);
    if (try_sync && resident_blocks(coop, smem, stream.device.index) >= blocks) {
      OneAttributeLaunch l(dim3(static_cast<unsigned>(blocks)), dim3(kThreads), smem, s);
      l.attr.id = cudaLaunchAttributeCooperative;
      l.attr.val.cooperative = 1;
      const cudaError_t e = cudaLaunchKernelEx(&l.cfg, fused_backward_kernel<T, kPacks, true>, dy, sdy, x, sx, w,
                                               mean, rstd, dx, rows, static_cast<int>(d), inv_d, part, dweight, dbias);
      if (e == cudaSuccess) {
        synced = true;
        return;
      }
      // The driver may hold fewer blocks resident than the occupancy query said (an H200 refused
      // 257 where it reported 264): remember the bound, take the second way.
      if (e != cudaErrorCooperativeLaunchTooLarge) PIT_CUDA_CHECK(e);
      (void)cudaGetLastError();
      resident_blocks(coop, smem, stream.device.index, blocks - 1);
    }
    auto* kernel = fused_backward_kernel<T, kPacks, false>;
    if (smem > 48 * 1024)
      PIT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    kernel<<<static_cast<unsigned>(blocks), kThreads, smem, s>>>(dy, sdy, x, sx, w, mean, rstd, dx, rows,
                                                                 static_cast<int>(d), inv_d, part, nullptr, nullptr);
  };
  switch (lane_packs) {
    case 1: launch.template operator()<1>(); break;
    case 2: launch.template operator()<2>(); break;
    default: launch.template operator()<4>(); break;
  }
  PIT_CUDA_CHECK(cudaGetLastError());
  if (!params || synced) return true;
  OneAttributeLaunch l(dim3(static_cast<unsigned>(ceil_div(2 * d, kFinishCols))), dim3(kFinishCols * kFinishLanes), 0, s);
  l.attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  l.attr.val.programmaticStreamSerializationAllowed = 1;
  PIT_CUDA_CHECK(cudaLaunchKernelEx(&l.cfg, fused_finish_kernel<T>, static_cast<const float*>(part), blocks,
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
