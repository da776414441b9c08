#pragma once
// SWrite: the epilogue that puts an f32 accumulator tile where it belongs: rows of C named by an
// index (scattered) or compact, with a plain store (+ bias, activation; with EpiArgs::pre also
// the values before the activation, into a second output), an accumulate that
// owns its elements (read-modify-write), or an atomic accumulate where several tiles meet one
// output element (MoE combine, K-chunk segments, scattered partial sums). The accumulator
// fragments give each thread pairs of adjacent columns of one row: swrite_pair writes such a
// pair, as one 4-byte access (8 for f32) where the address allows.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "ops/cuda/device_utils.cuh"
#include "ops/cuda/mma_ptx.cuh"

namespace pit::sparse::cuda::dev {

enum class WriteMode : int { store = 0, accumulate = 1, atomic = 2 };
// Fused activations (ops/elementwise_op.h semantics, in f32).
enum class Act : int { none = 0, relu, gelu_tanh, gelu_erf, silu };

struct EpiArgs {
  WriteMode mode = WriteMode::store;
  Act act = Act::none;
  const void* bias = nullptr;  // [N] or [S, N] (row `segment` taken by the caller); store only
  // Store with an activation only: the values before it (after the bias) also go to a second
  // output of C's layout, pre_delta elements after C (row + pre_delta is the same row there).
  bool pre = false;
  int64_t pre_delta = 0;
  // With an activation: the row's scale (gate) multiplies the activation's output rather than the
  // accumulator, so pre (if kept) holds the unscaled values (the MoE up GEMM writes pre and
  // gate * act(pre)). swrite_staged then passes the row's scale in `post`, which every store path
  // applies after the activation.
  bool scale_after = false;
  float post = 1.f;
};

__device__ __forceinline__ float activate(Act act, float x) {
  switch (act) {
    case Act::relu: return x <= 0.f ? 0.f : x;  // NaN stays NaN (as ops::relu)
    case Act::gelu_tanh: {
      // 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)): one exp and a fast division (a few
      // instructions, where tanhf is a long sequence), and no cancellation for negative x.
      // An exp past the float range gives x / inf = 0, the limit.
      const float k0 = 0.7978845608028654f, k1 = 0.044715f;  // sqrt(2/pi), cubic coefficient
      const float u = k0 * (x + k1 * x * x * x);
      return __fdividef(x, 1.f + __expf(-2.f * u));
    }
    case Act::gelu_erf: return 0.5f * x * (1.f + erff(x * 0.7071067811865476f));
    case Act::silu: return __fdividef(x, 1.f + __expf(-x));
    default: return x;
  }
}

template <typename T>
__device__ __forceinline__ void atomic_add1(T* p, float v) {
  if constexpr (std::is_same_v<T, float>) {
    atomicAdd(p, v);
  } else if constexpr (std::is_same_v<T, BFloat16>) {
    atomicAdd(reinterpret_cast<__nv_bfloat16*>(p), __float2bfloat16_rn(v));
  } else {
    atomicAdd(reinterpret_cast<__half*>(p), __float2half_rn(v));
  }
}

// Two adjacent elements p[0], p[1]; p is 2-element aligned (4 bytes for f16/bf16).
template <typename T>
__device__ __forceinline__ void atomic_add2(T* p, float v0, float v1) {
  if constexpr (std::is_same_v<T, float>) {
    atomicAdd(p, v0);
    atomicAdd(p + 1, v1);
  } else if constexpr (std::is_same_v<T, BFloat16>) {
    atomicAdd(reinterpret_cast<__nv_bfloat162*>(p), __floats2bfloat162_rn(v0, v1));
  } else {
    atomicAdd(reinterpret_cast<__half2*>(p), __floats2half2_rn(v0, v1));
  }
}

// One element for a store, before the activation: plus the bias, in f32.
template <typename T>
__device__ __forceinline__ float biased(float v, const EpiArgs& e, int64_t col) {
  return e.bias ? v + pit::cuda::widen(static_cast<const T*>(e.bias)[col]) : v;
}

// Final value of one element for a store: bias, then activation (times `post`: the row's scale
// where it comes after the activation), in f32.
template <typename T>
__device__ __forceinline__ float finish(float v, const EpiArgs& e, int64_t col) {
  v = biased<T>(v, e, col);
  return e.act != Act::none ? activate(e.act, v) * e.post : v;
}

// Writes v at row[col] (col < ncols checked by the caller).
template <typename T>
__device__ __forceinline__ void swrite_one(T* row, int64_t col, float v, const EpiArgs& e) {
  using pit::cuda::narrow;
  using pit::cuda::widen;
  switch (e.mode) {
    case WriteMode::store: row[col] = narrow<T>(finish<T>(v, e, col)); break;
    case WriteMode::accumulate: row[col] = narrow<T>(widen(row[col]) + v); break;
    case WriteMode::atomic: atomic_add1(row + col, v); break;
  }
}

// A store that also keeps the values before the activation (EpiArgs::pre), columns col and
// col + 1 (when < ncols), element by element: only the ragged edges and misaligned rows of such a
// store come here. Out of line, so that the other epilogues' inlined code does not carry it.
template <typename T>
__device__ __noinline__ void swrite_pair_pre(T* row, int64_t col, int64_t ncols, float v0, float v1, EpiArgs e) {
  const float v[2] = {v0, v1};
  for (int i = 0; i < 2 && col + i < ncols; ++i) {
    const float b = biased<T>(v[i], e, col + i);
    row[e.pre_delta + col + i] = pit::cuda::narrow<T>(b);
    row[col + i] = pit::cuda::narrow<T>(activate(e.act, b) * e.post);
  }
}

// Writes columns col and col + 1 of a row (col + 1 only when < ncols).
template <typename T>
__device__ __forceinline__ void swrite_pair(T* row, int64_t col, int64_t ncols, float v0, float v1,
                                            const EpiArgs& e) {
  using pit::cuda::narrow;
  using pit::cuda::widen;
  if (col >= ncols) return;
  if (e.pre) {
    swrite_pair_pre<T>(row, col, ncols, v0, v1, e);
    return;
  }
  T* p = row + col;
  const bool pair = col + 1 < ncols && (reinterpret_cast<uintptr_t>(p) % (2 * sizeof(T))) == 0;
  if (!pair) {
    swrite_one(row, col, v0, e);
    if (col + 1 < ncols) swrite_one(row, col + 1, v1, e);
    return;
  }
  if (e.mode == WriteMode::atomic) {
    atomic_add2(p, v0, v1);
    return;
  }
  if (e.mode == WriteMode::store) {
    v0 = finish<T>(v0, e, col);
    v1 = finish<T>(v1, e, col + 1);
  } else {
    v0 += widen(p[0]);
    v1 += widen(p[1]);
  }
  if constexpr (std::is_same_v<T, float>) {
    *reinterpret_cast<float2*>(p) = make_float2(v0, v1);
  } else {
    const uint32_t bits = static_cast<uint32_t>(narrow<T>(v0).bits) |
                          (static_cast<uint32_t>(narrow<T>(v1).bits) << 16);
    *reinterpret_cast<uint32_t*>(p) = bits;
  }
}

// Eight adjacent elements row[col .. col + 8) = (lo, hi) (col < ncols checked by the caller): one or
// two 16-byte accesses when all eight exist and the address is aligned, else pair by pair. Not
// inlined (arguments by value, in registers): the epilogue's modes and activations are code that
// the main loop should not have to share the instruction cache with.
template <typename T>
__device__ __noinline__ void swrite_vec8(T* row, int64_t col, int64_t ncols, float4 lo, float4 hi, EpiArgs e) {
  using pit::cuda::narrow;
  using pit::cuda::widen;
  const float v[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
  T* p = row + col;
  const auto aligned = [](const T* q) { return (reinterpret_cast<uintptr_t>(q) % 16) == 0; };
  const bool whole = col + 8 <= ncols && aligned(p) && (!e.pre || aligned(p + e.pre_delta));
  if (!whole) {
#pragma unroll
    for (int h = 0; h < 8; h += 2) {
      if (col + h >= ncols) break;
      swrite_pair<T>(row, col + h, ncols, v[h], v[h + 1], e);
    }
    return;
  }
  constexpr int kPerVec = 16 / sizeof(T);  // elements per 16-byte access
#pragma unroll
  for (int h0 = 0; h0 < 8; h0 += kPerVec) {
    alignas(16) T out[kPerVec];
    alignas(16) T pre[kPerVec];
    if (e.mode == WriteMode::accumulate) *reinterpret_cast<uint4*>(out) = *reinterpret_cast<const uint4*>(p + h0);
#pragma unroll
    for (int h = 0; h < kPerVec; ++h) {
      const float x = v[h0 + h];
      if (e.mode == WriteMode::store) {
        const float b = biased<T>(x, e, col + h0 + h);
        pre[h] = narrow<T>(b);
        out[h] = narrow<T>((e.act != Act::none ? activate(e.act, b) : b) * e.post);
      } else {
        out[h] = narrow<T>(widen(out[h]) + x);
      }
    }
    if (e.pre) *reinterpret_cast<uint4*>(p + e.pre_delta + h0) = *reinterpret_cast<const uint4*>(pre);
    *reinterpret_cast<uint4*>(p + h0) = *reinterpret_cast<const uint4*>(out);
  }
}

// The activation of eight values (the switch taken once).
__device__ __forceinline__ void activate8(Act act, float4& lo, float4& hi) {
  const auto all = [&](auto f) {
    lo = make_float4(f(lo.x), f(lo.y), f(lo.z), f(lo.w));
    hi = make_float4(f(hi.x), f(hi.y), f(hi.z), f(hi.w));
  };
  switch (act) {
    case Act::relu: all([](float x) { return activate(Act::relu, x); }); break;
    case Act::gelu_tanh: all([](float x) { return activate(Act::gelu_tanh, x); }); break;
    case Act::gelu_erf: all([](float x) { return activate(Act::gelu_erf, x); }); break;
    case Act::silu: all([](float x) { return activate(Act::silu, x); }); break;
    default: break;
  }
}

// Two f32 values rounded to T (16-bit) and packed into one 32-bit word (a at the lower address):
// stores of accumulator pairs.
template <typename T>
__device__ __forceinline__ uint32_t pack2(float a, float b) {
  return static_cast<uint32_t>(pit::cuda::narrow<T>(a).bits) | (static_cast<uint32_t>(pit::cuda::narrow<T>(b).bits) << 16);
}

// Eight adjacent elements stored at p (16-byte aligned): the plain store of swrite_staged.
template <typename T>
__device__ __forceinline__ void store8(T* p, float4 lo, float4 hi) {
  if constexpr (std::is_same_v<T, float>) {
    reinterpret_cast<float4*>(p)[0] = lo;
    reinterpret_cast<float4*>(p)[1] = hi;
  } else {
    *reinterpret_cast<uint4*>(p) =
        make_uint4(pack2<T>(lo.x, lo.y), pack2<T>(lo.z, lo.w), pack2<T>(hi.x, hi.y), pack2<T>(hi.z, hi.w));
  }
}

// Eight adjacent elements stored at p (16-byte aligned) through the activation, and with e.pre
// the values before it at p + e.pre_delta. Out of line, as swrite_vec8: inlined into the staged
// epilogue's unrolled rows, the four activations' code doubled gather_ws.cu's object and slowed
// every M-gather engine on an H200 whether it ran or not (the MoE up GEMM without an activation
// 0.482 against 0.417-0.440 ms, docs/BENCHMARKS.md).
template <typename T>
__device__ __noinline__ void store8_act(T* p, float4 lo, float4 hi, EpiArgs e) {
  if (e.pre) store8<T>(p + e.pre_delta, lo, hi);
  activate8(e.act, lo, hi);
  if (e.post != 1.f) {
    lo = make_float4(lo.x * e.post, lo.y * e.post, lo.z * e.post, lo.w * e.post);
    hi = make_float4(hi.x * e.post, hi.y * e.post, hi.z * e.post, hi.w * e.post);
  }
  store8<T>(p, lo, hi);
}

// e with the row's scale as the factor after the activation (EpiArgs::scale_after).
__device__ __forceinline__ EpiArgs with_post(EpiArgs e, float scale) {
  e.post = scale;
  return e;
}

// Destination of one staged tile row: where it goes (null: nowhere) and a factor.
template <typename T>
struct RowDst {
  T* row;
  float scale;
};

// SWrite of a whole accumulator tile staged in shared memory ([kRows][ld] f32, see
// Acc::to_smem): every thread takes runs of 8 columns of one row, so a warp writes whole rows of C
// with 16-byte stores (atomic adds: pairs, a warp on 64 consecutive pairs). row(r) gives the
// destination row of tile row r (null: not written) and its scale (gate weights of the M-gather);
// columns are n0 + [0, kCols), those >= ncols skipped.
// All kThreads threads call it (tid: the caller's index among them); the caller synchronises
// before and after (shared memory reuse).
template <typename T, int kRows, int kCols, int kThreads, class RowFn>
__device__ __forceinline__ void swrite_staged(const float* tile, int ld, RowFn&& row, int64_t n0, int64_t ncols,
                                              const EpiArgs& e, int tid = threadIdx.x) {
  if (e.mode == WriteMode::atomic) {
    // Atomic adds go pair by pair, consecutive threads on consecutive pairs of one row: each warp
    // instruction then covers 256 contiguous bytes of C.
    constexpr int kPairs = kCols / 2;
#pragma unroll 1
    for (int i = tid; i < kRows * kPairs; i += kThreads) {
      const int r = i / kPairs, c = (i % kPairs) * 2;
      const int64_t col = n0 + c;
      if (col >= ncols) continue;
      const auto [dst, scale] = row(r);
      if (dst == nullptr) continue;
      const float2 v = *reinterpret_cast<const float2*>(tile + r * ld + c);
      swrite_pair<T>(dst, col, ncols, v.x * scale, v.y * scale, e);
    }
    return;
  }
  // A store of eight whole, aligned elements is inlined, with its bias added as a vector: at high
  // sparsity the PIT GEMMs' tiles have few k-steps and the epilogue weighs (under ncu on an H200
  // the out-of-line path was 27-33 % of the 128x1 K-condense kernel's warp samples at 90 %, and a
  // bias taken element by element out of line doubled block_linear's 0.40 ms at 10 % density).
  // With an activation (and its pre), such runs take store8_act.
  const bool store = e.mode == WriteMode::store;
  const T* const bias = static_cast<const T*>(e.bias);
  const auto aligned16 = [](const T* q) { return (reinterpret_cast<uintptr_t>(q) % 16) == 0; };
  // Whether the run of 8 columns at col takes the inlined store.
  const auto inlined = [&](int64_t col) { return store && col + 8 <= ncols; };
  // The bias of such a run, in f32 (lo and hi left as they are without one).
  const auto bias8 = [&](int64_t col, float4& lo, float4& hi) {
    if (bias == nullptr) return;
    float b[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) b[i] = pit::cuda::widen(bias[col + i]);
    lo = make_float4(b[0], b[1], b[2], b[3]);
    hi = make_float4(b[4], b[5], b[6], b[7]);
  };
  // Tile row r's run of 8 columns at c (column col = n0 + c < ncols) to its destination row;
  // whole: the run takes the inlined store, with the bias (blo, bhi).
  const auto run8 = [&](int r, int c, int64_t col, bool whole, float4 blo, float4 bhi) {
    const auto [dst, scale] = row(r);
    if (dst == nullptr) return;
    float4 lo = pit::cuda::ptx::ld_shared_f4(tile + r * ld + c);
    float4 hi = pit::cuda::ptx::ld_shared_f4(tile + r * ld + c + 4);
    if (scale != 1.f && !e.scale_after) {
      lo = make_float4(lo.x * scale, lo.y * scale, lo.z * scale, lo.w * scale);
      hi = make_float4(hi.x * scale, hi.y * scale, hi.z * scale, hi.w * scale);
    }
    T* p = dst + col;
    if (whole && aligned16(p) && (!e.pre || aligned16(p + e.pre_delta))) {
      if (bias != nullptr) {
        lo = make_float4(lo.x + blo.x, lo.y + blo.y, lo.z + blo.z, lo.w + blo.w);
        hi = make_float4(hi.x + bhi.x, hi.y + bhi.y, hi.z + bhi.z, hi.w + bhi.w);
      }
      if (e.act == Act::none) store8<T>(p, lo, hi);
      else store8_act<T>(p, lo, hi, e.scale_after ? with_post(e, scale) : e);
    } else {
      swrite_vec8<T>(dst, col, ncols, lo, hi, e.scale_after ? with_post(e, scale) : e);  // adds the bias itself
    }
  };
  constexpr int kPerRow = kCols / 8;
  if constexpr (kThreads % kPerRow == 0 && kRows % (kThreads / kPerRow) == 0) {
    // Every thread keeps one run of 8 columns in every row it writes: the column bound and the
    // bias are taken once, a row costs its destination, two shared loads and the store.
    constexpr int kStep = kThreads / kPerRow;
    const int c = (tid % kPerRow) * 8;
    const int64_t col = n0 + c;
    if (col >= ncols) return;
    const bool whole = inlined(col);
    float4 blo{}, bhi{};
    if (whole) bias8(col, blo, bhi);
#pragma unroll
    for (int j = 0; j < kRows / kStep; ++j) run8(tid / kPerRow + j * kStep, c, col, whole, blo, bhi);
  } else {
#pragma unroll 1
    for (int i = tid; i < kRows * kPerRow; i += kThreads) {
      const int r = i / kPerRow, c = (i % kPerRow) * 8;
      const int64_t col = n0 + c;
      if (col >= ncols) continue;
      const bool whole = inlined(col);
      float4 blo{}, bhi{};
      if (whole) bias8(col, blo, bhi);
      run8(r, c, col, whole, blo, bhi);
    }
  }
}

}  // namespace pit::sparse::cuda::dev
