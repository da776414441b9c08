// CUDA softmax, log_softmax and their backward along the middle dim of [outer, mid, inner].
//
// Rows (inner == 1, unit stride along mid) take one of two paths:
// - cached: every row start 16-byte aligned, the length a multiple of a 16-byte pack and at
//   most 1024 elements (32 lanes x 8 packs of f32). A group of lanes (the narrowest
//   power of two giving each lane one pack, up to a warp with 8 packs per lane) loads the row
//   into registers once, merges the online (max, sum) through shuffles within the group and
//   writes from registers. Short rows therefore share a warp instead of idling most of it.
// - streaming: anything else of at least a warp's length (misaligned views, odd lengths, long
//   rows): one warp per row up to kWarpRowMax elements, one block per row beyond. Pass 1 reads
//   the row keeping an online (max, sum of exp(x - max)) pair per thread, rescaling the sum when
//   the max grows; the pairs merge through shuffles (and shared memory across warps). Pass 2
//   reads the row again (from L1/L2) and writes. 16-byte loads when every row start is aligned.
//
// Columns (any other layout, e.g. softmax over a dim that is not last, a transposed input, or
// short misaligned rows): one thread per (outer, inner) column, walking mid with its stride;
// neighbouring threads take neighbouring inner indices, so loads and stores coalesce when the
// inner dim is contiguous. Same two passes. (Few, very long columns run serially per thread.)
//
// Math in f32 (f64 for f64), results rounded once. No reduction crosses a launch, and merge
// orders are fixed, so results are deterministic.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/convert.h"
#include "core/cuda/runtime.h"
#include "ops/cuda/softmax.h"

namespace pit::cuda {
namespace {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kWarp = 32;
// Rows up to this long take one warp (<= 32 elements per lane); longer rows take a block.
constexpr int64_t kWarpRowMax = 1024;
// Warp-per-row kernels: 8 warps (8 rows) per block.
constexpr int kRowsWarpThreads = 256;
// Block-per-row kernels: 256 threads, 512 for rows of 8192+ elements so each thread still
// has a few 16-byte loads in flight without leaving the SM short of warps.
constexpr int kRowsBlockThreads = 256;
constexpr int kLongRowsBlockThreads = 512;
constexpr int64_t kLongRow = 8192;
// Register path: rows of up to 32 lanes x kMaxCachedPacks packs stay in registers between the
// passes (8 packs = 32 registers per operand); 256 threads per block.
constexpr int64_t kMaxCachedPacks = 8;
// ... and at most 1024 values per row: longer f16/bf16 rows would need over 128 registers per
// thread in the backward kernel (two operands), leaving too few warps per SM.
constexpr int64_t kMaxCachedElems = 1024;
constexpr int kCachedThreads = 256;
// Column kernels: one thread per column, 256 per block.
constexpr int kColsThreads = 256;
// Grid-stride loops launch at most this many blocks.
constexpr int64_t kMaxGrid = int64_t{1} << 30;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <typename T>
using compute_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

__device__ __forceinline__ float widen(Half v) { return __half2float(__ushort_as_half(v.bits)); }
__device__ __forceinline__ float widen(BFloat16 v) {
  return __uint_as_float(static_cast<uint32_t>(v.bits) << 16);
}
__device__ __forceinline__ float widen(float v) { return v; }
__device__ __forceinline__ double widen(double v) { return v; }

__device__ __forceinline__ float ex(float v) { return expf(v); }
__device__ __forceinline__ double ex(double v) { return exp(v); }
__device__ __forceinline__ float ln(float v) { return logf(v); }
__device__ __forceinline__ double ln(double v) { return log(v); }

template <typename T>
struct alignas(16) Pack {
  static constexpr int kN = 16 / sizeof(T);
  T v[kN];
};

// ---- online max / sum --------------------------------------------------------------------------

// m: the largest element seen; s: sum of exp(x - m) over the elements seen. -inf elements add
// nothing (so a row that starts masked stays finite); a row of only -inf ends with s = 0 and
// gives NaN, as in PyTorch; NaN elements make s NaN, hence the whole row.
template <typename C>
struct MaxSum {
  C m, s;
};

template <typename C>
__device__ __forceinline__ MaxSum<C> ms_identity() {
  return {-std::numeric_limits<C>::infinity(), C(0)};
}

template <typename C>
__device__ __forceinline__ MaxSum<C> ms_step(MaxSum<C> a, C x) {
  if (x > a.m) return {x, a.s * ex(a.m - x) + C(1)};
  if (x != -std::numeric_limits<C>::infinity()) a.s += ex(x - a.m);
  return a;
}

template <typename C>
__device__ __forceinline__ MaxSum<C> ms_merge(MaxSum<C> a, MaxSum<C> b) {
  const C m = a.m > b.m ? a.m : b.m;
  if (m == -std::numeric_limits<C>::infinity()) return {m, a.s + b.s};
  return {m, a.s * ex(a.m - m) + b.s * ex(b.m - m)};
}

// Warp-wide merge; every lane returns lane 0's result.
template <typename C>
__device__ __forceinline__ MaxSum<C> warp_ms(MaxSum<C> a) {
#pragma unroll
  for (int off = kWarp / 2; off > 0; off /= 2)
    a = ms_merge(a, MaxSum<C>{__shfl_down_sync(kFullMask, a.m, off), __shfl_down_sync(kFullMask, a.s, off)});
  return {__shfl_sync(kFullMask, a.m, 0), __shfl_sync(kFullMask, a.s, 0)};
}

// Merge over aligned groups of kWidth lanes (a power of two <= 32); every lane of a group gets
// its group's result.
template <int kWidth, typename C>
__device__ __forceinline__ MaxSum<C> group_ms(MaxSum<C> a) {
#pragma unroll
  for (int off = kWidth / 2; off > 0; off /= 2)
    a = ms_merge(a, MaxSum<C>{__shfl_down_sync(kFullMask, a.m, off, kWidth),
                              __shfl_down_sync(kFullMask, a.s, off, kWidth)});
  return {__shfl_sync(kFullMask, a.m, 0, kWidth), __shfl_sync(kFullMask, a.s, 0, kWidth)};
}

template <int kWidth, typename C>
__device__ __forceinline__ C group_sum(C a) {
#pragma unroll
  for (int off = kWidth / 2; off > 0; off /= 2) a += __shfl_down_sync(kFullMask, a, off, kWidth);
  return __shfl_sync(kFullMask, a, 0, kWidth);
}

template <typename C>
__device__ __forceinline__ C warp_sum(C a) {
#pragma unroll
  for (int off = kWarp / 2; off > 0; off /= 2) a += __shfl_down_sync(kFullMask, a, off);
  return __shfl_sync(kFullMask, a, 0);
}

// Block-wide versions (blockDim.x a multiple of 32, <= 1024); every thread gets the result.
template <typename C>
__device__ __forceinline__ MaxSum<C> block_ms(MaxSum<C> a) {
  __shared__ C ms_m[kWarp], ms_s[kWarp];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  a = warp_ms(a);
  __syncthreads();  // the arrays may still be read by a previous row
  if (lane == 0) {
    ms_m[warp] = a.m;
    ms_s[warp] = a.s;
  }
  __syncthreads();
  a = lane < static_cast<int>(blockDim.x / kWarp) ? MaxSum<C>{ms_m[lane], ms_s[lane]} : ms_identity<C>();
  return warp_ms(a);  // every warp merges the same values in the same order
}

template <typename C>
__device__ __forceinline__ C block_sum(C a) {
  __shared__ C part[kWarp];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  a = warp_sum(a);
  __syncthreads();
  if (lane == 0) part[warp] = a;
  __syncthreads();
  a = lane < static_cast<int>(blockDim.x / kWarp) ? part[lane] : C(0);
  return warp_sum(a);
}

// ---- row traversal ---------------------------------------------------------------------------
// Thread t of nt visits the elements of a row of n: 16-byte packs t, t + nt, ... when `vec`,
// then the scalar rest.

template <typename T, typename F>
__device__ __forceinline__ void visit(const T* __restrict__ a, const T* __restrict__ b, int64_t n,
                                      int t, int nt, bool vec, F&& f) {  // f(a[k], b[k])
  int64_t k = 0;
  if (vec) {
    constexpr int kN = Pack<T>::kN;
    const int64_t packs = n / kN;
    const auto* pa = reinterpret_cast<const Pack<T>*>(a);
    const auto* pb = reinterpret_cast<const Pack<T>*>(b);
    for (int64_t q = t; q < packs; q += nt) {
      const Pack<T> va = pa[q], vb = pb[q];
#pragma unroll
      for (int e = 0; e < kN; ++e) f(widen(va.v[e]), widen(vb.v[e]));
    }
    k = packs * kN;
  }
  for (k += t; k < n; k += nt) f(widen(a[k]), widen(b[k]));
}

template <typename T, typename F>
__device__ __forceinline__ void transform(const T* __restrict__ a, const T* __restrict__ b,
                                          T* __restrict__ out, int64_t n, int t, int nt, bool vec,
                                          F&& f) {  // out[k] = f(a[k], b[k])
  int64_t k = 0;
  if (vec) {
    constexpr int kN = Pack<T>::kN;
    const int64_t packs = n / kN;
    const auto* pa = reinterpret_cast<const Pack<T>*>(a);
    const auto* pb = reinterpret_cast<const Pack<T>*>(b);
    auto* po = reinterpret_cast<Pack<T>*>(out);
    for (int64_t q = t; q < packs; q += nt) {
      const Pack<T> va = pa[q], vb = pb[q];
      Pack<T> vo;
#pragma unroll
      for (int e = 0; e < kN; ++e) vo.v[e] = f(widen(va.v[e]), widen(vb.v[e]));
      po[q] = vo;
    }
    k = packs * kN;
  }
  for (k += t; k < n; k += nt) out[k] = f(widen(a[k]), widen(b[k]));
}

// Row r of the grid's rows for this thread's warp (kBlock false) or block (kBlock true).
template <bool kBlock>
struct RowWalk {
  __device__ static int64_t first() {
    return kBlock ? int64_t{blockIdx.x} : blockIdx.x * int64_t{blockDim.x / kWarp} + threadIdx.x / kWarp;
  }
  __device__ static int64_t step() {
    return kBlock ? int64_t{gridDim.x} : int64_t{gridDim.x} * (blockDim.x / kWarp);
  }
  __device__ static int t() { return kBlock ? threadIdx.x : threadIdx.x % kWarp; }
  __device__ static int nt() { return kBlock ? blockDim.x : kWarp; }
};

// ---- kernels ----------------------------------------------------------------------------------

// y (dense rows of n) = softmax / log_softmax of the rows of x (row stride sx).
template <typename T, bool kLog, bool kBlock>
__global__ void rows_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows,
                                    int64_t n, int64_t sx, bool vec) {
  using C = compute_t<T>;
  using W = RowWalk<kBlock>;
  for (int64_t r = W::first(); r < rows; r += W::step()) {
    const T* xr = x + r * sx;
    T* yr = y + r * n;
    MaxSum<C> acc = ms_identity<C>();
    visit(xr, xr, n, W::t(), W::nt(), vec, [&](C v, C) { acc = ms_step(acc, v); });
    if constexpr (kBlock)
      acc = block_ms(acc);
    else
      acc = warp_ms(acc);
    const C m = acc.m, inv = C(1) / acc.s, lse = acc.m + ln(acc.s);
    transform(xr, xr, yr, n, W::t(), W::nt(), vec, [&](C v, C) {
      return convert<T>(kLog ? v - lse : ex(v - m) * inv);
    });
  }
}

// gx (dense rows of n) from the rows of gy and y (row strides sg, sy).
template <typename T, bool kLog, bool kBlock>
__global__ void rows_backward_kernel(const T* __restrict__ gy, const T* __restrict__ y,
                                     T* __restrict__ gx, int64_t rows, int64_t n, int64_t sg,
                                     int64_t sy, bool vec) {
  using C = compute_t<T>;
  using W = RowWalk<kBlock>;
  for (int64_t r = W::first(); r < rows; r += W::step()) {
    const T* gr = gy + r * sg;
    const T* yr = y + r * sy;
    C dot = 0;  // sum(gy * y), or sum(gy) for log_softmax
    visit(gr, yr, n, W::t(), W::nt(), vec, [&](C g, C v) { dot += kLog ? g : g * v; });
    if constexpr (kBlock)
      dot = block_sum(dot);
    else
      dot = warp_sum(dot);
    transform(gr, yr, gx + r * n, n, W::t(), W::nt(), vec, [&](C g, C v) {
      return convert<T>(kLog ? g - ex(v) * dot : v * (g - dot));
    });
  }
}

// Rows held in registers: rows of n elements, n a multiple of the pack and at most
// kWidth * kPacks packs, every row start 16-byte aligned. kWidth lanes take a row (a warp takes
// 32 / kWidth rows), each lane keeps its kPacks packs (lane, lane + kWidth, ...) in registers
// from the load to the store, so the row is read from memory once and every load is issued
// before the first shuffle.
template <typename T, int kWidth, int kPacks>
struct CachedRows {
  static constexpr int kRowsPerWarp = kWarp / kWidth;
  int64_t first, step;
  int sub, group;
  __device__ CachedRows() {
    const int lane = threadIdx.x % kWarp;
    sub = lane % kWidth;
    group = lane / kWidth;
    first = (blockIdx.x * int64_t{blockDim.x / kWarp} + threadIdx.x / kWarp) * kRowsPerWarp;
    step = int64_t{gridDim.x} * (blockDim.x / kWarp) * kRowsPerWarp;
  }
  // Loads this lane's packs of the row at `row` (nullptr: not a row, loads nothing).
  __device__ void load(const T* __restrict__ row, int64_t packs, Pack<T> (&v)[kPacks]) const {
#pragma unroll
    for (int p = 0; p < kPacks; ++p) {
      const int64_t q = sub + p * kWidth;
      if (row != nullptr && q < packs) v[p] = reinterpret_cast<const Pack<T>*>(row)[q];
    }
  }
  __device__ bool has(const T* row, int p, int64_t packs) const {
    return row != nullptr && sub + p * kWidth < packs;
  }
};

template <typename T, bool kLog, int kWidth, int kPacks>
__global__ void rows_cached_forward_kernel(const T* __restrict__ x, T* __restrict__ y,
                                           int64_t rows, int64_t n, int64_t sx) {
  using C = compute_t<T>;
  constexpr int kN = Pack<T>::kN;
  const CachedRows<T, kWidth, kPacks> w;
  const int64_t packs = n / kN;
  // `base` is the same for the whole warp, so every lane reaches every shuffle.
  for (int64_t base = w.first; base < rows; base += w.step) {
    const int64_t r = base + w.group;
    const T* xr = r < rows ? x + r * sx : nullptr;
    Pack<T> v[kPacks];
    w.load(xr, packs, v);
    MaxSum<C> acc = ms_identity<C>();
#pragma unroll
    for (int p = 0; p < kPacks; ++p)
      if (w.has(xr, p, packs))
#pragma unroll
        for (int e = 0; e < kN; ++e) acc = ms_step(acc, static_cast<C>(widen(v[p].v[e])));
    acc = group_ms<kWidth>(acc);
    const C inv = C(1) / acc.s, lse = acc.m + ln(acc.s);
#pragma unroll
    for (int p = 0; p < kPacks; ++p)
      if (w.has(xr, p, packs)) {
        Pack<T> o;
#pragma unroll
        for (int e = 0; e < kN; ++e) {
          const C e_x = widen(v[p].v[e]);
          o.v[e] = convert<T>(kLog ? e_x - lse : ex(e_x - acc.m) * inv);
        }
        reinterpret_cast<Pack<T>*>(y + r * n)[w.sub + p * kWidth] = o;
      }
  }
}

template <typename T, bool kLog, int kWidth, int kPacks>
__global__ void rows_cached_backward_kernel(const T* __restrict__ gy, const T* __restrict__ y,
                                            T* __restrict__ gx, int64_t rows, int64_t n,
                                            int64_t sg, int64_t sy) {
  using C = compute_t<T>;
  constexpr int kN = Pack<T>::kN;
  const CachedRows<T, kWidth, kPacks> w;
  const int64_t packs = n / kN;
  for (int64_t base = w.first; base < rows; base += w.step) {
    const int64_t r = base + w.group;
    const T* gr = r < rows ? gy + r * sg : nullptr;
    const T* yr = r < rows ? y + r * sy : nullptr;
    Pack<T> g[kPacks], v[kPacks];
    w.load(gr, packs, g);
    w.load(yr, packs, v);
    C dot = 0;
#pragma unroll
    for (int p = 0; p < kPacks; ++p)
      if (w.has(gr, p, packs))
#pragma unroll
        for (int e = 0; e < kN; ++e) {
          const C ge = widen(g[p].v[e]);
          dot += kLog ? ge : ge * static_cast<C>(widen(v[p].v[e]));
        }
    dot = group_sum<kWidth>(dot);
#pragma unroll
    for (int p = 0; p < kPacks; ++p)
      if (w.has(gr, p, packs)) {
        Pack<T> o;
#pragma unroll
        for (int e = 0; e < kN; ++e) {
          const C ge = widen(g[p].v[e]), ve = widen(v[p].v[e]);
          o.v[e] = convert<T>(kLog ? ge - ex(ve) * dot : ve * (ge - dot));
        }
        reinterpret_cast<Pack<T>*>(gx + r * n)[w.sub + p * kWidth] = o;
      }
  }
}

// One thread per column c = o * inner + i of x viewed as [outer, n, inner] (strides so, sm, si);
// y dense [outer, n, inner].
template <typename T, bool kLog>
__global__ void cols_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t cols,
                                    int64_t inner, int64_t n, int64_t so, int64_t sm, int64_t si) {
  using C = compute_t<T>;
  for (int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; c < cols;
       c += int64_t{gridDim.x} * blockDim.x) {
    const int64_t o = c / inner, i = c % inner;
    const T* xc = x + o * so + i * si;
    T* yc = y + o * n * inner + i;
    MaxSum<C> acc = ms_identity<C>();
    for (int64_t m = 0; m < n; ++m) acc = ms_step(acc, static_cast<C>(widen(xc[m * sm])));
    const C inv = C(1) / acc.s, lse = acc.m + ln(acc.s);
    for (int64_t m = 0; m < n; ++m) {
      const C v = widen(xc[m * sm]);
      yc[m * inner] = convert<T>(kLog ? v - lse : ex(v - acc.m) * inv);
    }
  }
}

template <typename T, bool kLog>
__global__ void cols_backward_kernel(const T* __restrict__ gy, const T* __restrict__ y,
                                     T* __restrict__ gx, int64_t cols, int64_t inner, int64_t n,
                                     View3 gv, View3 yv) {
  using C = compute_t<T>;
  for (int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; c < cols;
       c += int64_t{gridDim.x} * blockDim.x) {
    const int64_t o = c / inner, i = c % inner;
    const T* gc = gy + o * gv.strides[0] + i * gv.strides[2];
    const T* yc = y + o * yv.strides[0] + i * yv.strides[2];
    const int64_t gm = gv.strides[1], ym = yv.strides[1];
    T* out = gx + o * n * inner + i;
    C dot = 0;
    for (int64_t m = 0; m < n; ++m) {
      const C g = widen(gc[m * gm]);
      dot += kLog ? g : g * static_cast<C>(widen(yc[m * ym]));
    }
    for (int64_t m = 0; m < n; ++m) {
      const C g = widen(gc[m * gm]), v = widen(yc[m * ym]);
      out[m * inner] = convert<T>(kLog ? g - ex(v) * dot : v * (g - dot));
    }
  }
}

// ---- launch ----------------------------------------------------------------------------------

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Whether rows of n elements, starting at p with row stride `stride`, all start 16-byte aligned.
template <typename T>
bool rows_aligned(const void* p, int64_t rows, int64_t stride) {
  return aligned16(p) && (rows == 1 || (stride * int64_t{sizeof(T)}) % 16 == 0);
}

// Unit stride along mid and nothing inside it: plain rows (n == 1 has stride 0: columns).
bool rows_layout(const View3& v) { return v.sizes[2] == 1 && v.strides[1] == 1; }

// Launches kernel<kBlock = false> with warps per row or kernel<true> with a block per row.
template <typename WarpFn, typename BlockFn>
void launch_rows(int64_t rows, int64_t n, cudaStream_t s, WarpFn&& warp_kernel, BlockFn&& block_kernel) {
  if (n <= kWarpRowMax) {
    const int64_t blocks = std::min(ceil_div(rows, kRowsWarpThreads / kWarp), kMaxGrid);
    warp_kernel(static_cast<unsigned>(blocks), kRowsWarpThreads, s);
  } else {
    const int threads = n >= kLongRow ? kLongRowsBlockThreads : kRowsBlockThreads;
    block_kernel(static_cast<unsigned>(std::min(rows, kMaxGrid)), threads, s);
  }
  PIT_CUDA_CHECK(cudaGetLastError());
}

// Whether rows of n elements fit the register path (given that every row start is aligned).
template <typename T>
bool fits_cached(int64_t n) {
  return n % Pack<T>::kN == 0 && n / Pack<T>::kN <= kWarp * kMaxCachedPacks && n <= kMaxCachedElems;
}

// Calls launch.operator()<kWidth, kPacks>(blocks) for the narrowest lane group that holds rows
// of `packs` packs with one pack per lane, or a full warp with up to kMaxCachedPacks per lane.
template <typename Launch>
void launch_cached(int64_t rows, int64_t packs, Launch&& launch) {
  const auto go = [&]<int kWidth, int kPacks>() {
    const int64_t rows_per_block = (kCachedThreads / kWarp) * (kWarp / kWidth);
    const auto blocks = static_cast<unsigned>(std::min(ceil_div(rows, rows_per_block), kMaxGrid));
    launch.template operator()<kWidth, kPacks>(blocks);
  };
  static_assert(kMaxCachedPacks == 8, "extend the cases below");
  if (packs <= 1) go.template operator()<1, 1>();
  else if (packs <= 2) go.template operator()<2, 1>();
  else if (packs <= 4) go.template operator()<4, 1>();
  else if (packs <= 8) go.template operator()<8, 1>();
  else if (packs <= 16) go.template operator()<16, 1>();
  else if (packs <= 32) go.template operator()<32, 1>();
  else if (packs <= 64) go.template operator()<32, 2>();
  else if (packs <= 128) go.template operator()<32, 4>();
  else go.template operator()<32, 8>();
  PIT_CUDA_CHECK(cudaGetLastError());
}

unsigned col_blocks(int64_t cols) {
  return static_cast<unsigned>(std::min(ceil_div(cols, kColsThreads), kMaxGrid));
}

template <typename T, bool kLog>
void forward_typed(const View3& v, T* y, StreamRef stream) {
  const T* x = static_cast<const T*>(v.data);
  const int64_t outer = v.sizes[0], n = v.sizes[1], inner = v.sizes[2];
  if (outer * n * inner == 0) return;
  DeviceGuard guard(stream.device.index);
  const cudaStream_t s = native(stream);
  const int64_t sx = v.strides[0];
  if (rows_layout(v)) {
    const bool vec = rows_aligned<T>(x, outer, sx) && rows_aligned<T>(y, outer, n);
    if (vec && fits_cached<T>(n)) {
      launch_cached(outer, n / Pack<T>::kN, [&]<int kWidth, int kPacks>(unsigned blocks) {
        rows_cached_forward_kernel<T, kLog, kWidth, kPacks><<<blocks, kCachedThreads, 0, s>>>(
            x, y, outer, n, sx);
      });
      return;
    }
    if (n >= kWarp) {
      launch_rows(
          outer, n, s,
          [&](unsigned blocks, int threads, cudaStream_t st) {
            rows_forward_kernel<T, kLog, false><<<blocks, threads, 0, st>>>(x, y, outer, n, sx, vec);
          },
          [&](unsigned blocks, int threads, cudaStream_t st) {
            rows_forward_kernel<T, kLog, true><<<blocks, threads, 0, st>>>(x, y, outer, n, sx, vec);
          });
      return;
    }
  }
  const int64_t cols = outer * inner;
  cols_forward_kernel<T, kLog><<<col_blocks(cols), kColsThreads, 0, s>>>(
      x, y, cols, inner, n, v.strides[0], v.strides[1], v.strides[2]);
  PIT_CUDA_CHECK(cudaGetLastError());
}

template <typename T, bool kLog>
void backward_typed(const View3& gv, const View3& yv, T* gx, StreamRef stream) {
  const T* gy = static_cast<const T*>(gv.data);
  const T* y = static_cast<const T*>(yv.data);
  const int64_t outer = yv.sizes[0], n = yv.sizes[1], inner = yv.sizes[2];
  if (outer * n * inner == 0) return;
  DeviceGuard guard(stream.device.index);
  const cudaStream_t s = native(stream);
  if (rows_layout(gv) && rows_layout(yv)) {
    const int64_t sg = gv.strides[0], sy = yv.strides[0];
    const bool vec = rows_aligned<T>(gy, outer, sg) && rows_aligned<T>(y, outer, sy) &&
                     rows_aligned<T>(gx, outer, n);
    if (vec && fits_cached<T>(n)) {
      launch_cached(outer, n / Pack<T>::kN, [&]<int kWidth, int kPacks>(unsigned blocks) {
        rows_cached_backward_kernel<T, kLog, kWidth, kPacks><<<blocks, kCachedThreads, 0, s>>>(
            gy, y, gx, outer, n, sg, sy);
      });
      return;
    }
    if (n >= kWarp) {
      launch_rows(
          outer, n, s,
          [&](unsigned blocks, int threads, cudaStream_t st) {
            rows_backward_kernel<T, kLog, false><<<blocks, threads, 0, st>>>(gy, y, gx, outer, n, sg, sy, vec);
          },
          [&](unsigned blocks, int threads, cudaStream_t st) {
            rows_backward_kernel<T, kLog, true><<<blocks, threads, 0, st>>>(gy, y, gx, outer, n, sg, sy, vec);
          });
      return;
    }
  }
  const int64_t cols = outer * inner;
  cols_backward_kernel<T, kLog><<<col_blocks(cols), kColsThreads, 0, s>>>(gy, y, gx, cols, inner, n,
                                                                          gv, yv);
  PIT_CUDA_CHECK(cudaGetLastError());
}

// dispatch instantiates its callback for every dtype: only floating ones launch anything.
template <typename T>
constexpr bool kFloating = std::is_floating_point_v<T> || is_reduced_float_v<T>;

}  // namespace

void softmax(const View3& x, void* y, bool log, StreamRef stream) {
  dispatch<DType::f32, DType::f64, DType::f16, DType::bf16>(
      x.dtype, log ? "log_softmax" : "softmax", [&]<typename T>() {
        if constexpr (kFloating<T>) {
          if (log)
            forward_typed<T, true>(x, static_cast<T*>(y), stream);
          else
            forward_typed<T, false>(x, static_cast<T*>(y), stream);
        }
      });
}

void softmax_backward(const View3& grad_y, const View3& y, void* grad_x, bool log,
                      StreamRef stream) {
  dispatch<DType::f32, DType::f64, DType::f16, DType::bf16>(
      y.dtype, log ? "log_softmax_backward" : "softmax_backward", [&]<typename T>() {
        if constexpr (kFloating<T>) {
          if (log)
            backward_typed<T, true>(grad_y, y, static_cast<T*>(grad_x), stream);
          else
            backward_typed<T, false>(grad_y, y, static_cast<T*>(grad_x), stream);
        }
      });
}

}  // namespace pit::cuda
