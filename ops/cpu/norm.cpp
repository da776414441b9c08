// CPU layernorm / rmsnorm and their backward. Rows run in parallel; each row is walked a few
// times (statistics, then output) with every sum in f64. dweight / dbias are reduced over rows
// per block of columns, rows in order, so the result does not depend on the thread count.
#include "ops/cpu/norm.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/convert.h"
#include "core/thread_pool.h"
#include "ops/cpu/compute_type.h"

namespace pit::cpu {
namespace {

constexpr int64_t kGrain = 1 << 15;  // elements per parallel_for chunk worth a thread
constexpr int64_t kColumns = 64;     // columns per task of the dweight / dbias reduction

template <typename T>
double load(const T* p, int64_t i) {
  return convert<double>(p[i]);
}

template <typename T>
void forward_typed(const NormArgs& a, const T* x, int64_t sx, const T* w, const T* b, double eps,
                   T* y, compute_t<T>* mean_out, compute_t<T>* rstd_out) {
  const int64_t d = a.dim;
  parallel_for(0, a.rows, std::max<int64_t>(1, kGrain / d), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * sx;
      T* yr = y + r * d;
      double mean = 0;
      if (!a.rms) {
        for (int64_t i = 0; i < d; ++i) mean += load(xr, i);
        mean /= static_cast<double>(d);
      }
      double ss = 0;
      for (int64_t i = 0; i < d; ++i) {
        const double c = load(xr, i) - mean;
        ss += c * c;
      }
      const double rstd = 1.0 / std::sqrt(ss / static_cast<double>(d) + eps);
      if (mean_out) mean_out[r] = static_cast<compute_t<T>>(mean);
      rstd_out[r] = static_cast<compute_t<T>>(rstd);
      for (int64_t i = 0; i < d; ++i) {
        double v = (load(xr, i) - mean) * rstd;
        if (w) v *= load(w, i);
        if (b) v += load(b, i);
        yr[i] = convert<T>(v);
      }
    }
  });
}

template <typename T>
void backward_typed(const NormArgs& a, const T* dy, int64_t sdy, const T* x, int64_t sx,
                    const T* w, const compute_t<T>* mean_in, const compute_t<T>* rstd_in, T* dx,
                    T* dweight, T* dbias) {
  const int64_t d = a.dim;
  const double inv_d = 1.0 / static_cast<double>(d);
  parallel_for(0, a.rows, std::max<int64_t>(1, kGrain / d), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * sx;
      const T* gr = dy + r * sdy;
      T* out = dx + r * d;
      const double mean = mean_in ? static_cast<double>(mean_in[r]) : 0.0;
      const double rstd = static_cast<double>(rstd_in[r]);
      // g = dy * weight; sums of g * xhat and of g.
      double sum_gx = 0, sum_g = 0;
      for (int64_t i = 0; i < d; ++i) {
        const double g = load(gr, i) * (w ? load(w, i) : 1.0);
        sum_gx += g * (load(xr, i) - mean) * rstd;
        sum_g += g;
      }
      const double c1 = sum_gx * inv_d, c2 = a.rms ? 0.0 : sum_g * inv_d;
      for (int64_t i = 0; i < d; ++i) {
        const double g = load(gr, i) * (w ? load(w, i) : 1.0);
        const double xhat = (load(xr, i) - mean) * rstd;
        out[i] = convert<T>(rstd * (g - c2 - xhat * c1));
      }
    }
  });
  if (!dweight && !dbias) return;
  const int64_t blocks = (d + kColumns - 1) / kColumns;
  parallel_for(0, blocks, std::max<int64_t>(1, kGrain / (a.rows * kColumns + 1)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t blk = lo; blk < hi; ++blk) {
                   const int64_t c0 = blk * kColumns, n = std::min(kColumns, d - c0);
                   double sw[kColumns] = {}, sb[kColumns] = {};
                   for (int64_t r = 0; r < a.rows; ++r) {
                     const T* xr = x + r * sx + c0;
                     const T* gr = dy + r * sdy + c0;
                     const double mean = mean_in ? static_cast<double>(mean_in[r]) : 0.0;
                     const double rstd = static_cast<double>(rstd_in[r]);
                     for (int64_t c = 0; c < n; ++c) {
                       const double g = load(gr, c);
                       sw[c] += g * (load(xr, c) - mean) * rstd;
                       sb[c] += g;
                     }
                   }
                   for (int64_t c = 0; c < n; ++c) {
                     if (dweight) dweight[c0 + c] = convert<T>(sw[c]);
                     if (dbias) dbias[c0 + c] = convert<T>(sb[c]);
                   }
                 }
               });
}

}  // namespace

void norm_forward(const NormArgs& a, const void* x, int64_t x_stride, const void* weight,
                  const void* bias, double eps, void* y, void* mean, void* rstd) {
  dispatch_floating(a.dtype, a.rms ? "rmsnorm" : "layernorm", [&]<typename T>() {
    using S = compute_t<T>;
    forward_typed<T>(a, static_cast<const T*>(x), x_stride, static_cast<const T*>(weight),
                     static_cast<const T*>(bias), eps, static_cast<T*>(y), static_cast<S*>(mean),
                     static_cast<S*>(rstd));
  });
}

void norm_backward(const NormArgs& a, const void* dy, int64_t dy_stride, const void* x,
                   int64_t x_stride, const void* weight, const void* mean, const void* rstd,
                   void* dx, void* dweight, void* dbias) {
  dispatch_floating(a.dtype, a.rms ? "rmsnorm_backward" : "layernorm_backward", [&]<typename T>() {
    using S = compute_t<T>;
    backward_typed<T>(a, static_cast<const T*>(dy), dy_stride, static_cast<const T*>(x),
                      x_stride, static_cast<const T*>(weight), static_cast<const S*>(mean),
                      static_cast<const S*>(rstd), static_cast<T*>(dx), static_cast<T*>(dweight),
                      static_cast<T*>(dbias));
  });
}

}  // namespace pit::cpu
