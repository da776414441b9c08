// CUDA softmax, log_softmax and their backward along the middle dim of [outer, mid, inner].
//
// Rows (inner == 1, unit stride along mid) take one of two paths:
// - cached: every row start 16-byte aligned, the length a multiple of a 16-byte pack and at
//   most 16384 values (8192 for f64). A group of threads (the narrowest power of two giving each
//   thread one pack, up to a warp with 8 packs per lane, then blocks of 256 or 512 threads)
//   loads the row into registers once, reduces the max and then the sum of exp(x - max)
//   through shuffles (and shared memory for block groups), and writes from registers: one read,
//   one write and one exp per element. Short rows share a warp instead of idling most of it.
// - streaming: anything else of at least a warp's length (misaligned views, odd lengths, rows
//   over 16384): one warp per row up to kWarpRowMax elements, one block per row beyond. Pass 1
//   reads the row keeping an online (max, sum of exp(x - max)) pair per thread, rescaling the
//   sum when the max grows; the pairs merge through shuffles (and shared memory across warps).
//   Pass 2 reads the row again (from L1/L2) and writes. 16-byte loads when every row start is
//   aligned.
//
// Columns (any other layout, e.g. softmax over a dim that is not last, a transposed input, or
// short misaligned rows): one thread per (outer, inner) column, walking mid with its stride;
// neighbouring threads take neighbouring inner indices, so loads and stores coalesce when the
// inner dim is contiguous. Same two passes. A thread walks its whole column, so this only pays
// with many columns: with fewer than 2^17, ops/softmax.cpp moves the dim last first.
//
// Math in f32 (f64 for f64), results rounded once. No reduction crosses a launch, and merge
// orders are fixed, so results are deterministic.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/convert.h"
#include "core/cuda/runtime.h"
#include "ops/cuda/device_utils.cuh"
#include "ops/cuda/softmax.h"

namespace pit::cuda {
namespace {

// Rows up to this long take one warp (<= 32 elements per lane); longer rows take a block.
constexpr int64_t kWarpRowMax = 1024;
// Warp-per-row kernels: 8 warps (8 rows) per block.
constexpr int kRowsWarpThreads = 256;
// Block-per-row kernels: 256 threads, 512 for rows of 8192+ elements so each thread still
// has a few 16-byte loads in flight without leaving the SM short of warps.
constexpr int kRowsBlockThreads = 256;
constexpr int kLongRowsBlockThreads = 512;
constexpr int64_t kLongRow = 8192;
// Register path: warp-level groups run 256 threads (8 warps) per block; block-level groups
// use up to 512 threads, so a row of 16384 values is held at <= 32 values per thread.
constexpr int kCachedThreads = 256;
constexpr int64_t kMaxCachedThreads = 512;
// Column kernels: one thread per column, 256 per block.
constexpr int kColsThreads = 256;
// Grid-stride loops launch at most this many blocks.
constexpr int64_t kMaxGrid = int64_t{1} << 30;

// ---- online max / sum --------------------------------------------------------------------------

// m: the largest element seen; s: sum of exp(x - m) over the elements seen. -inf elements add
// nothing (so a row that starts masked stays finite); a row of only -inf ends with s = 0 and
// gives NaN, as in PyTorch; NaN and +inf elements make s NaN, hence the whole row (as on the CPU).
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
  if (x > a.m) return {x, a.s * ex(a.m - x) + ex(x - x)};  // ex(x - x): 1, or NaN for x = +inf
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
    a = ms_merge(
        a, MaxSum<C>{__shfl_down_sync(kFullMask, a.m, off), __shfl_down_sync(kFullMask, a.s, off)});
  return {__shfl_sync(kFullMask, a.m, 0), __shfl_sync(kFullMask, a.s, 0)};
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
  a = lane < static_cast<int>(blockDim.x / kWarp) ? MaxSum<C>{ms_m[lane], ms_s[lane]}
                                                  : ms_identity<C>();
  return warp_ms(a);  // every warp merges the same values in the same order
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
    // log_softmax as (v - max) - log(sum): no rounded max + log(sum) to lose large logits' digits.
    const C m = acc.m, inv = C(1) / acc.s, ls = ln(acc.s);
    transform(xr, xr, yr, n, W::t(), W::nt(), vec,
              [&](C v, C) { return narrow<T>(kLog ? (v - m) - ls : ex(v - m) * inv); });
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
    transform(gr, yr, gx + r * n, n, W::t(), W::nt(), vec,
              [&](C g, C v) { return narrow<T>(kLog ? g - ex(v) * dot : v * (g - dot)); });
  }
}

// ---- rows held in registers ------------------------------------------------------------------
// Rows of n elements, n a multiple of the pack, every row start 16-byte aligned. A group of
// kWidth threads takes a row: a power of two up to 32 lanes (a warp then takes 32 / kWidth
// rows), or a whole block of kWidth threads. Each thread keeps its kPacks packs
// (sub, sub + kWidth, ...) in registers from the load to the store, so the row is read from
// memory once, every load is issued before the first reduction, and each element needs one exp.

template <int kWidth>
struct Group {
  static constexpr bool kBlock = kWidth > kWarp;
  int64_t first, step;  // rows walked by this group: first, first + step, ...
  int sub, slot;        // thread's index in its group; group's index in its warp
  __device__ Group() {
    if constexpr (kBlock) {
      sub = threadIdx.x;
      slot = 0;
      first = blockIdx.x;
      step = gridDim.x;
    } else {
      const int lane = threadIdx.x % kWarp;
      sub = lane % kWidth;
      slot = lane / kWidth;
      constexpr int kRowsPerWarp = kWarp / kWidth;
      first = (blockIdx.x * int64_t{blockDim.x / kWarp} + threadIdx.x / kWarp) * kRowsPerWarp;
      step = int64_t{gridDim.x} * (blockDim.x / kWarp) * kRowsPerWarp;
    }
  }
  // The first row of this thread's warp (or block) in iteration `base`: the loop over it is
  // uniform across the warp (block), so every thread reaches every shuffle and barrier.
  __device__ int64_t row(int64_t base) const { return base + slot; }
};

// Reduces v with f over the group; every thread of the group gets the result. Fixed order.
template <int kWidth, typename C, typename F>
__device__ __forceinline__ C group_reduce(C v, F f) {
#pragma unroll
  for (int off = (kWidth < kWarp ? kWidth : kWarp) / 2; off > 0; off /= 2)
    v = f(v, __shfl_down_sync(kFullMask, v, off, kWidth < kWarp ? kWidth : kWarp));
  if constexpr (kWidth <= kWarp) {
    return __shfl_sync(kFullMask, v, 0, kWidth);
  } else {
    __shared__ C part[kWidth / kWarp];
    __syncthreads();  // the previous row's partials have been read
    if (threadIdx.x % kWarp == 0) part[threadIdx.x / kWarp] = v;
    __syncthreads();
    v = part[0];
#pragma unroll
    for (int w = 1; w < kWidth / kWarp; ++w) v = f(v, part[w]);
    return v;
  }
}

template <typename C>
struct MaxF {
  __device__ C operator()(C a, C b) const { return b > a ? b : a; }
};
template <typename C>
struct SumF {
  __device__ C operator()(C a, C b) const { return a + b; }
};

// Loads pack (sub + p * kWidth) of `row` into v[p] for every p inside the row.
template <typename T, int kWidth, int kPacks>
__device__ __forceinline__ void load_packs(const T* __restrict__ row, int sub, int64_t packs,
                                           bool valid, Pack<T> (&v)[kPacks]) {
#pragma unroll
  for (int p = 0; p < kPacks; ++p)
    if (valid && sub + p * kWidth < packs)
      v[p] = reinterpret_cast<const Pack<T>*>(row)[sub + p * kWidth];
}

template <typename T, bool kLog, int kWidth, int kPacks>
__global__ void rows_cached_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows,
                                           int64_t n, int64_t sx) {
  using C = compute_t<T>;
  constexpr int kN = Pack<T>::kN;
  constexpr C kNegInf = -std::numeric_limits<C>::infinity();
  const Group<kWidth> g;
  const int64_t packs = n / kN;
  for (int64_t base = g.first; base < rows; base += g.step) {
    const int64_t r = g.row(base);
    const bool valid = r < rows;
    Pack<T> in[kPacks];
    load_packs<T, kWidth>(x + (valid ? r : 0) * sx, g.sub, packs, valid, in);
    C v[kPacks][kN];
    C m = kNegInf;
#pragma unroll
    for (int p = 0; p < kPacks; ++p)
#pragma unroll
      for (int e = 0; e < kN; ++e) {
        const bool here = valid && g.sub + p * kWidth < packs;
        v[p][e] = here ? static_cast<C>(widen(in[p].v[e])) : kNegInf;
        m = v[p][e] > m ? v[p][e] : m;  // NaN is skipped here and poisons the sum below
      }
    m = group_reduce<kWidth>(m, MaxF<C>{});
    // Elements outside the row are -inf: exp gives 0 (unless the whole row is -inf: NaN, which
    // no thread stores).
    C sum = 0;
#pragma unroll
    for (int p = 0; p < kPacks; ++p)
#pragma unroll
      for (int e = 0; e < kN; ++e) {
        const C ev = ex(v[p][e] - m);
        sum += v[p][e] == kNegInf ? C(0) : ev;
        if constexpr (!kLog) v[p][e] = ev;
      }
    sum = group_reduce<kWidth>(sum, SumF<C>{});
    const C post = kLog ? ln(sum) : C(1) / sum;
#pragma unroll
    for (int p = 0; p < kPacks; ++p)
      if (valid && g.sub + p * kWidth < packs) {
        Pack<T> o;
#pragma unroll
        for (int e = 0; e < kN; ++e) o.v[e] = narrow<T>(kLog ? (v[p][e] - m) - post : v[p][e] * post);
        reinterpret_cast<Pack<T>*>(y + r * n)[g.sub + p * kWidth] = o;
      }
  }
}

template <typename T, bool kLog, int kWidth, int kPacks>
__global__ void rows_cached_backward_kernel(const T* __restrict__ gy, const T* __restrict__ y,
                                            T* __restrict__ gx, int64_t rows, int64_t n, int64_t sg,
                                            int64_t sy) {
  using C = compute_t<T>;
  constexpr int kN = Pack<T>::kN;
  const Group<kWidth> g;
  const int64_t packs = n / kN;
  for (int64_t base = g.first; base < rows; base += g.step) {
    const int64_t r = g.row(base);
    const bool valid = r < rows;
    Pack<T> gp[kPacks], yp[kPacks];
    load_packs<T, kWidth>(gy + (valid ? r : 0) * sg, g.sub, packs, valid, gp);
    load_packs<T, kWidth>(y + (valid ? r : 0) * sy, g.sub, packs, valid, yp);
    C dot = 0;  // sum(gy * y), or sum(gy) for log_softmax
#pragma unroll
    for (int p = 0; p < kPacks; ++p)
      if (valid && g.sub + p * kWidth < packs)
#pragma unroll
        for (int e = 0; e < kN; ++e) {
          const C ge = widen(gp[p].v[e]);
          dot += kLog ? ge : ge * static_cast<C>(widen(yp[p].v[e]));
        }
    dot = group_reduce<kWidth>(dot, SumF<C>{});
#pragma unroll
    for (int p = 0; p < kPacks; ++p)
      if (valid && g.sub + p * kWidth < packs) {
        Pack<T> o;
#pragma unroll
        for (int e = 0; e < kN; ++e) {
          const C ge = widen(gp[p].v[e]), ve = widen(yp[p].v[e]);
          o.v[e] = narrow<T>(kLog ? ge - ex(ve) * dot : ve * (ge - dot));
        }
        reinterpret_cast<Pack<T>*>(gx + r * n)[g.sub + p * kWidth] = o;
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
    const C inv = C(1) / acc.s, ls = ln(acc.s);
    for (int64_t m = 0; m < n; ++m) {
      const C v = widen(xc[m * sm]);
      yc[m * inner] = narrow<T>(kLog ? (v - acc.m) - ls : ex(v - acc.m) * inv);
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
      out[m * inner] = narrow<T>(kLog ? g - ex(v) * dot : v * (g - dot));
    }
  }
}

// ---- launch ----------------------------------------------------------------------------------


// Whether rows of n elements, starting at p with row stride `stride`, all start 16-byte aligned.
template <typename T>
bool rows_aligned(const void* p, int64_t rows, int64_t stride) {
  return aligned16(p) && (rows == 1 || (stride * int64_t{sizeof(T)}) % 16 == 0);
}

// Unit stride along mid and nothing inside it: plain rows (n == 1 has stride 0: columns).
bool rows_layout(const View3& v) { return v.sizes[2] == 1 && v.strides[1] == 1; }

// Launches kernel<kBlock = false> with warps per row or kernel<true> with a block per row.
template <typename WarpFn, typename BlockFn>
void launch_rows(int64_t rows, int64_t n, cudaStream_t s, WarpFn&& warp_kernel,
                 BlockFn&& block_kernel) {
  if (n <= kWarpRowMax) {
    const int64_t blocks = std::min(ceil_div(rows, kRowsWarpThreads / kWarp), kMaxGrid);
    warp_kernel(static_cast<unsigned>(blocks), kRowsWarpThreads, s);
  } else {
    const int threads = n >= kLongRow ? kLongRowsBlockThreads : kRowsBlockThreads;
    block_kernel(static_cast<unsigned>(std::min(rows, kMaxGrid)), threads, s);
  }
  PIT_CUDA_CHECK(cudaGetLastError());
}

// Packs one thread holds in the register path: at most 8 packs and 32 values (f32 8 packs,
// f16/bf16 4, f64 8), i.e. <= 32 registers per operand.
template <typename T>
constexpr int kMaxPacks = std::min(8, 32 / Pack<T>::kN);

// Whether rows of n elements fit the register path (given that every row start is aligned):
// whole packs, at most kMaxCachedThreads threads x kMaxPacks packs (16384 f32/f16/bf16 values).
template <typename T>
bool fits_cached(int64_t n) {
  return n % Pack<T>::kN == 0 && n / Pack<T>::kN <= kMaxCachedThreads * kMaxPacks<T>;
}

// Calls launch.operator()<kWidth, kPacks>(blocks, threads) for the narrowest group that holds
// rows of `packs` packs: lane groups of 1..32 with one pack each, a warp with 2..8, then blocks
// of 256 or 512 threads with 1..8.
template <typename T, typename Launch>
void launch_cached(int64_t rows, int64_t packs, Launch&& launch) {
  const auto go = [&]<int kWidth, int kPacks>() {
    if constexpr (kWidth > kWarp) {
      launch.template operator()<kWidth, kPacks>(static_cast<unsigned>(std::min(rows, kMaxGrid)),
                                                 kWidth);
    } else {
      const int64_t rows_per_block = (kCachedThreads / kWarp) * (kWarp / kWidth);
      const auto blocks = static_cast<unsigned>(std::min(ceil_div(rows, rows_per_block), kMaxGrid));
      launch.template operator()<kWidth, kPacks>(blocks, kCachedThreads);
    }
  };
  constexpr bool kWide = kMaxPacks<T> >= 8;  // 8 packs per thread allowed (f32, f64)
  static_assert(kMaxPacks<T> >= 4 && kMaxCachedThreads == 512, "extend the cases below");
  if (packs <= 1)
    go.template operator()<1, 1>();
  else if (packs <= 2)
    go.template operator()<2, 1>();
  else if (packs <= 4)
    go.template operator()<4, 1>();
  else if (packs <= 8)
    go.template operator()<8, 1>();
  else if (packs <= 16)
    go.template operator()<16, 1>();
  else if (packs <= 32)
    go.template operator()<32, 1>();
  else if (packs <= 64)
    go.template operator()<32, 2>();
  else if (packs <= 128)
    go.template operator()<32, 4>();
  else if (packs <= 256) {
    if constexpr (kWide)
      go.template operator()<32, 8>();
    else
      go.template operator()<256, 1>();
  } else if (packs <= 512)
    go.template operator()<256, 2>();
  else if (packs <= 1024)
    go.template operator()<256, 4>();
  else if (packs <= 2048) {
    if constexpr (kWide)
      go.template operator()<256, 8>();
    else
      go.template operator()<512, 4>();
  } else {
    if constexpr (kWide) go.template operator()<512, 8>();
  }
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
      launch_cached<T>(outer, n / Pack<T>::kN,
                       [&]<int kWidth, int kPacks>(unsigned blocks, int threads) {
                         rows_cached_forward_kernel<T, kLog, kWidth, kPacks>
                             <<<blocks, threads, 0, s>>>(x, y, outer, n, sx);
                       });
      return;
    }
    if (n >= kWarp) {
      launch_rows(
          outer, n, s,
          [&](unsigned blocks, int threads, cudaStream_t st) {
            rows_forward_kernel<T, kLog, false>
                <<<blocks, threads, 0, st>>>(x, y, outer, n, sx, vec);
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
      launch_cached<T>(outer, n / Pack<T>::kN,
                       [&]<int kWidth, int kPacks>(unsigned blocks, int threads) {
                         rows_cached_backward_kernel<T, kLog, kWidth, kPacks>
                             <<<blocks, threads, 0, s>>>(gy, y, gx, outer, n, sg, sy);
                       });
      return;
    }
    if (n >= kWarp) {
      launch_rows(
          outer, n, s,
          [&](unsigned blocks, int threads, cudaStream_t st) {
            rows_backward_kernel<T, kLog, false>
                <<<blocks, threads, 0, st>>>(gy, y, gx, outer, n, sg, sy, vec);
          },
          [&](unsigned blocks, int threads, cudaStream_t st) {
            rows_backward_kernel<T, kLog, true>
                <<<blocks, threads, 0, st>>>(gy, y, gx, outer, n, sg, sy, vec);
          });
      return;
    }
  }
  const int64_t cols = outer * inner;
  cols_backward_kernel<T, kLog>
      <<<col_blocks(cols), kColsThreads, 0, s>>>(gy, y, gx, cols, inner, n, gv, yv);
  PIT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void softmax(const View3& x, void* y, bool log, StreamRef stream) {
  dispatch<DType::f32, DType::f64, DType::f16, DType::bf16>(
      x.dtype, log ? "log_softmax" : "softmax", [&]<typename T>() {
        if (log)
          forward_typed<T, true>(x, static_cast<T*>(y), stream);
        else
          forward_typed<T, false>(x, static_cast<T*>(y), stream);
      });
}

void softmax_backward(const View3& grad_y, const View3& y, void* grad_x, bool log,
                      StreamRef stream) {
  dispatch<DType::f32, DType::f64, DType::f16, DType::bf16>(
      y.dtype, log ? "log_softmax_backward" : "softmax_backward", [&]<typename T>() {
        if (log)
          backward_typed<T, true>(grad_y, y, static_cast<T*>(grad_x), stream);
        else
          backward_typed<T, false>(grad_y, y, static_cast<T*>(grad_x), stream);
      });
}

}  // namespace pit::cuda
