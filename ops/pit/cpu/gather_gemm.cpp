// CPU M-gather GEMM and its weight gradient (ops/pit/gemm.h), the reference of the CUDA kernels.
#include <vector>

#include "core/thread_pool.h"
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

}  // namespace

void gather_gemm(const Tensor& a, const RowSetIndex& idx, const Tensor& b, Tensor& c,
                 const GatherGemmArgs& args) {
  const Entries ent = entries_of(idx);
  const int64_t k_all = a.size(1), n_all = c.size(1);
  const int64_t w = idx.segment_cols;
  const bool per_segment_b = b.dim() == 3;
  const bool per_segment_bias = args.epilogue.bias.defined() && args.epilogue.bias.dim() == 2;
  dispatch_floating(a.dtype(), "gather_gemm", [&]<typename T>() {
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
            std::fill(acc.begin(), acc.end(), C(0));
            for (int64_t k = k0; k < k1; ++k) {
              const C av = widen(A[ar * k_all + k]);
              if (av == C(0)) continue;
              if (args.b_trans) {
                for (int64_t n = n0; n < n1; ++n) acc[static_cast<size_t>(n - n0)] += av * widen(Bs[n * k_all + k]);
              } else {
                const T* brow = Bs + k * n_all  /* B rows are global k */;
                for (int64_t n = n0; n < n1; ++n) acc[static_cast<size_t>(n - n0)] += av * widen(brow[n]);
              }
            }
            if (args.use_weights) {
              const C scale = static_cast<C>(ent.w[e]);
              for (int64_t n = n0; n < n1; ++n) acc[static_cast<size_t>(n - n0)] *= scale;
            }
            detail::finish(Cp + cr * n_all, acc.data(), n0, n1, args.epilogue, bias_s);
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
