// CPU causal attention, forward and backward, in f64 with the products on OpenBLAS (dgemm).
//
// Per (batch, head), query rows go in blocks of kRowBlock; a block [i0, i1) sees keys [0, i1):
//   S = scale * Q_blk K^T (dgemm), row max m_i over j <= i, P_ij = exp(S_ij - m_i) / l_i for
//   j <= i (0 above the diagonal), lse_i = m_i + log l_i, out_blk = P V (dgemm).
// Backward recomputes S and P with the same calls (so they agree with the forward bit for bit):
//   dV += P^T dO_blk      dP = dO_blk V^T      D_i = dout_i . out_i      dS = P (dP - D)
//   dQ_blk = scale dS K   dK += scale dS^T Q_blk
// dK and dV accumulate over the row blocks in order. With at least as many (batch, head) pairs as
// threads, the pairs run in parallel, one per pool worker, with OpenBLAS's own threads off for the
// duration; otherwise the pairs run in turn, the rows of a block in parallel (softmax, dS) and the
// products on OpenBLAS's threads. Either way every element is summed in the same order: nothing
// depends on the thread count. (The previous per-element loops spent about 40% of a CPU training
// step of configs/moe.yaml here.)
#include "ops/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/convert.h"
#include "core/thread_pool.h"
#include "ops/cpu/blas_setup.h"
#include "ops/cpu/gemm.h"

// Compiled with -fno-math-errno (ops/CMakeLists.txt): with libmvec's vector exp declared, the
// softmax's exponentials are a 2-wide vector loop (the softmax and its scalar exp had 19% of the
// samples of a one-thread CPU step of configs/moe.yaml once its GEMMs and activations were fast).
#if PIT_HAVE_LIBMVEC
extern "C" double exp(double) __attribute__((simd("notinbranch")));
#endif

namespace pit::cpu {
namespace {

// Query rows per block: bounds the scores to kRowBlock x t doubles (8 MB at t = 4096).
constexpr int64_t kRowBlock = 256;

using Vec = std::vector<double>;

// Runs head(b, scratch) for every (batch, head) pair b < bh, with a Scratch per worker.
template <typename Scratch, typename Head>
void for_each_head(int64_t bh, const Head& head) {
  if (bh >= num_threads() && num_threads() > 1) {
    const SingleThreadedBlas one;
    parallel_for(0, bh, 1, [&](int64_t lo, int64_t hi) {
      Scratch scratch;
      for (int64_t b = lo; b < hi; ++b) head(b, scratch);
    });
  } else {
    Scratch scratch;
    for (int64_t b = 0; b < bh; ++b) head(b, scratch);
  }
}

// C[m x n] = alpha op(A) op(B) + beta C in f64, row-major with the given leading dimensions,
// through the CPU GEMM (ops/cpu/gemm.h: OpenBLAS).
void dgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
           const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  GemmArgs g;
  g.dtype = DType::f64;
  g.trans_a = ta;
  g.trans_b = tb;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = a;
  g.lda = lda;
  g.b = b;
  g.ldb = ldb;
  g.c = c;
  g.ldc = ldc;
  g.alpha = alpha;
  g.beta = beta;
  gemm(g);
}

template <typename T>
void widen(const T* src, int64_t n, double* dst) {
  for (int64_t x = 0; x < n; ++x) dst[x] = convert<double>(src[x]);
}

template <typename T>
void narrow(const double* src, int64_t n, T* dst) {
  for (int64_t x = 0; x < n; ++x) dst[x] = convert<T>(src[x]);
}

// Rows [i0, i0 + rows) of one head: S (rows x i1, ld i1) from Q and K, turned into P in place;
// lse[r] for each row. The row max is NaN when a score is NaN.
void softmax_block(const double* q, const double* k, int64_t i0, int64_t rows, int64_t dh, double scale, double* s,
                   double* lse) {
  const int64_t i1 = i0 + rows;
  dgemm(false, true, rows, i1, dh, scale, q + i0 * dh, dh, k, dh, 0.0, s, i1);
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(i1, 1));
  parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      double* sr = s + r * i1;
      const int64_t last = i0 + r;  // keys 0..last
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j <= last; ++j)
        if (sr[j] > m || std::isnan(sr[j])) m = sr[j];
      for (int64_t j = 0; j <= last; ++j) sr[j] = ::exp(sr[j] - m);  // a vector loop (see the top)
      double l = 0;
      for (int64_t j = 0; j <= last; ++j) l += sr[j];  // in key order
      for (int64_t j = 0; j <= last; ++j) sr[j] /= l;
      std::fill(sr + last + 1, sr + i1, 0.0);
      lse[r] = m + std::log(l);
    }
  });
}

template <typename T>
void forward_typed(const AttentionDims& d, const T* q, const T* k, const T* v, T* out, float* lse) {
  const int64_t t = d.t, dh = d.dh, n = t * dh;
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  struct Scratch {
    Vec qd, kd, vd, od, s, l;
  };
  for_each_head<Scratch>(d.bh, [&](int64_t b, Scratch& w) {
    if (w.qd.empty()) w = {Vec(n), Vec(n), Vec(n), Vec(n), Vec(static_cast<size_t>(std::min(t, kRowBlock) * t)), Vec(t)};
    widen(q + b * n, n, w.qd.data());
    widen(k + b * n, n, w.kd.data());
    widen(v + b * n, n, w.vd.data());
    for (int64_t i0 = 0; i0 < t; i0 += kRowBlock) {
      const int64_t rows = std::min(kRowBlock, t - i0), i1 = i0 + rows;
      softmax_block(w.qd.data(), w.kd.data(), i0, rows, dh, scale, w.s.data(), w.l.data() + i0);
      dgemm(false, false, rows, dh, i1, 1.0, w.s.data(), i1, w.vd.data(), dh, 0.0, w.od.data() + i0 * dh, dh);
    }
    narrow(w.od.data(), n, out + b * n);
    for (int64_t i = 0; i < t; ++i) lse[b * t + i] = static_cast<float>(w.l[i]);
  });
}

template <typename T>
void backward_typed(const AttentionDims& d, const T* dout, const T* q, const T* k, const T* v, const T* out, T* dq,
                    T* dk, T* dv) {
  const int64_t t = d.t, dh = d.dh, n = t * dh;
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  const size_t blk = static_cast<size_t>(std::min(t, kRowBlock) * t);
  struct Scratch {
    Vec qd, kd, vd, gd, od, dqd, dkd, dvd, p, dp, l, delta;
  };
  for_each_head<Scratch>(d.bh, [&](int64_t b, Scratch& w) {
    if (w.qd.empty())
      w = {Vec(n), Vec(n), Vec(n), Vec(n), Vec(n), Vec(n), Vec(n), Vec(n), Vec(blk), Vec(blk), Vec(t), Vec(t)};
    widen(q + b * n, n, w.qd.data());
    widen(k + b * n, n, w.kd.data());
    widen(v + b * n, n, w.vd.data());
    widen(dout + b * n, n, w.gd.data());
    widen(out + b * n, n, w.od.data());
    for (int64_t i = 0; i < t; ++i) {
      double s = 0;
      for (int64_t x = 0; x < dh; ++x) s += w.gd[i * dh + x] * w.od[i * dh + x];
      w.delta[i] = s;
    }
    std::fill(w.dkd.begin(), w.dkd.end(), 0.0);
    std::fill(w.dvd.begin(), w.dvd.end(), 0.0);
    for (int64_t i0 = 0; i0 < t; i0 += kRowBlock) {
      const int64_t rows = std::min(kRowBlock, t - i0), i1 = i0 + rows;
      double* p = w.p.data();
      double* dp = w.dp.data();
      softmax_block(w.qd.data(), w.kd.data(), i0, rows, dh, scale, p, w.l.data() + i0);
      const double* g = w.gd.data() + i0 * dh;
      dgemm(true, false, i1, dh, rows, 1.0, p, i1, g, dh, 1.0, w.dvd.data(), dh);  // dV += P^T dO
      dgemm(false, true, rows, i1, dh, 1.0, g, dh, w.vd.data(), dh, 0.0, dp, i1);   // dP = dO V^T
      parallel_for(0, rows, std::max<int64_t>(1, (int64_t{1} << 14) / i1), [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r)
          for (int64_t j = 0; j < i1; ++j) dp[r * i1 + j] = p[r * i1 + j] * (dp[r * i1 + j] - w.delta[i0 + r]);
      });
      dgemm(false, false, rows, dh, i1, scale, dp, i1, w.kd.data(), dh, 0.0, w.dqd.data() + i0 * dh, dh);
      dgemm(true, false, i1, dh, rows, scale, dp, i1, w.qd.data() + i0 * dh, dh, 1.0, w.dkd.data(), dh);
    }
    narrow(w.dqd.data(), n, dq + b * n);
    narrow(w.dkd.data(), n, dk + b * n);
    narrow(w.dvd.data(), n, dv + b * n);
  });
}

}  // namespace

void causal_attention(DType dtype, const AttentionDims& dims, const void* q, const void* k,
                      const void* v, void* out, float* lse) {
  if (dims.bh * dims.t == 0) return;
  dispatch<DType::f32, DType::f64, DType::f16, DType::bf16>(dtype, "causal_attention", [&]<typename T>() {
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
        backward_typed<T>(dims, static_cast<const T*>(dout), static_cast<const T*>(q),
                          static_cast<const T*>(k), static_cast<const T*>(v),
                          static_cast<const T*>(out), static_cast<T*>(dq), static_cast<T*>(dk),
                          static_cast<T*>(dv));
      });
}

}  // namespace pit::cpu
