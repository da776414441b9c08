// CUDA moe_activation_backward (ops/pit/moe_grad.h): the MoE experts' activation backward and the
// gates' gradient in one pass over the compact buffers. One block per entry row: it reads gu and
// pre once (16-byte packs when every row starts 16-byte aligned, element by element otherwise),
// recomputes act(pre), writes dpre once, and reduces <gu[e], act(pre[e])> over the block in f32
// for the slot that named the entry. The grid is the index's capacity (the count is on the
// device): blocks past offsets[E] return at once. The slots that name no expert are zeroed by the block of the same
// number (the grid covers T * k when dgates is asked for), so there is no separate fill.
#include "ops/pit/cuda/moe_grad.h"

#include <algorithm>

#include "ops/cuda/device_utils.cuh"
#include "ops/pit/cuda/launch.cuh"
#include "ops/pit/moe_slot.h"

namespace pit::sparse::cuda {
namespace {

using pit::cuda::compute_t;

// Threads per block: 256 covers a 4096-wide row in 2 packs a thread (bf16/f16; 4 in f32) and, at
// the kernels' 30-48 registers, leaves 5-8 blocks resident per SM: 48 bytes a thread in flight per
// step is then plenty to keep HBM busy. Narrow rows get fewer threads (a warp at least), so that
// most threads have an element.
constexpr int kMaxThreads = 256;

template <typename T, typename I>
struct Params {
  const T* gu;  // may alias dpre (in place): no __restrict__ on either
  const T* __restrict__ pre;
  T* dpre;      // or null: the gates' gradient only
  const int32_t* __restrict__ rows;
  const int32_t* __restrict__ offsets;
  const float* __restrict__ weights;  // or null: 1
  const I* __restrict__ ids;          // expert_of [T, k]; null when dgates is
  float* __restrict__ dgates;         // [T, k] or null
  int64_t f;
  int64_t slots;  // T * k (0 without dgates)
  int segments, k;
};

template <UnaryOp Op, typename T, typename I, bool kVec>
__global__ void __launch_bounds__(kMaxThreads) moe_activation_backward_kernel(const Params<T, I> p) {
  using C = compute_t<T>;
  const int e = static_cast<int>(blockIdx.x);
  if (p.dgates && threadIdx.x == 0 && e < p.slots) {
    const I id = p.ids[e];
    if (id < 0 || id >= p.segments) p.dgates[e] = 0.0f;  // no entry names this slot
  }
  if (e >= p.offsets[p.segments]) return;  // past the count: the whole block
  const C scale = p.weights ? C(p.weights[e]) : C(1);
  const int64_t row = int64_t{e} * p.f;
  // One element: adds gu * act(pre) to dot and returns dpre's value.
  const auto element = [&](C g, C x, C& dot) {
    const C y = apply_unary<C>(Op, x, C(0));
    dot += g * y;
    return scale * g * unary_derivative<C>(Op, x, y, C(0));
  };
  C dot = C(0);
  if constexpr (kVec) {
    using V = pit::cuda::Pack<T>;
    constexpr int N = V::kN;
    const V* g = reinterpret_cast<const V*>(p.gu + row);
    const V* x = reinterpret_cast<const V*>(p.pre + row);
    for (int64_t i = threadIdx.x; i < p.f / N; i += blockDim.x) {
      const V gp = g[i], xp = x[i];  // both loads in flight before any math
      C gv[N], xv[N], out[N];
      pit::cuda::widen_pack(gp.v, gv);
      pit::cuda::widen_pack(xp.v, xv);
#pragma unroll
      for (int j = 0; j < N; ++j) out[j] = element(gv[j], xv[j], dot);
      if (p.dpre) {
        V o;
        pit::cuda::narrow_pack<T, N>(out, o.v);
        reinterpret_cast<V*>(p.dpre + row)[i] = o;
      }
    }
  } else {
    for (int64_t q = row + threadIdx.x; q < row + p.f; q += blockDim.x) {
      const C out = element(pit::cuda::widen(p.gu[q]), pit::cuda::widen(p.pre[q]), dot);
      if (p.dpre) p.dpre[q] = pit::cuda::narrow<T>(out);
    }
  }
  dot = pit::cuda::block_sum(dot);
  if (!p.dgates || threadIdx.x != 0) return;
  const int64_t at = slot_of(p.rows, p.offsets, p.ids, p.k, segment_of(p.offsets, p.segments, e), e);
  if (at >= 0) p.dgates[at] = static_cast<float>(dot);
}

template <typename T, typename I>
void launch(UnaryOp act, const Params<T, I>& p, int64_t blocks, StreamRef stream) {
  using pit::cuda::aligned16;
  const bool vec = (p.f * static_cast<int64_t>(sizeof(T))) % 16 == 0 && aligned16(p.gu) && aligned16(p.pre) &&
                   (!p.dpre || aligned16(p.dpre));
  const int64_t units = vec ? p.f / pit::cuda::Pack<T>::kN : p.f;  // what one thread takes per step
  const int threads = static_cast<int>(std::clamp<int64_t>((units + 31) / 32 * 32, 32, kMaxThreads));
  const auto grid = static_cast<unsigned>(blocks);
  with_unary_op(act, [&]<UnaryOp Op>() {
    if constexpr (Op == UnaryOp::relu || Op == UnaryOp::gelu_tanh || Op == UnaryOp::gelu_erf || Op == UnaryOp::silu) {
      if (vec)
        moe_activation_backward_kernel<Op, T, I, true><<<grid, threads, 0, native(stream)>>>(p);
      else
        moe_activation_backward_kernel<Op, T, I, false><<<grid, threads, 0, native(stream)>>>(p);
    } else {
      PIT_THROW("moe_activation_backward: activation ", unary_name(act), " is not supported");
    }
  });
  check_launch("moe_activation_backward");
}

}  // namespace

void moe_activation_backward(UnaryOp act, const Tensor& gu, const Tensor& pre, const RowSetIndex& idx,
                             const Tensor& expert_of, Tensor& dpre, Tensor& dgates, StreamRef stream) {
  pit::cuda::DeviceGuard guard(gu.device().index);
  const int64_t capacity = idx.rows.numel();
  const int64_t slots = dgates.defined() ? dgates.numel() : 0;
  const int64_t blocks = std::max(capacity, slots);
  if (blocks == 0) return;
  dispatch_gemm(gu.dtype(), "moe_activation_backward", [&]<typename T>() {
    const auto run = [&]<typename I>() {
      const Params<T, I> p{gu.data<T>(),
                           pre.data<T>(),
                           dpre.defined() ? dpre.data<T>() : nullptr,
                           idx.rows.data<int32_t>(),
                           idx.offsets.data<int32_t>(),
                           idx.weights.defined() ? idx.weights.data<float>() : nullptr,
                           dgates.defined() ? expert_of.data<I>() : nullptr,
                           dgates.defined() ? dgates.data<float>() : nullptr,
                           gu.size(1),
                           slots,
                           static_cast<int>(idx.num_segments),
                           dgates.defined() ? static_cast<int>(expert_of.size(1)) : 0};
      launch<T, I>(act, p, blocks, stream);
    };
    if (dgates.defined() && expert_of.dtype() == DType::i64)
      run.template operator()<int64_t>();
    else
      run.template operator()<int32_t>();
  });
}

}  // namespace pit::sparse::cuda
