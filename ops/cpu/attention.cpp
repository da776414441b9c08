// CPU causal attention, forward and backward: plain loops in f64, parallel over rows.
//
// Forward, per query row i of a (batch, head): s_j = scale * q_i . k_j for j <= i, the row max
// m, p_j = exp(s_j - m), out_i = sum_j p_j v_j / sum_j p_j, lse_i = m + log(sum_j p_j).
// Backward (with P_ij = exp(s_ij - lse_i) and D_i = dout_i . out_i):
//   dv_j = sum_{i >= j} P_ij dout_i            dP_ij = dout_i . v_j
//   dS_ij = P_ij (dP_ij - D_i)                 dq_i = scale * sum_{j <= i} dS_ij k_j
//   dk_j = scale * sum_{i >= j} dS_ij q_i
// computed in two parallel passes (rows for dq, then keys for dk and dv), so no two threads
// write one element and the results do not depend on the thread count.
#include "ops/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/convert.h"
#include "core/thread_pool.h"

namespace pit::cpu {
namespace {

// Multiply-adds worth handing to a thread.
constexpr int64_t kGrainWork = int64_t{1} << 16;

int64_t grain_rows(const AttentionDims& d) {
  return std::max<int64_t>(1, kGrainWork / std::max<int64_t>(1, d.t * d.dh));
}

template <typename T>
double dot(const T* a, const double* b, int64_t n) {
  double s = 0;
  for (int64_t x = 0; x < n; ++x) s += convert<double>(a[x]) * b[x];
  return s;
}

template <typename T>
void load_row(const T* src, int64_t n, double* dst) {
  for (int64_t x = 0; x < n; ++x) dst[x] = convert<double>(src[x]);
}

template <typename T>
void axpy(double a, const T* x, int64_t n, double* y) {
  for (int64_t e = 0; e < n; ++e) y[e] += a * convert<double>(x[e]);
}

// Scores s[0..i] = (q_i . k_j) * scale; returns the row max (NaN when one is NaN). Every pass
// forms a score as this same product, sum and scaling, so the passes agree bit for bit.
template <typename T>
double scores(const double* qi, const T* kb, int64_t i, int64_t dh, double scale, double* s) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j <= i; ++j) {
    s[j] = dot(kb + j * dh, qi, dh) * scale;
    if (s[j] > m || std::isnan(s[j])) m = s[j];
  }
  return m;
}

template <typename T>
void forward_typed(const AttentionDims& d, const T* q, const T* k, const T* v, T* out,
                   float* lse) {
  const int64_t t = d.t, dh = d.dh;
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  parallel_for(0, d.bh * t, grain_rows(d), [&](int64_t lo, int64_t hi) {
    std::vector<double> qi(static_cast<size_t>(dh)), acc(static_cast<size_t>(dh)),
        s(static_cast<size_t>(t));
    for (int64_t row = lo; row < hi; ++row) {
      const int64_t b = row / t, i = row % t;
      const T* kb = k + b * t * dh;
      const T* vb = v + b * t * dh;
      load_row(q + row * dh, dh, qi.data());
      const double m = scores(qi.data(), kb, i, dh, scale, s.data());
      std::fill(acc.begin(), acc.end(), 0.0);
      double l = 0;
      for (int64_t j = 0; j <= i; ++j) {
        const double p = std::exp(s[static_cast<size_t>(j)] - m);
        l += p;
        axpy(p, vb + j * dh, dh, acc.data());
      }
      for (int64_t x = 0; x < dh; ++x) out[row * dh + x] = convert<T>(acc[static_cast<size_t>(x)] / l);
      lse[row] = static_cast<float>(m + std::log(l));
    }
  });
}

template <typename T>
void backward_typed(const AttentionDims& d, const T* dout, const T* q, const T* k, const T* v,
                    const T* out, T* dq, T* dk, T* dv) {
  const int64_t t = d.t, dh = d.dh, rows = d.bh * t;
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  std::vector<double> lse(static_cast<size_t>(rows)), delta(static_cast<size_t>(rows));

  // Pass 1, per query row: the exact lse, D_i and dq_i.
  parallel_for(0, rows, grain_rows(d), [&](int64_t lo, int64_t hi) {
    std::vector<double> qi(static_cast<size_t>(dh)), doi(static_cast<size_t>(dh)),
        acc(static_cast<size_t>(dh)), s(static_cast<size_t>(t));
    for (int64_t row = lo; row < hi; ++row) {
      const int64_t b = row / t, i = row % t;
      const T* kb = k + b * t * dh;
      const T* vb = v + b * t * dh;
      load_row(q + row * dh, dh, qi.data());
      load_row(dout + row * dh, dh, doi.data());
      const double m = scores(qi.data(), kb, i, dh, scale, s.data());
      double l = 0;
      for (int64_t j = 0; j <= i; ++j) l += std::exp(s[static_cast<size_t>(j)] - m);
      const double row_lse = m + std::log(l);
      const double di = dot(out + row * dh, doi.data(), dh);
      lse[static_cast<size_t>(row)] = row_lse;
      delta[static_cast<size_t>(row)] = di;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = 0; j <= i; ++j) {
        const double p = std::exp(s[static_cast<size_t>(j)] - row_lse);
        const double dp = dot(vb + j * dh, doi.data(), dh);
        axpy(p * (dp - di), kb + j * dh, dh, acc.data());
      }
      for (int64_t x = 0; x < dh; ++x) dq[row * dh + x] = convert<T>(acc[static_cast<size_t>(x)] * scale);
    }
  });

  // Pass 2, per key row j: dk_j and dv_j over the queries i >= j.
  parallel_for(0, rows, grain_rows(d), [&](int64_t lo, int64_t hi) {
    std::vector<double> kj(static_cast<size_t>(dh)), vj(static_cast<size_t>(dh)),
        dk_acc(static_cast<size_t>(dh)), dv_acc(static_cast<size_t>(dh));
    for (int64_t row = lo; row < hi; ++row) {
      const int64_t b = row / t, j = row % t;
      const T* qb = q + b * t * dh;
      const T* gb = dout + b * t * dh;
      load_row(k + row * dh, dh, kj.data());
      load_row(v + row * dh, dh, vj.data());
      std::fill(dk_acc.begin(), dk_acc.end(), 0.0);
      std::fill(dv_acc.begin(), dv_acc.end(), 0.0);
      for (int64_t i = j; i < t; ++i) {
        const size_t r = static_cast<size_t>(b * t + i);
        const double p = std::exp(dot(qb + i * dh, kj.data(), dh) * scale - lse[r]);
        const double dp = dot(gb + i * dh, vj.data(), dh);
        axpy(p, gb + i * dh, dh, dv_acc.data());
        axpy(p * (dp - delta[r]), qb + i * dh, dh, dk_acc.data());
      }
      for (int64_t x = 0; x < dh; ++x) {
        dk[row * dh + x] = convert<T>(dk_acc[static_cast<size_t>(x)] * scale);
        dv[row * dh + x] = convert<T>(dv_acc[static_cast<size_t>(x)]);
      }
    }
  });
}

template <typename T>
constexpr bool kFloating = std::is_floating_point_v<T> || is_reduced_float_v<T>;

}  // namespace

void causal_attention(DType dtype, const AttentionDims& dims, const void* q, const void* k,
                      const void* v, void* out, float* lse) {
  if (dims.bh * dims.t == 0) return;
  dispatch<DType::f32, DType::f64, DType::f16, DType::bf16>(dtype, "causal_attention", [&]<typename T>() {
    if constexpr (kFloating<T>)
      forward_typed<T>(dims, static_cast<const T*>(q), static_cast<const T*>(k),
                       static_cast<const T*>(v), static_cast<T*>(out), lse);
  });
}

void causal_attention_backward(DType dtype, const AttentionDims& dims, const void* dout,
                               const void* q, const void* k, const void* v, const void* out,
                               void* dq, void* dk, void* dv) {
  if (dims.bh * dims.t == 0) return;
  dispatch<DType::f32, DType::f64, DType::f16, DType::bf16>(
      dtype, "causal_attention_backward", [&]<typename T>() {
        if constexpr (kFloating<T>)
          backward_typed<T>(dims, static_cast<const T*>(dout), static_cast<const T*>(q),
                            static_cast<const T*>(k), static_cast<const T*>(v),
                            static_cast<const T*>(out), static_cast<T*>(dq), static_cast<T*>(dk),
                            static_cast<T*>(dv));
      });
}

}  // namespace pit::cpu
