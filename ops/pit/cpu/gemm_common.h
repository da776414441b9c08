#pragma once
// Helpers shared by the CPU PIT GEMMs: compute types, the epilogue, column chunking.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/convert.h"
#include "ops/cpu/activation_rows.h"
#include "ops/cpu/compute_type.h"
#include "ops/elementwise_op.h"
#include "ops/pit/gemm.h"

namespace pit::sparse::cpu::detail {

template <typename T>
using acc_t = pit::cpu::compute_t<T>;  // the CPU kernels' compute type (ops/cpu/compute_type.h)

template <typename T>
acc_t<T> widen(T v) {
  return convert<acc_t<T>>(v);
}

// Columns per task: wide enough to stream B's rows, narrow enough to spread N over threads.
inline constexpr int64_t kColChunk = 128;
inline int64_t col_chunks(int64_t n) { return std::max<int64_t>(1, (n + kColChunk - 1) / kColChunk); }

// Row r of Epilogue::pre ([rows, n_all], C's layout), or null without one.
template <typename T>
T* pre_row(const Epilogue& ep, int64_t r, int64_t n_all) {
  return ep.pre.defined() ? ep.pre.data<T>() + r * n_all : nullptr;
}

// Writes acc[0, n1 - n0) into out[n0, n1) through the epilogue: store (+ bias, activation) or
// accumulate. bias points at the bias row of this output (or is null); pre at the same row of
// Epilogue::pre (or is null), which gets the values before the activation; post multiplies the
// activation's output (the entry's scale under Epilogue::scale_after_activation, else 1).
template <typename T>
void finish(T* out, const acc_t<T>* acc, int64_t n0, int64_t n1, const Epilogue& ep, const T* bias,
            T* pre = nullptr, acc_t<T> post = acc_t<T>(1)) {
  using C = acc_t<T>;
  if (ep.write == Write::accumulate) {
    for (int64_t n = n0; n < n1; ++n) out[n] = convert<T>(widen(out[n]) + acc[n - n0]);
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    if (ep.activation) {  // the row's values first, then the activation's vector loop over them
      for (int64_t n = n0; n < n1; ++n) {
        const float v = bias ? acc[n - n0] + bias[n] : acc[n - n0];
        if (pre) pre[n] = v;
        out[n] = v;
      }
      pit::cpu::activate_f32(ep.act, out + n0, n1 - n0);
      if (post != 1.0f)
        for (int64_t n = n0; n < n1; ++n) out[n] *= post;
      return;
    }
  }
  for (int64_t n = n0; n < n1; ++n) {
    C v = acc[n - n0];
    if (bias) v += widen(bias[n]);
    if (pre) pre[n] = convert<T>(v);
    if (ep.activation) v = apply_unary<C>(ep.act, v, C(0)) * post;
    out[n] = convert<T>(v);
  }
}

}  // namespace pit::sparse::cpu::detail
