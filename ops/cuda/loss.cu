// CUDA fused log-softmax + NLL (cross-entropy) and its backward, one pass over each row.
//
// Forward: one warp per row for up to 1024 classes (8 rows per 256-thread block), one block
// per row beyond (256 threads, 512 from 8192 classes: a 50k vocabulary gives each thread about
// a dozen 16-byte loads). Each thread keeps an online (max, sum of exp(x - max)) pair, rescaling
// the sum when the max grows (once per 16-byte pack, see acc_pack), and the plain sum of x for
// label smoothing; the triples merge
// through shuffles (and shared memory across warps) in a fixed order. One thread then reads
// x[target] and writes the row's loss and log-sum-exp.
//
// Backward: the same row mapping; dx = g * (exp(x - lse) - eps / C - (1 - eps) [c == t]) in one
// read of the row and one write.
//
// Rows are read with 16-byte loads: a row whose start is not 16-byte aligned (a vocabulary like
// 50257 makes most rows so) is walked as a scalar head up to the first aligned address, aligned
// packs, and a scalar tail. The backward does the same when the logits row and the gradient row
// share their misalignment, and falls back to scalar accesses otherwise.
//
// Targets: a target outside [0, C) that is not ignore_index gives that row a NaN loss and lse
// (and NaN gradients in backward) instead of an out-of-bounds read, and the forward records it in
// the device's error slot (core/cuda/device_error.cuh), so the host's next read throws a
// pit::Error naming the target, the row and C (see ops/cuda/loss.h). The check is the compare
// on the target the kernel loads anyway; nothing synchronises.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/convert.h"
#include "core/cuda/backend.h"
#include "core/cuda/device_error.cuh"
#include "core/cuda/runtime.h"
#include "ops/cuda/device_utils.cuh"
#include "ops/cuda/loss.h"

namespace pit::cuda {
namespace {

constexpr int64_t kWarpRowMax = 1024;
constexpr int kRowsWarpThreads = 256;
constexpr int kBlockThreads = 256;
constexpr int kLongBlockThreads = 512;
constexpr int64_t kLongRow = 8192;
constexpr int64_t kMaxGrid = int64_t{1} << 20;

// Elements before the first 16-byte aligned address of p (T-aligned), at most n.
template <typename T>
__device__ __forceinline__ int64_t head_of(const T* p, int64_t n) {
  const auto mis = static_cast<int64_t>(reinterpret_cast<uintptr_t>(p) % 16);
  const int64_t head = mis == 0 ? 0 : (16 - mis) / static_cast<int64_t>(sizeof(T));
  return head < n ? head : n;
}

// Thread t of nt visits the n elements of a row: the aligned 16-byte packs go to fp(values[kN])
// whole, the scalar head and tail elements to f(index, value).
template <typename T, typename F, typename FP>
__device__ __forceinline__ void visit_row_packs(const T* __restrict__ row, int64_t n, int t, int nt,
                                                F&& f, FP&& fp) {
  using C = compute_t<T>;
  constexpr int kN = Pack<T>::kN;
  const int64_t head = head_of(row, n);
  for (int64_t k = t; k < head; k += nt) f(k, widen(row[k]));
  const int64_t packs = (n - head) / kN;
  const auto* p = reinterpret_cast<const Pack<T>*>(row + head);
#pragma unroll 4  // several 16-byte loads in flight per thread
  for (int64_t q = t; q < packs; q += nt) {
    const Pack<T> v = p[q];
    C w[kN];
#pragma unroll
    for (int e = 0; e < kN; ++e) w[e] = widen(v.v[e]);
    fp(w);
  }
  for (int64_t k = head + packs * kN + t; k < n; k += nt) f(k, widen(row[k]));
}

// out[k] = f(k, in[k]) over a row of n (f returns the compute type).
template <typename T, typename F>
__device__ __forceinline__ void transform_row(const T* __restrict__ in, T* __restrict__ out,
                                              int64_t n, int t, int nt, F&& f) {
  constexpr int kN = Pack<T>::kN;
  const bool same_phase = reinterpret_cast<uintptr_t>(in) % 16 == reinterpret_cast<uintptr_t>(out) % 16;
  if (!same_phase) {
    for (int64_t k = t; k < n; k += nt) out[k] = convert<T>(f(k, widen(in[k])));
    return;
  }
  const int64_t head = head_of(in, n);
  for (int64_t k = t; k < head; k += nt) out[k] = convert<T>(f(k, widen(in[k])));
  const int64_t packs = (n - head) / kN;
  const auto* pi = reinterpret_cast<const Pack<T>*>(in + head);
  auto* po = reinterpret_cast<Pack<T>*>(out + head);
  for (int64_t q = t; q < packs; q += nt) {
    const Pack<T> v = pi[q];
    Pack<T> o;
#pragma unroll
    for (int e = 0; e < kN; ++e) o.v[e] = convert<T>(f(head + q * kN + e, widen(v.v[e])));
    po[q] = o;
  }
  for (int64_t k = head + packs * kN + t; k < n; k += nt) out[k] = convert<T>(f(k, widen(in[k])));
}

template <typename T>
__device__ __forceinline__ void fill_row(T* __restrict__ out, int64_t n, int t, int nt, T value) {
  for (int64_t k = t; k < n; k += nt) out[k] = value;
}

// ---- online (max, sum of exp(x - max), sum of x) ------------------------------------------------

// -inf elements add nothing to s (a row may be partly masked); NaN elements make s NaN.
template <typename C>
struct Acc {
  C m, s, sx;
};

template <typename C>
__device__ __forceinline__ Acc<C> acc_identity() {
  return {-std::numeric_limits<C>::infinity(), C(0), C(0)};
}

template <typename C>
__device__ __forceinline__ void acc_step(Acc<C>& a, C x) {
  if (x > a.m) {
    a.s = a.s * ex(a.m - x) + C(1);
    a.m = x;
  } else if (x != -std::numeric_limits<C>::infinity()) {
    a.s += ex(x - a.m);
  }
  a.sx += x;
}

__device__ __forceinline__ float ex2(float v) { return exp2f(v); }
__device__ __forceinline__ double ex2(double v) { return exp2(v); }

// A whole pack at once: one max, at most one rescale, then kN exponentials without branches
// (exp(x - m) as exp2(x * log2(e) - m * log2(e)), one FMA and one MUFU.EX2 in f32). Per-element
// acc_step costs a compare, a branch and an accurate expf per element, which made the forward
// instruction-bound at a 50k vocabulary. fmax ignores NaN, and a pack seen while every element
// so far is -inf adds nothing, so a NaN element may miss the sum; it always reaches sx, the plain
// sum, which the row's finalisation checks (row_lse) instead of a compare per element here.
template <typename C, int kN>
__device__ __forceinline__ void acc_pack(Acc<C>& a, const C (&v)[kN]) {
  constexpr C kLog2e = C(1.4426950408889634);
  C pm = v[0];
#pragma unroll
  for (int e = 1; e < kN; ++e) pm = fmax(pm, v[e]);
#pragma unroll
  for (int e = 0; e < kN; ++e) a.sx += v[e];
  if (pm > a.m) {
    a.s *= ex2((a.m - pm) * kLog2e);  // 0 while a.m is -inf (then a.s is 0 too)
    a.m = pm;
  }
  if (a.m == -std::numeric_limits<C>::infinity()) return;  // every element so far is -inf or NaN
  const C ml = a.m * kLog2e;
  C s = 0;
#pragma unroll
  for (int e = 0; e < kN; ++e) s += ex2(fma(v[e], kLog2e, -ml));
  a.s += s;
}

// The row's log-sum-exp. NaN when sx is: a NaN logit (which acc_pack may have left out of s), or
// +inf beside -inf (where s is NaN already through the +inf).
template <typename C>
__device__ __forceinline__ C row_lse(const Acc<C>& a) {
  return a.sx != a.sx ? a.sx : a.m + ln(a.s);
}

template <typename C>
__device__ __forceinline__ Acc<C> acc_merge(Acc<C> a, Acc<C> b) {
  const C m = a.m > b.m ? a.m : b.m;
  if (m == -std::numeric_limits<C>::infinity()) return {m, a.s + b.s, a.sx + b.sx};
  return {m, a.s * ex(a.m - m) + b.s * ex(b.m - m), a.sx + b.sx};
}

template <typename C>
__device__ __forceinline__ Acc<C> warp_acc(Acc<C> a) {
#pragma unroll
  for (int off = kWarp / 2; off > 0; off /= 2)
    a = acc_merge(a, Acc<C>{__shfl_down_sync(kFullMask, a.m, off), __shfl_down_sync(kFullMask, a.s, off),
                            __shfl_down_sync(kFullMask, a.sx, off)});
  return {__shfl_sync(kFullMask, a.m, 0), __shfl_sync(kFullMask, a.s, 0), __shfl_sync(kFullMask, a.sx, 0)};
}

template <typename C>
__device__ __forceinline__ Acc<C> block_acc(Acc<C> a) {
  __shared__ C sm[kWarp], ss[kWarp], sx[kWarp];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  a = warp_acc(a);
  __syncthreads();  // the arrays may still be read for the previous row
  if (lane == 0) {
    sm[warp] = a.m;
    ss[warp] = a.s;
    sx[warp] = a.sx;
  }
  __syncthreads();
  a = lane < static_cast<int>(blockDim.x / kWarp) ? Acc<C>{sm[lane], ss[lane], sx[lane]} : acc_identity<C>();
  return warp_acc(a);
}

struct Params {
  int64_t rows, classes, ignore_index;
  double eps;
};

// ---- kernels ----------------------------------------------------------------------------------

template <typename T, typename I, bool kBlock>
__global__ void forward_kernel(const T* __restrict__ x, int64_t stride, const I* __restrict__ targets,
                               compute_t<T>* __restrict__ loss, compute_t<T>* __restrict__ lse,
                               Params prm, DeviceErrorSink err) {
  using C = compute_t<T>;
  using W = RowWalk<kBlock>;
  const int t = W::t(), nt = W::nt();
  const int64_t n = prm.classes;
  const C eps = static_cast<C>(prm.eps);
  // Every branch below depends on the row only, so a warp / block takes it together.
  for (int64_t r = W::first(); r < prm.rows; r += W::step()) {
    const int64_t target = static_cast<int64_t>(targets[r]);
    if (target == prm.ignore_index) {
      if (t == 0) loss[r] = lse[r] = C(0);
      continue;
    }
    if (target < 0 || target >= n) {
      if (t == 0) {
        loss[r] = lse[r] = std::numeric_limits<C>::quiet_NaN();
        record_device_error(err, target, n, r);
      }
      continue;
    }
    const T* xr = x + r * stride;
    Acc<C> acc = acc_identity<C>();
    visit_row_packs(xr, n, t, nt, [&](int64_t, C v) { acc_step(acc, v); },
                    [&](const C(&v)[Pack<T>::kN]) { acc_pack(acc, v); });
    if constexpr (kBlock)
      acc = block_acc(acc);
    else
      acc = warp_acc(acc);
    if (t == 0) {
      const C l = row_lse(acc);
      C out = l - (C(1) - eps) * static_cast<C>(widen(xr[target]));
      if (eps > C(0)) out -= eps * acc.sx / static_cast<C>(n);
      loss[r] = out;
      lse[r] = l;
    }
  }
}

template <typename T, typename I, bool kBlock>
__global__ void backward_kernel(const compute_t<T>* __restrict__ grad_loss, const T* __restrict__ x,
                                int64_t stride, const I* __restrict__ targets,
                                const compute_t<T>* __restrict__ lse, T* __restrict__ dx,
                                Params prm) {
  using C = compute_t<T>;
  using W = RowWalk<kBlock>;
  const int t = W::t(), nt = W::nt();
  const int64_t n = prm.classes;
  const C eps = static_cast<C>(prm.eps), uniform = eps / static_cast<C>(n), hit = C(1) - eps;
  for (int64_t r = W::first(); r < prm.rows; r += W::step()) {
    const int64_t target = static_cast<int64_t>(targets[r]);
    T* out = dx + r * n;
    if (target == prm.ignore_index) {
      fill_row(out, n, t, nt, convert<T>(C(0)));
      continue;
    }
    const bool bad = target < 0 || target >= n;
    const C g = bad ? std::numeric_limits<C>::quiet_NaN() : grad_loss[r], l = lse[r];
    transform_row(x + r * stride, out, n, t, nt, [&](int64_t k, C v) {
      return g * (ex(v - l) - uniform - (k == target ? hit : C(0)));
    });
  }
}

// ---- launch ----------------------------------------------------------------------------------

unsigned grid(int64_t blocks) { return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, kMaxGrid)); }

// Calls launch.operator()<kBlock>(blocks, threads): warps per row or a block per row.
template <typename Launch>
void launch_rows(int64_t rows, int64_t classes, Launch&& launch) {
  if (classes <= kWarpRowMax) {
    launch.template operator()<false>(grid((rows + kRowsWarpThreads / kWarp - 1) / (kRowsWarpThreads / kWarp)),
                                      kRowsWarpThreads);
  } else {
    launch.template operator()<true>(grid(rows), classes >= kLongRow ? kLongBlockThreads : kBlockThreads);
  }
  PIT_CUDA_CHECK(cudaGetLastError());
}

// The error kind of a bad target, registered on first use.
int32_t bad_target_kind() {
  static const int32_t kind = [] {
    DeviceErrorKind k;
    k.op = "cross_entropy";
    k.value = "target";
    k.axis = "the class dim";
    k.position = "row";
    k.valid_extra = " or ignore_index";
    k.fix = "fix the targets (class ids in [0, C), or ignore_index for rows to skip), or pass them "
            "as a CPU tensor to have them checked when cross_entropy is called; the row's loss is "
            "NaN";
    return register_device_error_kind(k);
  }();
  return kind;
}

template <typename Fn>
void dispatch2(const cpu::CrossEntropyArgs& a, const char* op, Fn&& fn) {
  dispatch_floating(a.dtype, op, [&]<typename T>() {
    dispatch<DType::i64, DType::i32>(a.target_dtype, op, [&]<typename I>() {
      if constexpr (std::is_same_v<I, int64_t> || std::is_same_v<I, int32_t>)
        fn.template operator()<T, I>();
    });
  });
}

}  // namespace

void cross_entropy(const cpu::CrossEntropyArgs& a, const void* logits, int64_t stride,
                   const void* targets, void* loss, void* lse, StreamRef stream) {
  if (a.rows == 0) return;
  DeviceGuard guard(stream.device.index);
  const cudaStream_t s = native(stream);
  const Params prm{a.rows, a.classes, a.ignore_index, a.label_smoothing};
  const DeviceErrorSink err = device_error_sink(stream.device.index, bad_target_kind(), -1);
  dispatch2(a, "cross_entropy", [&]<typename T, typename I>() {
    using C = compute_t<T>;
    const auto* x = static_cast<const T*>(logits);
    const auto* tg = static_cast<const I*>(targets);
    launch_rows(a.rows, a.classes, [&]<bool kBlock>(unsigned blocks, int threads) {
      forward_kernel<T, I, kBlock><<<blocks, threads, 0, s>>>(x, stride, tg, static_cast<C*>(loss),
                                                              static_cast<C*>(lse), prm, err);
    });
  });
}

void cross_entropy_backward(const cpu::CrossEntropyArgs& a, const void* grad_loss,
                            const void* logits, int64_t stride, const void* targets,
                            const void* lse, void* dlogits, StreamRef stream) {
  if (a.rows == 0) return;
  DeviceGuard guard(stream.device.index);
  const cudaStream_t s = native(stream);
  const Params prm{a.rows, a.classes, a.ignore_index, a.label_smoothing};
  dispatch2(a, "cross_entropy_backward", [&]<typename T, typename I>() {
    using C = compute_t<T>;
    const auto* x = static_cast<const T*>(logits);
    const auto* tg = static_cast<const I*>(targets);
    launch_rows(a.rows, a.classes, [&]<bool kBlock>(unsigned blocks, int threads) {
      backward_kernel<T, I, kBlock><<<blocks, threads, 0, s>>>(
          static_cast<const C*>(grad_loss), x, stride, tg, static_cast<const C*>(lse),
          static_cast<T*>(dlogits), prm);
    });
  });
}

}  // namespace pit::cuda
