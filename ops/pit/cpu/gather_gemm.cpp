// CPU M-gather GEMM and its weight gradient (ops/pit/gemm.h), the reference of the CUDA kernels.
// Expert segments in f32 / f64 go through BLAS: each segment's rows are gathered into one block
// and multiplied by kernels::matmul (OpenBLAS), then scaled, finished and scattered row by row.
// K-chunk segments, and f16 / bf16, take the direct loops.
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "ops/kernels.h"
#include "ops/pit/cpu/gemm.h"
#include "ops/pit/cpu/gemm_common.h"

namespace pit::sparse::cpu {
namespace {
using detail::acc_t;
using detail::widen;

struct Entries {
  const int32_t* rows;
  const int32_t* off;
  const float* w;
  int64_t segments;
};

Entries entries_of(const RowSetIndex& idx) {
  return {idx.rows.data<int32_t>(), idx.offsets.data<int32_t>(),
          idx.weights.defined() ? idx.weights.data<float>() : nullptr, idx.num_segments};
}

// Rows [e0, e1) of the entries of `x` [*, cols]: x's rows named by the index (gathered, times the
// entries' weights when `weights`), or rows e0..e1 of a compact x.
template <typename T>
Tensor segment_rows(const Tensor& x, const Entries& ent, int64_t e0, int64_t e1, bool gathered, bool weights) {
  if (!gathered && !weights) return x.slice(0, e0, e1);
  const int64_t cols = x.size(1);
  Tensor out = Tensor::empty({e1 - e0, cols}, x.dtype());
  const T* src = x.data<T>();
  T* dst = out.data<T>();
  for (int64_t e = e0; e < e1; ++e) {
    const T* row = src + (gathered ? ent.rows[e] : e) * cols;
    T* o = dst + (e - e0) * cols;
    if (weights) {
      const T scale = static_cast<T>(ent.w[e]);
      for (int64_t q = 0; q < cols; ++q) o[q] = row[q] * scale;
    } else {
      std::memcpy(o, row, static_cast<size_t>(cols) * sizeof(T));
    }
  }
  return out;
}

template <typename T>
void gather_gemm_blas(const Tensor& a, const Entries& ent, const Tensor& b, Tensor& c, const GatherGemmArgs& args) {
  const int64_t n_all = c.size(1);
  const bool per_segment_bias = args.epilogue.bias.defined() && args.epilogue.bias.dim() == 2;
  const T* bias = args.epilogue.bias.defined() ? args.epilogue.bias.data<T>() : nullptr;
  T* Cp = c.data<T>();
  const bool after = args.use_weights && args.epilogue.scale_after_activation;  // scale act's output
  std::vector<T> acc(static_cast<size_t>(n_all));
  for (int64_t s = 0; s < ent.segments; ++s) {
    const int64_t e0 = ent.off[s], e1 = ent.off[s + 1];
    if (e1 == e0) continue;
    Tensor bs = b.dim() == 3 ? b.select(0, s) : b;
    if (args.b_trans) bs = bs.t();
    const Tensor prod = kernels::matmul(segment_rows<T>(a, ent, e0, e1, args.a_gathered, false), bs).contiguous();
    const T* p = prod.data<T>();
    const T* bias_s = bias ? (per_segment_bias ? bias + s * n_all : bias) : nullptr;
    // Row by row in entry order: a token listed twice in a segment accumulates without a race.
    for (int64_t e = e0; e < e1; ++e) {
      const T scale = args.use_weights ? static_cast<T>(ent.w[e]) : T(1);
      const T before = after ? T(1) : scale;
      for (int64_t n = 0; n < n_all; ++n) acc[static_cast<size_t>(n)] = p[(e - e0) * n_all + n] * before;
      const int64_t cr = args.c_scattered ? ent.rows[e] : e;
      detail::finish(Cp + cr * n_all, acc.data(), 0, n_all, args.epilogue, bias_s,
                     detail::pre_row<T>(args.epilogue, cr, n_all), after ? scale : T(1));
    }
  }
}

template <typename T>
void gather_weight_grad_blas(const Tensor& a, const Tensor& g, const Entries& ent, Tensor& db,
                             const GatherWeightGradArgs& args) {
  const int64_t k_all = a.size(1), n_all = g.size(1);
  T* D = db.data<T>();
  for (int64_t s = 0; s < ent.segments; ++s) {
    const int64_t e0 = ent.off[s], e1 = ent.off[s + 1];
    T* Ds = D + s * k_all * n_all;
    if (e1 == e0) {
      if (args.write == Write::store) std::fill(Ds, Ds + k_all * n_all, T(0));
      continue;
    }
    const Tensor as = segment_rows<T>(a, ent, e0, e1, args.a_gathered, args.use_weights);
    const Tensor gs = segment_rows<T>(g, ent, e0, e1, args.g_gathered, false);
    // [K, N], or [N, K] (= G^T A) when b_trans: either way contiguous in db's layout.
    const Tensor prod = (args.b_trans ? kernels::matmul(gs.t(), as) : kernels::matmul(as.t(), gs)).contiguous();
    const T* p = prod.data<T>();
    if (args.write == Write::accumulate) {
      for (int64_t i = 0; i < k_all * n_all; ++i) Ds[i] += p[i];
    } else {
      std::memcpy(Ds, p, static_cast<size_t>(k_all * n_all) * sizeof(T));
    }
  }
}

}  // namespace

void gather_gemm(const Tensor& a, const RowSetIndex& idx, const Tensor& b, Tensor& c,
                 const GatherGemmArgs& args) {
  const Entries ent = entries_of(idx);
  const int64_t k_all = a.size(1), n_all = c.size(1);
  const int64_t w = idx.segment_cols;
  const bool per_segment_b = b.dim() == 3;
  const bool per_segment_bias = args.epilogue.bias.defined() && args.epilogue.bias.dim() == 2;
  const bool after = args.use_weights && args.epilogue.scale_after_activation;  // scale act's output
  dispatch_floating(a.dtype(), "gather_gemm", [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      if (w == 0) return gather_gemm_blas<T>(a, ent, b, c, args);
    }
    using C = acc_t<T>;
    const T* A = a.data<T>();
    const T* B = b.data<T>();
    T* Cp = c.data<T>();
    const T* bias = args.epilogue.bias.defined() ? args.epilogue.bias.data<T>() : nullptr;
    parallel_for(0, detail::col_chunks(n_all), 1, [&](int64_t t0, int64_t t1) {
      std::vector<C> acc(static_cast<size_t>(detail::kColChunk));
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t n0 = t * detail::kColChunk, n1 = std::min(n_all, n0 + detail::kColChunk);
        for (int64_t s = 0; s < ent.segments; ++s) {
          const int64_t k0 = w > 0 ? s * w : 0, k1 = w > 0 ? std::min(k_all, k0 + w) : k_all;
          const T* Bs = per_segment_b ? B + s * b.size(1) * b.size(2) : B;
          const T* bias_s = bias ? (per_segment_bias ? bias + s * n_all : bias) : nullptr;
          for (int64_t e = ent.off[s]; e < ent.off[s + 1]; ++e) {
            const int64_t ar = args.a_gathered ? ent.rows[e] : e;
            const int64_t cr = args.c_scattered ? ent.rows[e] : e;
            const T* arow = A + ar * k_all;
            if (args.b_trans) {
              // B is [N, K]: each output is a dot product of two contiguous runs (a k-outer loop
              // here strode through B by whole rows: 16x slower on an MoE layer's experts).
              for (int64_t n = n0; n < n1; ++n) {
                const T* bcol = Bs + n * k_all;
                C sum = C(0);
                for (int64_t k = k0; k < k1; ++k) sum += widen(arow[k]) * widen(bcol[k]);
                acc[static_cast<size_t>(n - n0)] = sum;
              }
            } else {
              std::fill(acc.begin(), acc.end(), C(0));
              for (int64_t k = k0; k < k1; ++k) {
                const C av = widen(arow[k]);
                if (av == C(0)) continue;
                const T* brow = Bs + k * n_all;  // B rows are global k
                for (int64_t n = n0; n < n1; ++n) acc[static_cast<size_t>(n - n0)] += av * widen(brow[n]);
              }
            }
            const C scale = args.use_weights ? static_cast<C>(ent.w[e]) : C(1);
            if (scale != C(1) && !after)
              for (int64_t n = n0; n < n1; ++n) acc[static_cast<size_t>(n - n0)] *= scale;
            detail::finish(Cp + cr * n_all, acc.data(), n0, n1, args.epilogue, bias_s,
                           detail::pre_row<T>(args.epilogue, cr, n_all), after ? scale : C(1));
          }
        }
      }
    });
  });
}

void gather_weight_grad(const Tensor& a, const Tensor& g, const RowSetIndex& idx, Tensor& db,
                        const GatherWeightGradArgs& args) {
  const Entries ent = entries_of(idx);
  const int64_t k_all = a.size(1), n_all = g.size(1);
  dispatch_floating(a.dtype(), "gather_weight_grad", [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      if (idx.segment_cols == 0) return gather_weight_grad_blas<T>(a, g, ent, db, args);
    }
    using C = acc_t<T>;
    const T* A = a.data<T>();
    const T* G = g.data<T>();
    T* D = db.data<T>();
    const int64_t chunks = detail::col_chunks(n_all);
    // One task per (segment, column chunk): every task owns its output elements.
    parallel_for(0, ent.segments * chunks, 1, [&](int64_t t0, int64_t t1) {
      std::vector<C> acc;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t s = t / chunks, n0 = (t % chunks) * detail::kColChunk;
        const int64_t n1 = std::min(n_all, n0 + detail::kColChunk), nw = n1 - n0;
        acc.assign(static_cast<size_t>(k_all * nw), C(0));
        for (int64_t e = ent.off[s]; e < ent.off[s + 1]; ++e) {
          const int64_t ar = args.a_gathered ? ent.rows[e] : e;
          const int64_t gr = args.g_gathered ? ent.rows[e] : e;
          const C scale = args.use_weights ? static_cast<C>(ent.w[e]) : C(1);
          for (int64_t k = 0; k < k_all; ++k) {
            const C av = widen(A[ar * k_all + k]) * scale;
            if (av == C(0)) continue;
            C* row = acc.data() + k * nw;
            for (int64_t n = n0; n < n1; ++n) row[n - n0] += av * widen(G[gr * n_all + n]);
          }
        }
        T* Ds = D + s * k_all * n_all;
        for (int64_t k = 0; k < k_all; ++k)
          for (int64_t n = n0; n < n1; ++n) {
            T& out = args.b_trans ? Ds[n * k_all + k] : Ds[k * n_all + n];
            const C v = acc[static_cast<size_t>(k * nw + n - n0)];
            out = args.write == Write::accumulate ? convert<T>(widen(out) + v) : convert<T>(v);
          }
      }
    });
  });
}

}  // namespace pit::sparse::cpu
