// CPU moe_activation_backward (ops/pit/moe_grad.h), the reference of the CUDA kernel: one task
// per range of entries, each row read once and act(pre) recomputed from it; the gates' gradient
// summed in the compute type (f32, f64 for f64) in column order and rounded once to f32.
#include "ops/pit/cpu/moe_grad.h"

#include <algorithm>
#include <vector>

#include "core/thread_pool.h"
#include "ops/pit/cpu/gemm_common.h"
#include "ops/pit/moe_slot.h"

namespace pit::sparse::cpu {

void moe_activation_backward(UnaryOp act, const Tensor& gu, const Tensor& pre, const RowSetIndex& idx,
                             const Tensor& expert_of, Tensor& dpre, Tensor& dgates) {
  const int64_t f_all = gu.size(1);
  const int32_t* rows = idx.rows.data<int32_t>();
  const int32_t* off = idx.offsets.data<int32_t>();
  const float* w = idx.weights.defined() ? idx.weights.data<float>() : nullptr;
  const int segments = static_cast<int>(idx.num_segments);
  const int64_t count = off[segments];
  float* dg = dgates.defined() ? dgates.data<float>() : nullptr;
  if (dg) dgates.zero_();  // slots that no entry names
  const int k = dg ? static_cast<int>(expert_of.size(1)) : 0;
  dispatch_floating(gu.dtype(), "moe_activation_backward", [&]<typename T>() {
    using C = detail::acc_t<T>;
    const T* G = gu.data<T>();
    const T* P = pre.data<T>();
    T* D = dpre.defined() ? dpre.data<T>() : nullptr;  // may be G: each element is read before it is written
    const auto slot = [&](int e) -> int64_t {
      const int s = segment_of(off, segments, e);
      return expert_of.dtype() == DType::i32 ? slot_of(rows, off, expert_of.data<int32_t>(), k, s, e)
                                             : slot_of(rows, off, expert_of.data<int64_t>(), k, s, e);
    };
    parallel_for(0, count, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, f_all)), [&](int64_t e0, int64_t e1) {
      // The row's act(pre) and act'(pre), in the compute type.
      std::vector<C> h(static_cast<size_t>(f_all)), deriv(D ? static_cast<size_t>(f_all) : 0);
      for (int64_t e = e0; e < e1; ++e) {
        const C scale = w ? C(w[e]) : C(1);
        const int64_t base = e * f_all;
        if constexpr (std::is_same_v<T, float>) {  // f32: the vector loops
          std::copy(P + base, P + base + f_all, h.begin());
          pit::cpu::activate_f32(act, h.data(), f_all);
          if (D) pit::cpu::activation_derivative_f32(act, P + base, h.data(), deriv.data(), f_all);
        } else {
          for (int64_t j = 0; j < f_all; ++j) {
            const C x = detail::widen(P[base + j]);
            h[j] = apply_unary<C>(act, x, C(0));
            if (D) deriv[j] = unary_derivative<C>(act, x, h[j], C(0));
          }
        }
        C dot = C(0);
        for (int64_t j = 0; j < f_all; ++j) {
          const C g = detail::widen(G[base + j]);
          dot += g * h[j];
          if (D) D[base + j] = convert<T>(scale * g * deriv[j]);
        }
        if (!dg) continue;
        if (const int64_t at = slot(static_cast<int>(e)); at >= 0) dg[at] = static_cast<float>(dot);
      }
    });
  });
}

}  // namespace pit::sparse::cpu
