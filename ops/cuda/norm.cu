// CUDA layernorm / rmsnorm and their backward over rows of `dim` elements.
//
// Rows (forward, and dx in backward) take one of three paths by length:
// - dim <= 1024: one warp per row, 8 rows per 256-thread block. Each lane keeps its share of the
//   row (up to 32 values per operand) in registers from the load to the store, so the row is
//   read once: the statistics are an exact two-pass (mean, then the sum of squared deviations
//   from it) over the registers, merged by shuffles in a fixed order.
// - dim <= 8192: one block per row (64 to 512 threads), up to 16 values per thread and operand
//   in registers, the same two passes merged through shared memory.
// - longer rows: one 512-thread block per row streaming the row from memory (L1/L2) once per
//   pass: mean, squared deviations, output (backward: sums, output).
// Lane t holds packs t, t + nt, ... of 16 bytes (4 f32, 8 f16/bf16, 2 f64); a pack is loaded
// and stored as one 16-byte access when its row start is 16-byte aligned (checked per row, so
// misaligned views and odd lengths only lose vectorisation on the rows affected) and the pack
// lies inside the row; otherwise element by element.
//
// Backward first tries ops/cuda/norm_bulk.cu (sm_90), then ops/cuda/norm_fused.cu (both: rows of
// up to 1024 elements in whole, aligned packs; dx and the dweight / dbias sums in one pass over x
// and dy). Otherwise dx by the row kernels here, and dweight / dbias by a separate column
// reduction: blocks of 32 columns x 8 row lanes each sum a chunk of rows, and the partials are
// summed in chunk order by a second kernel. The chunking depends only on (rows, dim), never on the
// device or on timing, and there are no atomics, so the result is bit-identical from run to run.
//
// Math in f32 (f64 for f64); every output is rounded once.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <type_traits>

#include "core/convert.h"
#include "core/cuda/runtime.h"
#include "core/memory.h"
#include "ops/cuda/device_utils.cuh"
#include "ops/cuda/norm.h"
#include "ops/cuda/norm_bulk.h"
#include "ops/cuda/norm_fused.h"

namespace pit::cuda {
namespace {

constexpr int64_t kWarpRowMax = 1024;  // rows up to this long: one warp each
constexpr int kRowsWarpThreads = 256;  // warp path: 8 rows per block
// Warp path forward, f16/bf16: compiled for three blocks per SM (at most 80 registers; 75 without
// spills for rows of 1024). A warp holds one row and reads it once, so the loads in flight per SM
// are set by the warps resident: at 92 registers (two blocks per SM) layernorm of 16384 x 1024
// bf16 ran at 35% of the copy bandwidth. (The backward kernel would spill under the same cap.)
template <typename T, bool kBlock>
constexpr int kForwardMinBlocks = !kBlock && sizeof(T) == 2 ? 3 : 1;
constexpr int kBlockVals = 16;         // block path: values per thread and operand in registers
constexpr int kMaxBlockThreads = 512;
constexpr int64_t kCachedRowMax = int64_t{kMaxBlockThreads} * kBlockVals;  // 8192
constexpr int kStreamThreads = 512;
constexpr int kParamCols = 32, kParamRowLanes = 8;  // dweight / dbias: 256-thread blocks
constexpr int kFinishThreads = 256;
// dweight / dbias: about this many blocks in the partial pass (fixed, so that the chunking, and
// hence the bits, do not depend on the GPU), chunks of at least kMinChunkRows rows.
constexpr int64_t kParamTargetBlocks = 1024;
constexpr int64_t kMinChunkRows = 32;
constexpr int64_t kMaxChunks = 65535;  // gridDim.y
constexpr int64_t kMaxGrid = int64_t{1} << 20;  // grid-stride loops launch at most this many

// 1 / sqrt(v): rsqrtf in f32 (within 2 ulp; the exact division and square root were two long
// dependent sequences on every row's critical path), exact in f64.
__device__ __forceinline__ float inv_root(float v) { return rsqrtf(v); }
__device__ __forceinline__ double inv_root(double v) { return 1.0 / sqrt(v); }


// ---- packs -------------------------------------------------------------------------------------

// Elements [q * kN, q * kN + kN) of a row of d, widened; those past the end read as 0.
template <typename T, typename C = compute_t<T>>
__device__ __forceinline__ void load_pack(const T* __restrict__ row, int64_t q, int64_t d, bool vec,
                                          C (&out)[Pack<T>::kN]) {
  constexpr int kN = Pack<T>::kN;
  const int64_t base = q * kN;
  if (vec && base + kN <= d) {
    const Pack<T> p = reinterpret_cast<const Pack<T>*>(row)[q];
#pragma unroll
    for (int e = 0; e < kN; ++e) out[e] = widen(p.v[e]);
  } else {
#pragma unroll
    for (int e = 0; e < kN; ++e) out[e] = base + e < d ? static_cast<C>(widen(row[base + e])) : C(0);
  }
}

template <typename T, typename C = compute_t<T>>
__device__ __forceinline__ void store_pack(T* __restrict__ row, int64_t q, int64_t d, bool vec,
                                           const C (&in)[Pack<T>::kN]) {
  constexpr int kN = Pack<T>::kN;
  const int64_t base = q * kN;
  if (vec && base + kN <= d) {
    Pack<T> p;
#pragma unroll
    for (int e = 0; e < kN; ++e) p.v[e] = narrow<T>(in[e]);
    reinterpret_cast<Pack<T>*>(row)[q] = p;
  } else {
#pragma unroll
    for (int e = 0; e < kN; ++e)
      if (base + e < d) row[base + e] = narrow<T>(in[e]);
  }
}

// Weight / bias pack, or all `fill` when the pointer is null.
template <typename T, typename C = compute_t<T>>
__device__ __forceinline__ void load_param(const T* __restrict__ p, int64_t q, int64_t d, bool vec,
                                           C fill, C (&out)[Pack<T>::kN]) {
  if (p != nullptr) {
    load_pack(p, q, d, vec, out);
  } else {
#pragma unroll
    for (int e = 0; e < Pack<T>::kN; ++e) out[e] = fill;
  }
}

// ---- sums ----------------------------------------------------------------------------------------

// Block-wide sums of a and b (blockDim.x a multiple of 32); every thread gets both. The merge
// order is fixed, so every thread (and every run) sees the same bits.
template <typename C>
__device__ __forceinline__ void block_sum2(C& a, C& b) {
  __shared__ C part_a[kWarp], part_b[kWarp];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  a = warp_sum(a);
  b = warp_sum(b);
  __syncthreads();  // the arrays may still be read by the previous call
  if (lane == 0) {
    part_a[warp] = a;
    part_b[warp] = b;
  }
  __syncthreads();
  const bool in = lane < static_cast<int>(blockDim.x / kWarp);
  a = warp_sum(in ? part_a[lane] : C(0));
  b = warp_sum(in ? part_b[lane] : C(0));
}

template <bool kBlock, typename C>
__device__ __forceinline__ void row_sum2(C& a, C& b) {
  if constexpr (kBlock) {
    block_sum2(a, b);
  } else {
    a = warp_sum(a);
    b = warp_sum(b);
  }
}

// Sum over the row's warp or block, of one value (row_sum2 with an unused second value cost a
// warp its second shuffle chain).
template <bool kBlock, typename C>
__device__ __forceinline__ C row_sum(C a) {
  if constexpr (kBlock)
    return block_sum(a);
  else
    return warp_sum(a);
}

struct Params {
  int64_t rows, d;
  bool rms;
  double inv_d;  // 1 / d: the means multiply by it (a division per row otherwise)
};

// ---- rows held in registers ----------------------------------------------------------------------

// Loads this thread's kPacks packs of a row (packs t, t + nt, ...) as stored (f16/bf16 stay
// 16-bit: half the registers of widened values, which kept the warp path at two blocks per SM
// and 35% of the copy bandwidth); elements past the end read as 0. Widen on use.
template <typename T, int kPacks>
__device__ __forceinline__ void load_row(const T* __restrict__ row, int64_t d, int t, int nt,
                                         Pack<T> (&v)[kPacks]) {
  constexpr int kN = Pack<T>::kN;
  const bool vec = aligned16(row);
#pragma unroll
  for (int p = 0; p < kPacks; ++p) {
    const int64_t q = t + int64_t{p} * nt, base = q * kN;
    if (vec && base + kN <= d) {
      v[p] = reinterpret_cast<const Pack<T>*>(row)[q];
    } else {
#pragma unroll
      for (int e = 0; e < kN; ++e) v[p].v[e] = base + e < d ? row[base + e] : T(0);
    }
  }
}

// kWhole: rows of whole packs, every row and weight / bias 16-byte aligned (the launch checks):
// plain 16-byte loads and stores, bounds checked per pack instead of per element. On an H200
// (16384 x 1024 bf16, Nsight Compute, L2 flushed before each): 34.6 us for the general form,
// 27 us for this one. With a warm L2, after store_pack's hardware rounding: 25-26 us, where a
// standalone kernel of the same design measured 20 us; with one shuffle chain per statistic and
// whole-pack weight / bias / output the op runs 0.023 ms (70% of the copy bandwidth).
template <typename T, bool kBlock, int kPacks, bool kWhole = false>
__global__ void __launch_bounds__(kBlock ? kMaxBlockThreads : kRowsWarpThreads, kForwardMinBlocks<T, kBlock>)
    cached_forward_kernel(const T* __restrict__ x, int64_t sx, const T* __restrict__ w,
                          const T* __restrict__ b, T* __restrict__ y,
                          compute_t<T>* __restrict__ mean_out, compute_t<T>* __restrict__ rstd_out,
                          Params prm, compute_t<T> eps) {
  using C = compute_t<T>;
  using W = RowWalk<kBlock>;
  constexpr int kN = Pack<T>::kN;
  const int t = W::t(), nt = W::nt();
  const int64_t d = prm.d;
  const bool vec_w = aligned16(w), vec_b = aligned16(b);
  for (int64_t r = W::first(); r < prm.rows; r += W::step()) {
    Pack<T> v[kPacks];
    if constexpr (kWhole) {
      const Pack<T>* row = reinterpret_cast<const Pack<T>*>(x + r * sx);
#pragma unroll
      for (int p = 0; p < kPacks; ++p) {
        const int64_t q = t + int64_t{p} * nt;
        v[p] = q * kN < d ? row[q] : Pack<T>{};
      }
    } else {
      load_row<T, kPacks>(x + r * sx, d, t, nt, v);
    }
    C mean = 0;
    if (!prm.rms) {
      C s = 0;
#pragma unroll
      for (int p = 0; p < kPacks; ++p) {
        C f[kN];
        widen_pack(v[p].v, f);
#pragma unroll
        for (int e = 0; e < kN; ++e) s += f[e];  // elements past the end hold 0
      }
      mean = row_sum<kBlock>(s) * static_cast<C>(prm.inv_d);
    }
    C ss = 0;
#pragma unroll
    for (int p = 0; p < kPacks; ++p) {
      C f[kN];
      widen_pack(v[p].v, f);
#pragma unroll
      for (int e = 0; e < kN; ++e) {
        const int64_t first_e = (t + int64_t{p} * nt) * kN;
        const C c = (kWhole ? first_e < d : first_e + e < d) ? f[e] - mean : C(0);
        ss += c * c;
      }
    }
    const C rstd = inv_root(row_sum<kBlock>(ss) * static_cast<C>(prm.inv_d) + eps);
    if (t == 0) {
      if (mean_out != nullptr) mean_out[r] = mean;
      rstd_out[r] = rstd;
    }
    T* yr = y + r * d;
    const bool vec_y = aligned16(yr);
#pragma unroll
    for (int p = 0; p < kPacks; ++p) {
      const int64_t q = t + int64_t{p} * nt;
      if (q * kN >= d) break;
      if constexpr (kWhole) {  // whole, aligned packs: no element-wise fall-backs
        const Pack<T> wp = w != nullptr ? reinterpret_cast<const Pack<T>*>(w)[q] : Pack<T>{};
        const Pack<T> bp = b != nullptr ? reinterpret_cast<const Pack<T>*>(b)[q] : Pack<T>{};
        C f[kN], wf[kN], bf[kN];
        widen_pack(v[p].v, f);
        widen_pack(wp.v, wf);
        widen_pack(bp.v, bf);
        Pack<T> o;
#pragma unroll
        for (int e = 0; e < kN; ++e)
          o.v[e] = narrow<T>((f[e] - mean) * rstd * (w != nullptr ? wf[e] : C(1)) + bf[e]);
        reinterpret_cast<Pack<T>*>(yr)[q] = o;
      } else {
        C wv[kN], bv[kN], o[kN];
        load_param(w, q, d, vec_w, C(1), wv);
        load_param(b, q, d, vec_b, C(0), bv);
#pragma unroll
        for (int e = 0; e < kN; ++e) o[e] = (widen(v[p].v[e]) - mean) * rstd * wv[e] + bv[e];
        store_pack(yr, q, d, vec_y, o);
      }
    }
  }
}

// dx for each row (dweight / dbias: the column pass, column_params).
template <typename T, bool kBlock, int kPacks>
__global__ void __launch_bounds__(kBlock ? kMaxBlockThreads : kRowsWarpThreads)
    cached_backward_kernel(const T* __restrict__ dy, int64_t sdy, const T* __restrict__ x,
                           int64_t sx, const T* __restrict__ w,
                           const compute_t<T>* __restrict__ mean_in,
                           const compute_t<T>* __restrict__ rstd_in, T* __restrict__ dx,
                           Params prm) {
  using C = compute_t<T>;
  using W = RowWalk<kBlock>;
  constexpr int kN = Pack<T>::kN;
  const int t = W::t(), nt = W::nt();
  const int64_t d = prm.d;
  const bool vec_w = aligned16(w);
  for (int64_t r = W::first(); r < prm.rows; r += W::step()) {
    // Kept as loaded (see load_row); x-hat and dy * w are recomputed for the output.
    Pack<T> xs[kPacks], gs[kPacks];
    load_row<T, kPacks>(x + r * sx, d, t, nt, xs);
    load_row<T, kPacks>(dy + r * sdy, d, t, nt, gs);
    const C mean = mean_in != nullptr ? mean_in[r] : C(0), rstd = rstd_in[r];
    C sum_gx = 0, sum_g = 0;
#pragma unroll
    for (int p = 0; p < kPacks; ++p) {
      C wv[kN];
      load_param(w, t + int64_t{p} * nt, d, vec_w, C(1), wv);
#pragma unroll
      for (int e = 0; e < kN; ++e) {
        const C xh = (widen(xs[p].v[e]) - mean) * rstd;
        const C g = widen(gs[p].v[e]) * wv[e];  // 0 past the end of the row
        sum_gx += g * xh;
        sum_g += g;
      }
    }
    row_sum2<kBlock>(sum_gx, sum_g);
    const C c1 = sum_gx * static_cast<C>(prm.inv_d), c2 = prm.rms ? C(0) : sum_g * static_cast<C>(prm.inv_d);
    T* out = dx + r * d;
    const bool vec_o = aligned16(out);
#pragma unroll
    for (int p = 0; p < kPacks; ++p) {
      const int64_t q = t + int64_t{p} * nt;
      if (q * kN >= d) break;
      C wv[kN], o[kN];
      load_param(w, q, d, vec_w, C(1), wv);
#pragma unroll
      for (int e = 0; e < kN; ++e)
        o[e] = rstd * (widen(gs[p].v[e]) * wv[e] - c2 - (widen(xs[p].v[e]) - mean) * rstd * c1);
      store_pack(out, q, d, vec_o, o);
    }
  }
}

// ---- long rows, streamed from memory ---------------------------------------------------------------

template <typename T>
__global__ void __launch_bounds__(kStreamThreads)
    stream_forward_kernel(const T* __restrict__ x, int64_t sx, const T* __restrict__ w,
                          const T* __restrict__ b, T* __restrict__ y,
                          compute_t<T>* __restrict__ mean_out, compute_t<T>* __restrict__ rstd_out,
                          Params prm, compute_t<T> eps) {
  using C = compute_t<T>;
  constexpr int kN = Pack<T>::kN;
  const int t = threadIdx.x, nt = blockDim.x;
  const int64_t d = prm.d, packs = ceil_div(d, kN);
  const bool vec_w = aligned16(w), vec_b = aligned16(b);
  for (int64_t r = blockIdx.x; r < prm.rows; r += gridDim.x) {
    const T* xr = x + r * sx;
    const bool vec = aligned16(xr);
    C v[kN], mean = 0, unused = 0;
    if (!prm.rms) {
      C s = 0;
      for (int64_t q = t; q < packs; q += nt) {
        load_pack(xr, q, d, vec, v);
#pragma unroll
        for (int e = 0; e < kN; ++e) s += v[e];
      }
      block_sum2(s, unused);
      mean = s * static_cast<C>(prm.inv_d);
    }
    C ss = 0;
    for (int64_t q = t; q < packs; q += nt) {
      load_pack(xr, q, d, vec, v);
#pragma unroll
      for (int e = 0; e < kN; ++e) {
        const C c = q * kN + e < d ? v[e] - mean : C(0);
        ss += c * c;
      }
    }
    unused = 0;
    block_sum2(ss, unused);
    const C rstd = inv_root(ss * static_cast<C>(prm.inv_d) + eps);
    if (t == 0) {
      if (mean_out != nullptr) mean_out[r] = mean;
      rstd_out[r] = rstd;
    }
    T* yr = y + r * d;
    const bool vec_y = aligned16(yr);
    for (int64_t q = t; q < packs; q += nt) {
      C wv[kN], bv[kN], o[kN];
      load_pack(xr, q, d, vec, v);
      load_param(w, q, d, vec_w, C(1), wv);
      load_param(b, q, d, vec_b, C(0), bv);
#pragma unroll
      for (int e = 0; e < kN; ++e) o[e] = (v[e] - mean) * rstd * wv[e] + bv[e];
      store_pack(yr, q, d, vec_y, o);
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kStreamThreads)
    stream_backward_kernel(const T* __restrict__ dy, int64_t sdy, const T* __restrict__ x,
                           int64_t sx, const T* __restrict__ w,
                           const compute_t<T>* __restrict__ mean_in,
                           const compute_t<T>* __restrict__ rstd_in, T* __restrict__ dx,
                           Params prm) {
  using C = compute_t<T>;
  constexpr int kN = Pack<T>::kN;
  const int t = threadIdx.x, nt = blockDim.x;
  const int64_t d = prm.d, packs = ceil_div(d, kN);
  const bool vec_w = aligned16(w);
  for (int64_t r = blockIdx.x; r < prm.rows; r += gridDim.x) {
    const T* xr = x + r * sx;
    const T* gr = dy + r * sdy;
    const bool vec_x = aligned16(xr), vec_g = aligned16(gr);
    const C mean = mean_in != nullptr ? mean_in[r] : C(0), rstd = rstd_in[r];
    C sum_gx = 0, sum_g = 0;
    for (int64_t q = t; q < packs; q += nt) {
      C xv[kN], gv[kN], wv[kN];
      load_pack(xr, q, d, vec_x, xv);
      load_pack(gr, q, d, vec_g, gv);
      load_param(w, q, d, vec_w, C(1), wv);
#pragma unroll
      for (int e = 0; e < kN; ++e) {
        const C g = gv[e] * wv[e];
        sum_gx += g * (xv[e] - mean) * rstd;
        sum_g += g;
      }
    }
    block_sum2(sum_gx, sum_g);
    const C c1 = sum_gx * static_cast<C>(prm.inv_d), c2 = prm.rms ? C(0) : sum_g * static_cast<C>(prm.inv_d);
    T* out = dx + r * d;
    const bool vec_o = aligned16(out);
    for (int64_t q = t; q < packs; q += nt) {
      C xv[kN], gv[kN], wv[kN], o[kN];
      load_pack(xr, q, d, vec_x, xv);
      load_pack(gr, q, d, vec_g, gv);
      load_param(w, q, d, vec_w, C(1), wv);
#pragma unroll
      for (int e = 0; e < kN; ++e) o[e] = rstd * (gv[e] * wv[e] - c2 - (xv[e] - mean) * rstd * c1);
      store_pack(out, q, d, vec_o, o);
    }
  }
}

// ---- dweight / dbias ---------------------------------------------------------------------------------

// Block (column tile blockIdx.x, chunk blockIdx.y): sums over the chunk's rows of dy * xhat
// (when dweight is wanted) and dy (when dbias is) for 32 columns; thread (tx, ty) takes column tx
// and rows ty, ty + 8, ...; the 8 row lanes are then added in order. Writes the partials
// (chunk-major) or, when `direct` (a single chunk), dweight / dbias themselves.
template <typename T>
__global__ void __launch_bounds__(kParamCols * kParamRowLanes)
    param_partial_kernel(const T* __restrict__ dy, int64_t sdy, const T* __restrict__ x, int64_t sx,
                         const compute_t<T>* __restrict__ mean_in,
                         const compute_t<T>* __restrict__ rstd_in, Params prm, int64_t chunk_rows,
                         bool direct, compute_t<T>* __restrict__ part_w,
                         compute_t<T>* __restrict__ part_b, T* __restrict__ dweight,
                         T* __restrict__ dbias) {
  using C = compute_t<T>;
  __shared__ C sw[kParamRowLanes][kParamCols + 1], sb[kParamRowLanes][kParamCols + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t c = blockIdx.x * int64_t{kParamCols} + tx, chunk = blockIdx.y;
  const int64_t r0 = chunk * chunk_rows, r1 = r0 + chunk_rows < prm.rows ? r0 + chunk_rows : prm.rows;
  const bool want_w = dweight != nullptr;
  C aw = 0, ab = 0;
  if (c < prm.d) {
    for (int64_t r = r0 + ty; r < r1; r += kParamRowLanes) {
      const C g = widen(dy[r * sdy + c]);
      if (want_w) {
        const C mean = mean_in != nullptr ? mean_in[r] : C(0);
        aw += g * ((static_cast<C>(widen(x[r * sx + c])) - mean) * rstd_in[r]);
      }
      ab += g;
    }
  }
  sw[ty][tx] = aw;
  sb[ty][tx] = ab;
  __syncthreads();
  if (ty != 0 || c >= prm.d) return;
  aw = 0;
  ab = 0;
#pragma unroll
  for (int k = 0; k < kParamRowLanes; ++k) {
    aw += sw[k][tx];
    ab += sb[k][tx];
  }
  if (direct) {
    if (dweight != nullptr) dweight[c] = convert<T>(aw);
    if (dbias != nullptr) dbias[c] = convert<T>(ab);
  } else {
    if (part_w != nullptr) part_w[chunk * prm.d + c] = aw;
    if (part_b != nullptr) part_b[chunk * prm.d + c] = ab;
  }
}

// out[c] = sum over chunks k (in order) of part[k * d + c].
template <typename T>
__global__ void param_finish_kernel(const compute_t<T>* __restrict__ part, int64_t chunks,
                                    int64_t d, T* __restrict__ out) {
  using C = compute_t<T>;
  for (int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; c < d;
       c += int64_t{gridDim.x} * blockDim.x) {
    C s = 0;
    for (int64_t k = 0; k < chunks; ++k) s += part[k * d + c];
    out[c] = convert<T>(s);
  }
}

// ---- launch ----------------------------------------------------------------------------------------

unsigned grid(int64_t blocks) { return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, kMaxGrid)); }

// Calls launch.operator()<kBlock, kPacks>(blocks, threads) for the register path that holds rows
// of d elements; returns false when d is too long for it (stream instead).
template <typename T, typename Launch>
bool launch_cached(int64_t rows, int64_t d, Launch&& launch) {
  constexpr int kN = Pack<T>::kN;
  const int64_t packs = ceil_div(d, kN);
  if (d <= kWarpRowMax) {
    const unsigned blocks = grid(ceil_div(rows, kRowsWarpThreads / kWarp));
    const int64_t per_lane = ceil_div(packs, kWarp);  // <= 1024 / kN / 32 = 32 / kN
    if (per_lane <= 1) launch.template operator()<false, 1>(blocks, kRowsWarpThreads);
    else if (per_lane <= 2) launch.template operator()<false, 2>(blocks, kRowsWarpThreads);
    else if (per_lane <= 4) launch.template operator()<false, 4>(blocks, kRowsWarpThreads);
    else if constexpr (kN <= 4) {
      if (per_lane <= 8) launch.template operator()<false, 8>(blocks, kRowsWarpThreads);
      else if constexpr (kN <= 2) launch.template operator()<false, 16>(blocks, kRowsWarpThreads);
    }
    return true;
  }
  if (d > kCachedRowMax) return false;
  constexpr int kPacks = kBlockVals / kN;
  int threads = 64;
  while (int64_t{threads} * kPacks < packs) threads *= 2;  // <= 512 since d <= 8192
  launch.template operator()<true, kPacks>(grid(rows), threads);
  return true;
}

template <typename T>
void forward_typed(const cpu::NormArgs& a, const T* x, int64_t sx, const T* w, const T* b,
                   double eps, T* y, compute_t<T>* mean, compute_t<T>* rstd, StreamRef stream) {
  using C = compute_t<T>;
  if (a.rows == 0) return;
  DeviceGuard guard(stream.device.index);
  const cudaStream_t s = native(stream);
  const Params prm{a.rows, a.dim, a.rms, 1.0 / static_cast<double>(a.dim)};
  const C e = static_cast<C>(eps);
  const bool whole = a.dim % Pack<T>::kN == 0 && aligned16(x) && (sx * int64_t{sizeof(T)}) % 16 == 0 &&
                     aligned16(y) && (w == nullptr || aligned16(w)) && (b == nullptr || aligned16(b));
  const bool cached = launch_cached<T>(a.rows, a.dim, [&]<bool kBlock, int kPacks>(unsigned blocks, int threads) {
    if (!kBlock && whole)
      cached_forward_kernel<T, false, kPacks, true><<<blocks, threads, 0, s>>>(x, sx, w, b, y, mean, rstd, prm, e);
    else
      cached_forward_kernel<T, kBlock, kPacks><<<blocks, threads, 0, s>>>(x, sx, w, b, y, mean, rstd, prm, e);
  });
  if (!cached)
    stream_forward_kernel<T><<<grid(a.rows), kStreamThreads, 0, s>>>(x, sx, w, b, y, mean, rstd, prm, e);
  PIT_CUDA_CHECK(cudaGetLastError());
}

// Partial sums [chunks, d] for dweight and / or dbias from the stream's cache (one allocation);
// the workspace goes back to the cache when the returned Storage is released.
template <typename C>
std::shared_ptr<Storage> param_workspace(int64_t chunks, int64_t d, bool want_w, bool want_b,
                                         StreamRef stream, C*& part_w, C*& part_b) {
  const int64_t outputs = (want_w ? 1 : 0) + (want_b ? 1 : 0);
  auto workspace = Storage::allocate(static_cast<size_t>(outputs * chunks * d) * sizeof(C),
                                     stream.device, stream);
  C* next = static_cast<C*>(workspace->data());
  part_w = want_w ? next : nullptr;
  part_b = want_b ? next + (want_w ? chunks * d : 0) : nullptr;
  return workspace;
}

template <typename T>
void finish_params(const compute_t<T>* part_w, const compute_t<T>* part_b, int64_t chunks,
                   int64_t d, T* dweight, T* dbias, cudaStream_t s) {
  const unsigned fin = grid(ceil_div(d, kFinishThreads));
  if (dweight != nullptr) param_finish_kernel<T><<<fin, kFinishThreads, 0, s>>>(part_w, chunks, d, dweight);
  if (dbias != nullptr) param_finish_kernel<T><<<fin, kFinishThreads, 0, s>>>(part_b, chunks, d, dbias);
  PIT_CUDA_CHECK(cudaGetLastError());
}

// dweight / dbias by the separate column pass (rows too long for the register path).
template <typename T>
void column_params(const T* dy, int64_t sdy, const T* x, int64_t sx, const compute_t<T>* mean,
                   const compute_t<T>* rstd, const Params& prm, T* dweight, T* dbias,
                   StreamRef stream) {
  using C = compute_t<T>;
  const int64_t rows = prm.rows, d = prm.d;
  const cudaStream_t s = native(stream);
  // Chunking from the shape alone (see the top of the file).
  const int64_t col_tiles = ceil_div(d, kParamCols);
  int64_t chunks = std::clamp<int64_t>(ceil_div(kParamTargetBlocks, col_tiles), 1,
                                       std::min(ceil_div(rows, kMinChunkRows), kMaxChunks));
  const int64_t chunk_rows = ceil_div(rows, chunks);
  chunks = ceil_div(rows, chunk_rows);
  std::shared_ptr<Storage> workspace;
  C* part_w = nullptr;
  C* part_b = nullptr;
  if (chunks > 1)
    workspace = param_workspace<C>(chunks, d, dweight != nullptr, dbias != nullptr, stream, part_w, part_b);
  const dim3 blocks(static_cast<unsigned>(col_tiles), static_cast<unsigned>(chunks));
  param_partial_kernel<T><<<blocks, dim3(kParamCols, kParamRowLanes), 0, s>>>(
      dy, sdy, x, sx, mean, rstd, prm, chunk_rows, chunks == 1, part_w, part_b, dweight, dbias);
  PIT_CUDA_CHECK(cudaGetLastError());
  if (chunks > 1) finish_params<T>(part_w, part_b, chunks, d, dweight, dbias, s);
}

template <typename T>
void backward_typed(const cpu::NormArgs& a, const T* dy, int64_t sdy, const T* x, int64_t sx,
                    const T* w, const compute_t<T>* mean, const compute_t<T>* rstd, T* dx,
                    T* dweight, T* dbias, StreamRef stream) {
  const int64_t rows = a.rows, d = a.dim;
  DeviceGuard guard(stream.device.index);
  const cudaStream_t s = native(stream);
  const Params prm{rows, d, a.rms, 1.0 / static_cast<double>(d)};
  if (rows == 0) {  // sums over no rows
    if (dweight != nullptr) PIT_CUDA_CHECK(cudaMemsetAsync(dweight, 0, d * sizeof(T), s));
    if (dbias != nullptr) PIT_CUDA_CHECK(cudaMemsetAsync(dbias, 0, d * sizeof(T), s));
    return;
  }
  // Rows the fused kernel does not take (norm_backward tried it first): dx by rows, then dweight /
  // dbias by the column pass (an earlier fusion of the sums into these row kernels, partials per
  // block, measured 3x slower on an H200).
  const bool cached = launch_cached<T>(rows, d, [&]<bool kBlock, int kPacks>(unsigned blocks, int threads) {
    cached_backward_kernel<T, kBlock, kPacks><<<blocks, threads, 0, s>>>(dy, sdy, x, sx, w, mean, rstd, dx, prm);
  });
  if (!cached)
    stream_backward_kernel<T><<<grid(rows), kStreamThreads, 0, s>>>(dy, sdy, x, sx, w, mean, rstd, dx, prm);
  PIT_CUDA_CHECK(cudaGetLastError());
  if (dweight != nullptr || dbias != nullptr)
    column_params<T>(dy, sdy, x, sx, mean, rstd, prm, dweight, dbias, stream);
}

}  // namespace

void norm_forward(const cpu::NormArgs& a, const void* x, int64_t x_stride, const void* weight,
                  const void* bias, double eps, void* y, void* mean, void* rstd, StreamRef stream) {
  dispatch_floating(a.dtype, a.rms ? "rmsnorm" : "layernorm", [&]<typename T>() {
    using C = compute_t<T>;
    forward_typed<T>(a, static_cast<const T*>(x), x_stride, static_cast<const T*>(weight),
                     static_cast<const T*>(bias), eps, static_cast<T*>(y), static_cast<C*>(mean),
                     static_cast<C*>(rstd), stream);
  });
}

void norm_backward(const cpu::NormArgs& a, const void* dy, int64_t dy_stride, const void* x,
                   int64_t x_stride, const void* weight, const void* mean, const void* rstd,
                   void* dx, void* dweight, void* dbias, StreamRef stream) {
  if (norm_backward_bulk(a, dy, dy_stride, x, x_stride, weight, mean, rstd, dx, dweight, dbias, stream)) return;
  if (norm_backward_fused(a, dy, dy_stride, x, x_stride, weight, mean, rstd, dx, dweight, dbias, stream)) return;
  dispatch_floating(a.dtype, a.rms ? "rmsnorm_backward" : "layernorm_backward", [&]<typename T>() {
    using C = compute_t<T>;
    backward_typed<T>(a, static_cast<const T*>(dy), dy_stride, static_cast<const T*>(x), x_stride,
                      static_cast<const T*>(weight), static_cast<const C*>(mean),
                      static_cast<const C*>(rstd), static_cast<T*>(dx), static_cast<T*>(dweight),
                      static_cast<T*>(dbias), stream);
  });
}

}  // namespace pit::cuda
