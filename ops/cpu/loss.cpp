// CPU fused log-softmax + NLL (cross-entropy) and its backward, one row per task. The forward
// walks a row twice (max, then the sum of exp(x - max) together with the plain sum for label
// smoothing), in f64 so that the CPU is an accurate reference for the CUDA kernels.
#include "ops/cpu/loss.h"

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

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

template <typename T, typename I>
void forward_typed(const CrossEntropyArgs& a, const T* x, int64_t stride, const I* targets,
                   compute_t<T>* loss, compute_t<T>* lse) {
  using S = compute_t<T>;
  const int64_t n = a.classes;
  const double eps = a.label_smoothing;
  parallel_for(0, a.rows, std::max<int64_t>(1, kGrain / n), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t t = static_cast<int64_t>(targets[r]);
      if (t == a.ignore_index) {
        loss[r] = S(0);
        lse[r] = S(0);
        continue;
      }
      if (t < 0 || t >= n) {
        loss[r] = static_cast<S>(kNaN);
        lse[r] = static_cast<S>(kNaN);
        continue;
      }
      const T* xr = x + r * stride;
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t c = 0; c < n; ++c) {
        const double v = convert<double>(xr[c]);
        if (v > mx || std::isnan(v)) mx = v;
      }
      double sum_exp = 0, sum_x = 0;
      for (int64_t c = 0; c < n; ++c) {
        const double v = convert<double>(xr[c]);
        sum_exp += std::exp(v - mx);
        sum_x += v;
      }
      const double l = mx + std::log(sum_exp);
      double out = l - (1.0 - eps) * convert<double>(xr[t]);
      if (eps > 0) out -= eps * sum_x / static_cast<double>(n);
      loss[r] = static_cast<S>(out);
      lse[r] = static_cast<S>(l);
    }
  });
}

template <typename T, typename I>
void backward_typed(const CrossEntropyArgs& a, const compute_t<T>* grad_loss, const T* x,
                    int64_t stride, const I* targets, const compute_t<T>* lse, T* dx) {
  const int64_t n = a.classes;
  const double eps = a.label_smoothing, uniform = eps / static_cast<double>(n);
  parallel_for(0, a.rows, std::max<int64_t>(1, kGrain / n), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t t = static_cast<int64_t>(targets[r]);
      T* out = dx + r * n;
      if (t == a.ignore_index) {
        std::fill(out, out + n, convert<T>(0.0));
        continue;
      }
      const bool bad = t < 0 || t >= n;
      const T* xr = x + r * stride;
      const double g = bad ? kNaN : static_cast<double>(grad_loss[r]);
      const double l = static_cast<double>(lse[r]);
      for (int64_t c = 0; c < n; ++c) {
        const double p = std::exp(convert<double>(xr[c]) - l);
        out[c] = convert<T>(g * (p - uniform - (c == t ? 1.0 - eps : 0.0)));
      }
    }
  });
}

// Calls fn.template operator()<T, I>() for the logits' and the targets' types.
template <typename Fn>
void dispatch2(const CrossEntropyArgs& a, const char* op, Fn&& fn) {
  dispatch_floating(a.dtype, op, [&]<typename T>() {
    dispatch<DType::i64, DType::i32>(a.target_dtype, op, [&]<typename I>() {
      fn.template operator()<T, I>();
    });
  });
}

}  // namespace

void cross_entropy(const CrossEntropyArgs& a, const void* logits, int64_t stride,
                   const void* targets, void* loss, void* lse) {
  dispatch2(a, "cross_entropy", [&]<typename T, typename I>() {
    using S = compute_t<T>;
    forward_typed<T, I>(a, static_cast<const T*>(logits), stride, static_cast<const I*>(targets),
                        static_cast<S*>(loss), static_cast<S*>(lse));
  });
}

void cross_entropy_backward(const CrossEntropyArgs& a, const void* grad_loss, const void* logits,
                            int64_t stride, const void* targets, const void* lse, void* dlogits) {
  dispatch2(a, "cross_entropy_backward", [&]<typename T, typename I>() {
    using S = compute_t<T>;
    backward_typed<T, I>(a, static_cast<const S*>(grad_loss), static_cast<const T*>(logits), stride,
                         static_cast<const I*>(targets), static_cast<const S*>(lse),
                         static_cast<T*>(dlogits));
  });
}

}  // namespace pit::cpu
