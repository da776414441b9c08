// CPU softmax, log_softmax and their backward along the middle dim of [outer, mid, inner].
//
// A task takes one `outer` index and up to kColumns neighbouring `inner` indices (one when
// inner == 1, i.e. a plain row) and walks mid three times: the maximum, the sum of
// exp(x - max), the output. Element math is in C (f32, f64 for f64); the sums accumulate in
// f64, which keeps the CPU an accurate reference for the CUDA kernels at little cost.
#include "ops/cpu/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "core/convert.h"
#include "core/thread_pool.h"
#include "ops/cpu/compute_type.h"

namespace pit::cpu {
namespace {

constexpr int64_t kGrain = 1 << 15;  // elements per parallel_for chunk worth a thread
constexpr int64_t kColumns = 64;     // columns per task when inner > 1

// Calls body(o, i0, n) for every task: outer index o, columns [i0, i0 + n).
template <typename Body>
void for_tasks(const View3& x, Body&& body) {
  const int64_t outer = x.sizes[0], mid = x.sizes[1], inner = x.sizes[2];
  const int64_t chunks = (inner + kColumns - 1) / kColumns;
  const int64_t per_task = std::max<int64_t>(1, mid * std::min(inner, kColumns));
  parallel_for(0, outer * chunks, std::max<int64_t>(1, kGrain / per_task),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t t = lo; t < hi; ++t) {
                   const int64_t i0 = (t % chunks) * kColumns;
                   body(t / chunks, i0, std::min(kColumns, inner - i0));
                 }
               });
}

template <typename T>
void softmax_typed(const View3& x, T* y, bool log) {
  using C = compute_t<T>;
  const T* p = static_cast<const T*>(x.data);
  const int64_t mid = x.sizes[1], inner = x.sizes[2];
  const int64_t so = x.strides[0], sm = x.strides[1], si = x.strides[2];
  for_tasks(x, [&](int64_t o, int64_t i0, int64_t n) {
    C mx[kColumns];
    double sum[kColumns];
    const T* base = p + o * so + i0 * si;
    T* out = y + o * mid * inner + i0;
    for (int64_t c = 0; c < n; ++c) {
      mx[c] = -std::numeric_limits<C>::infinity();
      sum[c] = 0;
    }
    for (int64_t m = 0; m < mid; ++m)
      for (int64_t c = 0; c < n; ++c) {
        const C v = convert<C>(base[m * sm + c * si]);
        if (v > mx[c] || std::isnan(v)) mx[c] = v;  // NaN propagates to the whole row
      }
    for (int64_t m = 0; m < mid; ++m)
      for (int64_t c = 0; c < n; ++c) sum[c] += std::exp(convert<C>(base[m * sm + c * si]) - mx[c]);
    // 1 / sum for softmax, log(sum) for log_softmax, which is (v - max) - log(sum): the max
    // taken first, so that large logits lose no precision to a rounded max + log(sum).
    C post[kColumns];
    for (int64_t c = 0; c < n; ++c)
      post[c] = log ? static_cast<C>(std::log(static_cast<C>(sum[c]))) : static_cast<C>(1.0 / sum[c]);
    for (int64_t m = 0; m < mid; ++m)
      for (int64_t c = 0; c < n; ++c) {
        const C v = convert<C>(base[m * sm + c * si]);
        out[m * inner + c] = convert<T>(log ? (v - mx[c]) - post[c] : std::exp(v - mx[c]) * post[c]);
      }
  });
}

template <typename T>
void softmax_backward_typed(const View3& gy, const View3& y, T* gx, bool log) {
  using C = compute_t<T>;
  const T* g = static_cast<const T*>(gy.data);
  const T* q = static_cast<const T*>(y.data);
  const int64_t mid = y.sizes[1], inner = y.sizes[2];
  for_tasks(y, [&](int64_t o, int64_t i0, int64_t n) {
    const T* gb = g + o * gy.strides[0] + i0 * gy.strides[2];
    const T* yb = q + o * y.strides[0] + i0 * y.strides[2];
    const int64_t gm = gy.strides[1], gi = gy.strides[2], ym = y.strides[1], yi = y.strides[2];
    T* out = gx + o * mid * inner + i0;
    double dot[kColumns] = {};  // sum(grad_y * y), or sum(grad_y) for log_softmax
    for (int64_t m = 0; m < mid; ++m)
      for (int64_t c = 0; c < n; ++c) {
        const double gv = convert<double>(gb[m * gm + c * gi]);
        dot[c] += log ? gv : gv * convert<double>(yb[m * ym + c * yi]);
      }
    for (int64_t m = 0; m < mid; ++m)
      for (int64_t c = 0; c < n; ++c) {
        const C gv = convert<C>(gb[m * gm + c * gi]), yv = convert<C>(yb[m * ym + c * yi]);
        const C d = static_cast<C>(dot[c]);
        out[m * inner + c] = convert<T>(log ? gv - std::exp(yv) * d : yv * (gv - d));
      }
  });
}

}  // namespace

void softmax(const View3& x, void* y, bool log) {
  dispatch_floating(x.dtype, log ? "log_softmax" : "softmax", [&]<typename T>() {
    softmax_typed<T>(x, static_cast<T*>(y), log);
  });
}

void softmax_backward(const View3& grad_y, const View3& y, void* grad_x, bool log) {
  dispatch_floating(y.dtype, log ? "log_softmax_backward" : "softmax_backward", [&]<typename T>() {
    softmax_backward_typed<T>(grad_y, y, static_cast<T*>(grad_x), log);
  });
}

}  // namespace pit::cpu
