// CUDA optimizer kernels.
//
// AdamW / SGD: one fused grid-stride kernel per parameter tensor reading param, grad and state
// once and writing param and state once, 16 bytes per operand per access (4 f32) when every
// pointer is 16-byte aligned (tensors from the caching allocator are), the n % 4 tail element by
// element. The element formulas are those of ops/optim_math.h, shared with the CPU kernels.
//
// Gradient utilities (global norm, clipping, loss-scale unscaling) work on lists of tensors: up
// to kListMax spans are passed by value in the kernel's parameters (no host-to-device copy of
// pointers), each span owns a fixed range of blocks sized by its length, and a block finds its
// span by a scan of the (block-uniform) range starts. The norm is reduced without atomics: each
// block writes one f32 partial, and one block adds the partials in order in f64, so the result
// depends only on the tensor sizes, never on timing.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <memory>

#include "core/cuda/launch.cuh"
#include "core/cuda/runtime.h"
#include "core/memory.h"
#include "ops/cuda/device_utils.cuh"
#include "ops/cuda/optim.h"

namespace pit::cuda {
namespace {

// Spans per launch of the list kernels: 48 x (pointer, length, block start) is under 1 KB of
// kernel parameters (the limit is 4 KB).
constexpr int kListMax = 48;
// A span gets one block per 4096 elements (16 per thread of 256), at most kMaxSpanBlocks: big
// tensors loop inside their blocks instead of launching tens of thousands of them.
constexpr int64_t kSpanBlockElems = 4096;
constexpr int64_t kMaxSpanBlocks = 512;
// The final norm reduction: one block of 256 threads (a multiple of the warp size, as
// block_sum needs).
constexpr unsigned kFinishThreads = 256;

struct alignas(16) Quad {
  float v[4];
};

// ---- fused updates ------------------------------------------------------------------------------

// Grid-stride walk over n elements: quad(q) for every 4-element group q when `vec` (16-byte
// accesses), then elem(i) for the elements left (all of them when !vec).
template <typename QuadFn, typename ElemFn>
__device__ __forceinline__ void grid_quads(int64_t n, bool vec, QuadFn quad, ElemFn elem) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  const int64_t first = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  const int64_t tail = vec ? n / 4 * 4 : 0;
  for (int64_t q = first; q < tail / 4; q += stride) quad(q);
  for (int64_t i = tail + first; i < n; i += stride) elem(i);
}

__global__ void adamw_kernel(AdamWCoeffs c, int64_t n, float* __restrict__ p,
                             const float* __restrict__ g, float* __restrict__ m,
                             float* __restrict__ v, bool vec) {
  grid_quads(
      n, vec,
      [&](int64_t q) {
        Quad P = reinterpret_cast<Quad*>(p)[q];
        const Quad G = reinterpret_cast<const Quad*>(g)[q];
        Quad M = reinterpret_cast<Quad*>(m)[q];
        Quad V = reinterpret_cast<Quad*>(v)[q];
#pragma unroll
        for (int e = 0; e < 4; ++e) adamw_element(P.v[e], G.v[e], M.v[e], V.v[e], c);
        reinterpret_cast<Quad*>(p)[q] = P;
        reinterpret_cast<Quad*>(m)[q] = M;
        reinterpret_cast<Quad*>(v)[q] = V;
      },
      [&](int64_t i) { adamw_element(p[i], g[i], m[i], v[i], c); });
}

// buf is null when c.momentum == 0.
__global__ void sgd_kernel(SgdCoeffs c, int64_t n, float* __restrict__ p,
                           const float* __restrict__ g, float* __restrict__ buf, bool vec) {
  grid_quads(
      n, vec,
      [&](int64_t q) {
        Quad P = reinterpret_cast<Quad*>(p)[q];
        const Quad G = reinterpret_cast<const Quad*>(g)[q];
        Quad B{};
        if (buf) B = reinterpret_cast<Quad*>(buf)[q];
#pragma unroll
        for (int e = 0; e < 4; ++e) sgd_element(P.v[e], G.v[e], B.v[e], c);
        reinterpret_cast<Quad*>(p)[q] = P;
        if (buf) reinterpret_cast<Quad*>(buf)[q] = B;
      },
      [&](int64_t i) {
        float unused = 0.0f;
        sgd_element(p[i], g[i], buf ? buf[i] : unused, c);
      });
}

// ---- lists of spans -----------------------------------------------------------------------------

struct SpanList {
  float* data[kListMax];
  int64_t n[kListMax];
  int first_block[kListMax + 1];  // span s owns blocks [first_block[s], first_block[s + 1])
  int count;
};

int64_t span_blocks(int64_t n) {
  return std::clamp<int64_t>(ceil_div(n, kSpanBlockElems), 1, kMaxSpanBlocks);
}

// The non-empty spans of xs, kListMax per list.
std::vector<SpanList> make_lists(const std::vector<FloatSpan>& xs) {
  std::vector<SpanList> lists;
  for (const FloatSpan& x : xs) {
    if (x.n == 0) continue;
    if (lists.empty() || lists.back().count == kListMax) {
      lists.emplace_back();
      lists.back().count = 0;
      lists.back().first_block[0] = 0;
    }
    SpanList& l = lists.back();
    l.data[l.count] = x.data;
    l.n[l.count] = x.n;
    l.first_block[l.count + 1] = l.first_block[l.count] + static_cast<int>(span_blocks(x.n));
    ++l.count;
  }
  return lists;
}

int total_blocks(const SpanList& l) { return l.first_block[l.count]; }

// This block's span, its block index within the span and the span's block count.
struct BlockSpan {
  float* x;
  int64_t n;
  int64_t local, blocks;
};

__device__ __forceinline__ BlockSpan block_span(const SpanList& l) {
  int s = 0;
  while (static_cast<int>(blockIdx.x) >= l.first_block[s + 1]) ++s;
  return {l.data[s], l.n[s], blockIdx.x - l.first_block[s], l.first_block[s + 1] - l.first_block[s]};
}

// Calls fn(element&) on each of this thread's elements of the block's span (quads when the span
// is 16-byte aligned, then the tail); kWrite stores the elements back.
template <bool kWrite, typename Fn>
__device__ __forceinline__ void visit(const BlockSpan& b, Fn&& fn) {
  const int64_t stride = b.blocks * blockDim.x;
  const int64_t first = b.local * blockDim.x + threadIdx.x;
  int64_t tail = 0;
  if (aligned16(b.x)) {
    const int64_t quads = b.n / 4;
    for (int64_t q = first; q < quads; q += stride) {
      Quad v = reinterpret_cast<Quad*>(b.x)[q];
#pragma unroll
      for (int e = 0; e < 4; ++e) fn(v.v[e]);
      if constexpr (kWrite) reinterpret_cast<Quad*>(b.x)[q] = v;
    }
    tail = quads * 4;
  }
  for (int64_t i = tail + first; i < b.n; i += stride) {
    float v = b.x[i];
    fn(v);
    if constexpr (kWrite) b.x[i] = v;
  }
}

__global__ void sum_squares_kernel(SpanList l, float* __restrict__ partials) {
  float acc = 0.0f;
  visit<false>(block_span(l), [&](float& v) { acc += v * v; });
  acc = block_sum(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

__global__ void finish_norm_kernel(const float* __restrict__ partials, int count,
                                   float* __restrict__ norm) {
  double acc = 0.0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) *norm = static_cast<float>(sqrt(acc));
}

__global__ void clip_kernel(SpanList l, const float* __restrict__ norm, float max_norm, float eps) {
  const float coef = max_norm / (*norm + eps);
  if (coef >= 1.0f) return;  // min(1, coef) == 1: nothing to scale (a NaN norm scales by NaN)
  visit<true>(block_span(l), [&](float& v) { v *= coef; });
}

__global__ void scale_check_kernel(SpanList l, float s, float* __restrict__ found_inf) {
  bool bad = false;
  visit<true>(block_span(l), [&](float& v) {
    v *= s;
    bad |= !isfinite(v);
  });
  if (bad) *found_inf = 1.0f;  // every writer writes the same value
}

}  // namespace

void adamw_step(const AdamWCoeffs& c, int64_t n, float* param, const float* grad, float* exp_avg,
                float* exp_avg_sq, StreamRef stream) {
  if (n == 0) return;
  DeviceGuard guard(stream.device.index);
  const bool vec = aligned16(param) && aligned16(grad) && aligned16(exp_avg) && aligned16(exp_avg_sq);
  adamw_kernel<<<grid_for(ceil_div(n, 4), kThreads), kThreads, 0, native(stream)>>>(
      c, n, param, grad, exp_avg, exp_avg_sq, vec);
  PIT_CUDA_CHECK(cudaGetLastError());
}

void sgd_step(const SgdCoeffs& c, int64_t n, float* param, const float* grad, float* buf,
              StreamRef stream) {
  if (n == 0) return;
  DeviceGuard guard(stream.device.index);
  const bool vec = aligned16(param) && aligned16(grad) && (buf == nullptr || aligned16(buf));
  sgd_kernel<<<grid_for(ceil_div(n, 4), kThreads), kThreads, 0, native(stream)>>>(c, n, param,
                                                                                  grad, buf, vec);
  PIT_CUDA_CHECK(cudaGetLastError());
}

void global_norm(const std::vector<FloatSpan>& xs, float* norm, StreamRef stream) {
  DeviceGuard guard(stream.device.index);
  const cudaStream_t s = native(stream);
  const std::vector<SpanList> lists = make_lists(xs);
  int partials = 0;
  for (const SpanList& l : lists) partials += total_blocks(l);
  // The scratch goes back to the allocator's cache for this stream when `scratch` dies; only
  // later work on the same stream can reuse it, so the kernels below finish with it first.
  const std::shared_ptr<Storage> scratch = Storage::allocate(
      static_cast<size_t>(std::max(partials, 1)) * sizeof(float), stream.device, stream);
  float* part = static_cast<float*>(scratch->data());
  int at = 0;
  for (const SpanList& l : lists) {
    sum_squares_kernel<<<total_blocks(l), kThreads, 0, s>>>(l, part + at);
    PIT_CUDA_CHECK(cudaGetLastError());
    at += total_blocks(l);
  }
  finish_norm_kernel<<<1, kFinishThreads, 0, s>>>(part, partials, norm);
  PIT_CUDA_CHECK(cudaGetLastError());
}

void clip_by_norm(const std::vector<FloatSpan>& xs, const float* norm, float max_norm, float eps,
                  StreamRef stream) {
  DeviceGuard guard(stream.device.index);
  for (const SpanList& l : make_lists(xs)) {
    clip_kernel<<<total_blocks(l), kThreads, 0, native(stream)>>>(l, norm, max_norm, eps);
    PIT_CUDA_CHECK(cudaGetLastError());
  }
}

void scale_and_check(const std::vector<FloatSpan>& xs, float s, float* found_inf, StreamRef stream) {
  DeviceGuard guard(stream.device.index);
  for (const SpanList& l : make_lists(xs)) {
    scale_check_kernel<<<total_blocks(l), kThreads, 0, native(stream)>>>(l, s, found_inf);
    PIT_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace pit::cuda
