// CUDA reductions (sum/mean, var, max) over the middle dim of a strided [outer, mid, inner]
// view. Three kernels, picked from the layout:
//
// - rows_warp: the reduced dim is contiguous (mid stride 1), at least a warp's worth of elements
//   (shorter rows go to `columns`) and at most kWarpRowMax: one warp per output, lanes striding
//   over the row with 16-byte loads when every row is aligned, then a shuffle tree. E.g. the
//   last dim of [16384, 1024].
// - rows_block: contiguous and long: one block per output, or, when there are too few outputs
//   to fill the GPU (a full reduction is one output), `splits` blocks per output that each
//   write a partial result, merged by finish_partials. E.g. everything of a [16384, 1024].
// - columns: the reduced dim is strided (e.g. the first dim of [16384, 1024], a bias
//   gradient). Each block covers 32 neighbouring outputs with 8 thread-rows: a warp reads 32
//   neighbouring elements of one input row (coalesced), the 8 thread-rows walk different input
//   rows, and their 8 partials merge through shared memory. When the outputs alone do not fill
//   the GPU, grid.y splits the rows into chunks whose partials finish_partials merges. Where
//   the outputs are contiguous and aligned, a thread covers a 16-byte pack of them instead of
//   one (columns_vec: sum and mean, whose accumulators are small).
//
// Determinism: every partial covers a fixed part of the input, and partials merge in a fixed
// order (shuffle trees, shared-memory trees, split index order); no atomics. The same input at
// the same alignment therefore gives the same bits on every run and GPU of one architecture.
// Accumulation in f32 (f64 for f64); var uses Welford's update and Chan's merge.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/convert.h"
#include "core/cuda/runtime.h"
#include "core/memory.h"
#include "ops/cuda/device_utils.cuh"
#include "ops/cuda/reduce.h"

namespace pit::cuda {
namespace {

// Rows up to this many elements take one warp each (<= 64 loads of 16 bytes per lane for f32);
// longer rows take a block.
constexpr int64_t kWarpRowMax = 2048;
// rows_warp: 8 warps per block (8 outputs per block).
constexpr int kRowsWarpThreads = 256;
// rows_block: 256 threads per row, so 8 warps keep 8 loads of 16 bytes in flight each.
constexpr int kRowsBlockThreads = 256;
// A split of rows_block covers at least this many vectors per thread, so each block's
// bookkeeping and its partial stay small next to its loads.
constexpr int64_t kMinVectorsPerThread = 4;
// columns: 32 outputs (one warp wide) x 8 thread-rows.
constexpr int kColsX = 32;
constexpr int kColsY = 8;
// columns: a split covers at least this many input rows per thread-row.
constexpr int64_t kMinRowsPerThreadRow = 8;
// Blocks per SM the splitting aims for: 4 resident blocks of 256 threads per SM hides latency.
constexpr int64_t kBlocksPerSm = 4;
// Grid-stride loops launch at most this many blocks.
constexpr int64_t kMaxGrid = int64_t{1} << 30;
constexpr int64_t kMaxGridY = 65535;

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// ---- element access ---------------------------------------------------------------------------

// ---- reduction operators ---------------------------------------------------------------------
// Op::Acc identity(); Acc step(Acc, C x, int64_t index); Acc merge(Acc a, Acc b) with a the
// partial of the earlier positions where that matters; Acc shfl_down(Acc, int).

template <typename C>
struct SumOp {
  using Acc = C;
  __device__ static Acc identity() { return C(0); }
  __device__ static Acc step(Acc a, C x, int64_t) { return a + x; }
  __device__ static Acc merge(Acc a, Acc b) { return a + b; }
  __device__ static Acc shfl_down(Acc a, int off) { return __shfl_down_sync(kFullMask, a, off); }
};

// d / n for the running mean. f32 uses the fast division (2 ulp): a tiny relative error in the
// mean's update leaves Welford's m2 update consistent, and the IEEE division was the slowest
// step of the chain.
__device__ __forceinline__ float quotient(float d, float n) { return __fdividef(d, n); }
__device__ __forceinline__ double quotient(double d, double n) { return d / n; }

template <typename C>
struct Welford {
  C mean, m2;
  long long n;
};

template <typename C>
struct VarOp {
  using Acc = Welford<C>;
  __device__ static Acc identity() { return {C(0), C(0), 0}; }
  __device__ static Acc step(Acc a, C x, int64_t) {
    const long long n = a.n + 1;
    const C d = x - a.mean;
    const C mean = a.mean + quotient(d, static_cast<C>(n));
    return {mean, a.m2 + d * (x - mean), n};
  }
  __device__ static Acc merge(Acc a, Acc b) {
    if (b.n == 0) return a;
    if (a.n == 0) return b;
    const long long n = a.n + b.n;
    const C d = b.mean - a.mean, fb = static_cast<C>(b.n) / static_cast<C>(n);
    return {a.mean + d * fb, a.m2 + b.m2 + d * d * static_cast<C>(a.n) * fb, n};
  }
  __device__ static Acc shfl_down(Acc a, int off) {
    return {__shfl_down_sync(kFullMask, a.mean, off), __shfl_down_sync(kFullMask, a.m2, off),
            __shfl_down_sync(kFullMask, a.n, off)};
  }
};

template <typename C>
struct MaxAcc {
  C value;
  long long index;  // -1: nothing seen
};

template <typename C>
struct MaxOp {
  using Acc = MaxAcc<C>;
  // Whether (v, i) replaces `best`: larger, or equal and earlier; NaN beats numbers, and the
  // earlier NaN beats a later one. Order-independent, so any merge order gives the same result.
  __device__ static bool better(const Acc& best, C v, long long i) {
    if (best.index < 0) return true;
    const bool best_nan = best.value != best.value, v_nan = v != v;
    if (best_nan || v_nan) return v_nan && (!best_nan || i < best.index);
    return v > best.value || (v == best.value && i < best.index);
  }
  __device__ static Acc identity() { return {-std::numeric_limits<C>::infinity(), -1}; }
  __device__ static Acc step(Acc a, C x, int64_t i) {
    return better(a, x, i) ? Acc{x, static_cast<long long>(i)} : a;
  }
  __device__ static Acc merge(Acc a, Acc b) {
    return b.index >= 0 && better(a, b.value, b.index) ? b : a;
  }
  __device__ static Acc shfl_down(Acc a, int off) {
    return {__shfl_down_sync(kFullMask, a.value, off), __shfl_down_sync(kFullMask, a.index, off)};
  }
};

// Where results go; Op-specific writers below.
struct Output {
  void* out;
  int64_t* indices;  // max only
  double scale;      // sum only
  double denom;      // var only: max(0, mid - correction)
};

template <typename T, typename C>
__device__ __forceinline__ void write(const Output& o, int64_t j, C acc) {  // SumOp
  static_cast<T*>(o.out)[j] = convert<T>(acc * static_cast<C>(o.scale));
}
template <typename T, typename C>
__device__ __forceinline__ void write(const Output& o, int64_t j, Welford<C> acc) {
  static_cast<T*>(o.out)[j] = convert<T>(acc.m2 / static_cast<C>(o.denom));
}
template <typename T, typename C>
__device__ __forceinline__ void write(const Output& o, int64_t j, MaxAcc<C> acc) {
  static_cast<T*>(o.out)[j] = convert<T>(acc.value);
  o.indices[j] = acc.index;
}

template <typename Op>
__device__ __forceinline__ typename Op::Acc warp_merge(typename Op::Acc acc) {
#pragma unroll
  for (int off = kWarp / 2; off > 0; off /= 2) acc = Op::merge(acc, Op::shfl_down(acc, off));
  return acc;  // complete in lane 0
}

// Merge over the whole block (blockDim.x a multiple of 32, <= 1024); complete in thread 0.
template <typename Op>
__device__ __forceinline__ typename Op::Acc block_merge(typename Op::Acc acc) {
  __shared__ typename Op::Acc partial[kWarp];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  acc = warp_merge<Op>(acc);
  __syncthreads();  // `partial` may still be read by a previous call
  if (lane == 0) partial[warp] = acc;
  __syncthreads();
  if (warp == 0) {
    acc = lane < static_cast<int>(blockDim.x / kWarp) ? partial[lane] : Op::identity();
    acc = warp_merge<Op>(acc);
  }
  return acc;
}

// Loads issued back to back before their values are folded: the fold of max and var is a
// dependent chain with branches, which the compiler does not hoist loads across by itself.
constexpr int kBatch = 4;

// Thread t of nt folds elements [begin, end) of a contiguous row: 16-byte packs
// (t, t + nt, ...) when `vec` (row + begin 16-byte aligned), then the scalar rest. Each thread
// folds its elements in increasing index order.
template <typename T, typename Op>
__device__ __forceinline__ typename Op::Acc fold_run(const T* __restrict__ row, int64_t begin,
                                                     int64_t end, int t, int nt, bool vec) {
  using C = compute_t<T>;
  typename Op::Acc acc = Op::identity();
  int64_t k = begin;
  if (vec) {
    constexpr int kN = Pack<T>::kN;
    const int64_t packs = (end - begin) / kN;
    const Pack<T>* p = reinterpret_cast<const Pack<T>*>(row + begin);
    int64_t q = t;
    for (; q + (kBatch - 1) * int64_t{nt} < packs; q += kBatch * int64_t{nt}) {
      Pack<T> v[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) v[u] = p[q + u * nt];
#pragma unroll
      for (int u = 0; u < kBatch; ++u)
#pragma unroll
        for (int e = 0; e < kN; ++e)
          acc = Op::step(acc, static_cast<C>(widen(v[u].v[e])), begin + (q + u * nt) * kN + e);
    }
    for (; q < packs; q += nt) {
      const Pack<T> v = p[q];
#pragma unroll
      for (int e = 0; e < kN; ++e)
        acc = Op::step(acc, static_cast<C>(widen(v.v[e])), begin + q * kN + e);
    }
    k = begin + packs * kN;
  }
  k += t;
  for (; k + (kBatch - 1) * int64_t{nt} < end; k += kBatch * int64_t{nt}) {
    C v[kBatch];
#pragma unroll
    for (int u = 0; u < kBatch; ++u) v[u] = static_cast<C>(widen(row[k + u * nt]));
#pragma unroll
    for (int u = 0; u < kBatch; ++u) acc = Op::step(acc, v[u], k + u * nt);
  }
  for (; k < end; k += nt) acc = Op::step(acc, static_cast<C>(widen(row[k])), k);
  return acc;
}

// ---- kernels ----------------------------------------------------------------------------------

// One warp per output j = o * inner + i; the row starts at o * so + i * si.
template <typename T, typename Op>
__global__ void rows_warp_kernel(const T* __restrict__ x, int64_t outputs, int64_t inner,
                                 int64_t so, int64_t si, int64_t mid, bool vec, Output out) {
  const int lane = threadIdx.x % kWarp;
  const int64_t warps = int64_t{gridDim.x} * (blockDim.x / kWarp);
  for (int64_t j = blockIdx.x * int64_t{blockDim.x / kWarp} + threadIdx.x / kWarp; j < outputs;
       j += warps) {
    const T* row = x + (j / inner) * so + (j % inner) * si;
    const typename Op::Acc acc = warp_merge<Op>(fold_run<T, Op>(row, 0, mid, lane, kWarp, vec));
    if (lane == 0) write<T>(out, j, acc);
  }
}

// `splits` blocks per output; block b covers output b / splits, elements
// [(b % splits) * chunk, ...). With one split the block writes the output, otherwise its
// partial at partials[b].
template <typename T, typename Op>
__global__ void rows_block_kernel(const T* __restrict__ x, int64_t outputs, int64_t inner,
                                  int64_t so, int64_t si, int64_t mid, int64_t splits,
                                  int64_t chunk, bool vec, Output out,
                                  typename Op::Acc* __restrict__ partials) {
  for (int64_t b = blockIdx.x; b < outputs * splits; b += gridDim.x) {
    const int64_t j = b / splits, s = b % splits;
    const T* row = x + (j / inner) * so + (j % inner) * si;
    const int64_t begin = s * chunk, end = min64(mid, begin + chunk);
    typename Op::Acc acc = fold_run<T, Op>(row, begin, end, threadIdx.x, blockDim.x, vec);
    acc = block_merge<Op>(acc);
    if (threadIdx.x == 0) {
      if (splits == 1)
        write<T>(out, j, acc);
      else
        partials[b] = acc;
    }
  }
}

// Block (kColsX, kColsY): outputs [bx * 32, bx * 32 + 32), input rows of split blockIdx.y.
// With one split the block writes the outputs, otherwise partials[split * outputs + j].
template <typename T, typename Op>
__global__ void columns_kernel(const T* __restrict__ x, int64_t outputs, int64_t inner, int64_t so,
                               int64_t sm, int64_t si, int64_t mid, int64_t chunk, Output out,
                               typename Op::Acc* __restrict__ partials) {
  using C = compute_t<T>;
  __shared__ typename Op::Acc part[kColsY][kColsX];
  const int64_t split = blockIdx.y, splits = gridDim.y;
  const int64_t begin = split * chunk, end = min64(mid, begin + chunk);
  const int64_t col_blocks = ceil_div(outputs, kColsX);
  for (int64_t bx = blockIdx.x; bx < col_blocks; bx += gridDim.x) {
    const int64_t j = bx * kColsX + threadIdx.x;
    typename Op::Acc acc = Op::identity();
    if (j < outputs) {
      const T* col = x + (j / inner) * so + (j % inner) * si;
      int64_t m = begin + threadIdx.y;
      for (; m + (kBatch - 1) * kColsY < end; m += kBatch * kColsY) {
        C v[kBatch];
#pragma unroll
        for (int u = 0; u < kBatch; ++u) v[u] = static_cast<C>(widen(col[(m + u * kColsY) * sm]));
#pragma unroll
        for (int u = 0; u < kBatch; ++u) acc = Op::step(acc, v[u], m + u * kColsY);
      }
      for (; m < end; m += kColsY) acc = Op::step(acc, static_cast<C>(widen(col[m * sm])), m);
    }
    part[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && j < outputs) {
#pragma unroll
      for (int y = 1; y < kColsY; ++y) acc = Op::merge(acc, part[y][threadIdx.x]);
      if (splits == 1)
        write<T>(out, j, acc);
      else
        partials[split * outputs + j] = acc;
    }
    __syncthreads();  // `part` is reused by the next bx
  }
}

// columns with 16-byte loads: thread x of a block covers the kN neighbouring outputs of one pack,
// so a warp reads 512 contiguous bytes of an input row per load instead of 32 elements. Needs
// the outputs of a pack to be contiguous in memory and 16-byte aligned (checked by the launch)
// and a small accumulator (the shared merge buffer holds kColsY x 32 x kN of them).
template <typename T, typename Op>
__global__ void columns_vec_kernel(const T* __restrict__ x, int64_t outputs, int64_t inner,
                                   int64_t so, int64_t sm, int64_t mid, int64_t chunk, Output out,
                                   typename Op::Acc* __restrict__ partials) {
  using C = compute_t<T>;
  using Acc = typename Op::Acc;
  constexpr int kN = Pack<T>::kN;
  __shared__ Acc part[kColsY][kColsX * kN];
  const int64_t split = blockIdx.y, splits = gridDim.y;
  const int64_t begin = split * chunk, end = min64(mid, begin + chunk);
  const int64_t col_blocks = ceil_div(outputs, int64_t{kColsX} * kN);
  for (int64_t bx = blockIdx.x; bx < col_blocks; bx += gridDim.x) {
    const int64_t j0 = (bx * kColsX + threadIdx.x) * kN;
    Acc acc[kN];
#pragma unroll
    for (int e = 0; e < kN; ++e) acc[e] = Op::identity();
    if (j0 < outputs) {
      const auto* col = reinterpret_cast<const Pack<T>*>(x + (j0 / inner) * so + j0 % inner);
      const int64_t pstride = sm / kN;  // row stride in packs
      int64_t m = begin + threadIdx.y;
      for (; m + (kBatch - 1) * kColsY < end; m += kBatch * kColsY) {
        Pack<T> v[kBatch];
#pragma unroll
        for (int u = 0; u < kBatch; ++u) v[u] = col[(m + u * kColsY) * pstride];
#pragma unroll
        for (int u = 0; u < kBatch; ++u)
#pragma unroll
          for (int e = 0; e < kN; ++e) acc[e] = Op::step(acc[e], static_cast<C>(widen(v[u].v[e])), m + u * kColsY);
      }
      for (; m < end; m += kColsY) {
        const Pack<T> v = col[m * pstride];
#pragma unroll
        for (int e = 0; e < kN; ++e) acc[e] = Op::step(acc[e], static_cast<C>(widen(v.v[e])), m);
      }
    }
#pragma unroll
    for (int e = 0; e < kN; ++e) part[threadIdx.y][threadIdx.x * kN + e] = acc[e];
    __syncthreads();
    if (threadIdx.y == 0 && j0 < outputs) {
#pragma unroll
      for (int e = 0; e < kN; ++e) {
        Acc a = acc[e];
#pragma unroll
        for (int y = 1; y < kColsY; ++y) a = Op::merge(a, part[y][threadIdx.x * kN + e]);
        if (splits == 1)
          write<T>(out, j0 + e, a);
        else
          partials[split * outputs + j0 + e] = a;
      }
    }
    __syncthreads();  // `part` is reused by the next bx
  }
}

// One warp per output: merges partials[j * pj + s * ps] over s in [0, splits), lane-strided,
// then a shuffle tree.
template <typename T, typename Op>
__global__ void finish_partials_kernel(const typename Op::Acc* __restrict__ partials,
                                       int64_t outputs, int64_t splits, int64_t pj, int64_t ps,
                                       Output out) {
  const int lane = threadIdx.x % kWarp;
  const int64_t warps = int64_t{gridDim.x} * (blockDim.x / kWarp);
  for (int64_t j = blockIdx.x * int64_t{blockDim.x / kWarp} + threadIdx.x / kWarp; j < outputs;
       j += warps) {
    typename Op::Acc acc = Op::identity();
    for (int64_t s = lane; s < splits; s += kWarp) acc = Op::merge(acc, partials[j * pj + s * ps]);
    acc = warp_merge<Op>(acc);
    if (lane == 0) write<T>(out, j, acc);
  }
}

// ---- launch ----------------------------------------------------------------------------------

template <typename T, typename Op>
void launch(const View3& v, const Output& out, StreamRef stream) {
  using Acc = typename Op::Acc;
  const T* x = static_cast<const T*>(v.data);
  const int64_t outer = v.sizes[0], mid = v.sizes[1], inner = v.sizes[2];
  const int64_t so = v.strides[0], sm = v.strides[1], si = v.strides[2];
  const int64_t outputs = outer * inner;
  if (outputs == 0 || mid == 0) return;
  DeviceGuard guard(stream.device.index);
  const cudaStream_t s = native(stream);
  const int64_t target_blocks = kBlocksPerSm * sm_count(stream.device.index);
  constexpr int64_t kBytes = sizeof(T);
  std::shared_ptr<Storage> workspace;  // partials; returned to the stream's cache afterwards

  const auto finish = [&](const Acc* partials, int64_t splits, int64_t pj, int64_t ps) {
    constexpr int kWarpsPerBlock = 8;  // 256 threads, one warp per output
    const int64_t blocks = std::min(ceil_div(outputs, kWarpsPerBlock), kMaxGrid);
    finish_partials_kernel<T, Op><<<static_cast<unsigned>(blocks), kWarpsPerBlock * kWarp, 0, s>>>(
        partials, outputs, splits, pj, ps, out);
    PIT_CUDA_CHECK(cudaGetLastError());
  };
  const auto allocate = [&](int64_t count) {
    workspace = Storage::allocate(static_cast<size_t>(count) * sizeof(Acc), stream.device, stream);
    return static_cast<Acc*>(workspace->data());
  };

  if (sm == 1 && mid >= kWarp) {
    // Rows are contiguous. Packs need every row start 16-byte aligned.
    const bool vec = aligned16(x) && (outer == 1 || (so * kBytes) % 16 == 0) &&
                     (inner == 1 || (si * kBytes) % 16 == 0);
    if (mid <= kWarpRowMax) {
      constexpr int kWarpsPerBlock = kRowsWarpThreads / kWarp;
      const int64_t blocks = std::min(ceil_div(outputs, kWarpsPerBlock), kMaxGrid);
      rows_warp_kernel<T, Op><<<static_cast<unsigned>(blocks), kRowsWarpThreads, 0, s>>>(
          x, outputs, inner, so, si, mid, vec, out);
      PIT_CUDA_CHECK(cudaGetLastError());
      return;
    }
    const int64_t pack = Pack<T>::kN;
    const int64_t min_chunk = kRowsBlockThreads * kMinVectorsPerThread * pack;
    int64_t splits = 1;
    if (outputs < target_blocks)
      splits =
          std::clamp<int64_t>(std::min(ceil_div(target_blocks, outputs), ceil_div(mid, min_chunk)),
                              1, kMaxGrid / outputs);
    // Chunks of whole packs keep every split's start aligned.
    const int64_t chunk = ceil_div(ceil_div(mid, splits), pack) * pack;
    splits = ceil_div(mid, chunk);
    Acc* partials = splits > 1 ? allocate(outputs * splits) : nullptr;
    const int64_t blocks = std::min(outputs * splits, kMaxGrid);
    rows_block_kernel<T, Op><<<static_cast<unsigned>(blocks), kRowsBlockThreads, 0, s>>>(
        x, outputs, inner, so, si, mid, splits, chunk, vec, out, partials);
    PIT_CUDA_CHECK(cudaGetLastError());
    if (splits > 1) finish(partials, splits, splits, 1);
    return;
  }

  // Strided (or very short) reduced dim: columns, with 16-byte loads when each pack of outputs
  // is contiguous and aligned (e.g. the bias gradient, the first dim of a contiguous matrix).
  constexpr int64_t kN = Pack<T>::kN;
  const bool vec = sizeof(Acc) <= 8 && si == 1 && inner % kN == 0 && so % kN == 0 && sm % kN == 0 &&
                   aligned16(x);
  const int64_t cols_per_block = vec ? kColsX * kN : kColsX;
  const int64_t col_blocks = ceil_div(outputs, cols_per_block);
  int64_t splits = 1;
  if (col_blocks < target_blocks)
    splits = std::clamp<int64_t>(
        std::min(ceil_div(target_blocks, col_blocks), ceil_div(mid, kColsY * kMinRowsPerThreadRow)),
        1, kMaxGridY);
  const int64_t chunk = ceil_div(mid, splits);
  splits = ceil_div(mid, chunk);
  Acc* partials = splits > 1 ? allocate(outputs * splits) : nullptr;
  const dim3 grid(static_cast<unsigned>(std::min(col_blocks, kMaxGrid)),
                  static_cast<unsigned>(splits));
  bool launched = false;
  if constexpr (sizeof(Acc) <= 8) {  // only then is columns_vec_kernel instantiated
    if (vec) {
      columns_vec_kernel<T, Op><<<grid, dim3(kColsX, kColsY), 0, s>>>(x, outputs, inner, so, sm, mid,
                                                                      chunk, out, partials);
      launched = true;
    }
  }
  if (!launched)
    columns_kernel<T, Op><<<grid, dim3(kColsX, kColsY), 0, s>>>(x, outputs, inner, so, sm, si, mid,
                                                                chunk, out, partials);
  PIT_CUDA_CHECK(cudaGetLastError());
  if (splits > 1) finish(partials, splits, 1, outputs);
}

}  // namespace

void reduce_sum(const View3& x, void* out, double scale, StreamRef stream) {
  dispatch<DType::f32, DType::f64, DType::f16, DType::bf16>(x.dtype, "sum", [&]<typename T>() {
    launch<T, SumOp<compute_t<T>>>(x, Output{out, nullptr, scale, 1.0}, stream);
  });
}

void reduce_var(const View3& x, void* out, int64_t correction, StreamRef stream) {
  const double denom = static_cast<double>(std::max<int64_t>(0, x.sizes[1] - correction));
  dispatch<DType::f32, DType::f64, DType::f16, DType::bf16>(x.dtype, "var", [&]<typename T>() {
    launch<T, VarOp<compute_t<T>>>(x, Output{out, nullptr, 1.0, denom}, stream);
  });
}

void reduce_max(const View3& x, void* values, int64_t* indices, StreamRef stream) {
  dispatch<DType::f32, DType::f64, DType::f16, DType::bf16>(x.dtype, "max", [&]<typename T>() {
    launch<T, MaxOp<compute_t<T>>>(x, Output{values, indices, 1.0, 1.0}, stream);
  });
}

}  // namespace pit::cuda
