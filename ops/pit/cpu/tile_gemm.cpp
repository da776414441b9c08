// CPU K-condense and block GEMMs, their B gradients and the sampled-output GEMMs
// (ops/pit/gemm.h). K lists and block lists share one form: tiles tr x tc listed per block row,
// values row-major per tile (K lists: tr = r, tc = 1; blocks: tr = tc = b).
#include <vector>

#include "core/thread_pool.h"
#include "ops/pit/cpu/gemm.h"
#include "ops/pit/cpu/gemm_common.h"

namespace pit::sparse::cpu {
namespace {
using detail::acc_t;
using detail::widen;

struct Tiles {
  const int32_t* off;
  const int32_t* col;
  const Tensor& values;
  int64_t rows, cols, tr, tc;
  int64_t block_rows() const { return (rows + tr - 1) / tr; }
};

// C [rows, N] = A B (every element of C written).
void tile_gemm(const Tiles& a, const Tensor& b, Tensor& c, const Epilogue& ep) {
  const int64_t n_all = c.size(1), chunks = detail::col_chunks(n_all);
  dispatch_floating(b.dtype(), "pit tile gemm", [&]<typename T>() {
    using C = acc_t<T>;
    const T* V = a.values.data<T>();
    const T* B = b.data<T>();
    T* Cp = c.data<T>();
    const T* bias = ep.bias.defined() ? ep.bias.data<T>() : nullptr;
    parallel_for(0, a.block_rows() * chunks, 1, [&](int64_t t0, int64_t t1) {
      std::vector<C> acc;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t i = t / chunks, n0 = (t % chunks) * detail::kColChunk;
        const int64_t n1 = std::min(n_all, n0 + detail::kColChunk), nw = n1 - n0;
        acc.assign(static_cast<size_t>(a.tr * nw), C(0));
        for (int64_t j = a.off[i]; j < a.off[i + 1]; ++j)
          for (int64_t y = 0; y < a.tr; ++y)
            for (int64_t x = 0; x < a.tc; ++x) {
              const C v = widen(V[(j * a.tr + y) * a.tc + x]);
              const int64_t k = int64_t{a.col[j]} * a.tc + x;
              if (v == C(0) || k >= a.cols) continue;
              const T* brow = B + k * n_all;
              C* arow = acc.data() + y * nw;
              for (int64_t n = n0; n < n1; ++n) arow[n - n0] += v * widen(brow[n]);
            }
        for (int64_t y = 0; y < a.tr; ++y) {
          const int64_t r = i * a.tr + y;
          if (r < a.rows)
            detail::finish(Cp + r * n_all, acc.data() + y * nw, n0, n1, ep, bias, detail::pre_row<T>(ep, r, n_all));
        }
      }
    });
  });
}

// dB [cols, N] = A^T G: tasks own column ranges of dB (several block rows meet one row of dB).
void tile_gemm_tn(const Tiles& a, const Tensor& g, Tensor& db, Write write) {
  const int64_t n_all = g.size(1), k_all = a.cols;
  dispatch_floating(g.dtype(), "pit tile gemm_tn", [&]<typename T>() {
    using C = acc_t<T>;
    const T* V = a.values.data<T>();
    const T* G = g.data<T>();
    T* D = db.data<T>();
    parallel_for(0, detail::col_chunks(n_all), 1, [&](int64_t t0, int64_t t1) {
      std::vector<C> acc;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t n0 = t * detail::kColChunk, n1 = std::min(n_all, n0 + detail::kColChunk), nw = n1 - n0;
        acc.assign(static_cast<size_t>(k_all * nw), C(0));
        for (int64_t i = 0; i < a.block_rows(); ++i)
          for (int64_t j = a.off[i]; j < a.off[i + 1]; ++j)
            for (int64_t y = 0; y < a.tr; ++y) {
              const int64_t r = i * a.tr + y;
              if (r >= a.rows) break;
              const T* grow = G + r * n_all;
              for (int64_t x = 0; x < a.tc; ++x) {
                const C v = widen(V[(j * a.tr + y) * a.tc + x]);
                const int64_t k = int64_t{a.col[j]} * a.tc + x;
                if (v == C(0) || k >= k_all) continue;
                C* drow = acc.data() + k * nw;
                for (int64_t n = n0; n < n1; ++n) drow[n - n0] += v * widen(grow[n]);
              }
            }
        for (int64_t k = 0; k < k_all; ++k)
          for (int64_t n = n0; n < n1; ++n) {
            T& out = D[k * n_all + n];
            const C v = acc[static_cast<size_t>(k * nw + n - n0)];
            out = write == Write::accumulate ? convert<T>(widen(out) + v) : convert<T>(v);
          }
      }
    });
  });
}

// out.values at the listed tiles of C = op(A) op(B); op(A) [rows, K], op(B) [K, cols].
void tile_sampled(const Tensor& a, const Tensor& b, const Tiles& out, Tensor& values, bool a_trans,
                  bool b_trans) {
  const int64_t kk = a_trans ? a.size(0) : a.size(1);
  const int64_t m = out.rows, n = out.cols;
  dispatch_floating(a.dtype(), "sampled_gemm", [&]<typename T>() {
    using C = acc_t<T>;
    const T* A = a.data<T>();
    const T* B = b.data<T>();
    T* V = values.data<T>();
    const auto av = [&](int64_t r, int64_t k) { return widen(a_trans ? A[k * m + r] : A[r * kk + k]); };
    const auto bv = [&](int64_t k, int64_t c) { return widen(b_trans ? B[c * kk + k] : B[k * n + c]); };
    parallel_for(0, out.block_rows(), 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = out.off[i]; j < out.off[i + 1]; ++j)
          for (int64_t y = 0; y < out.tr; ++y)
            for (int64_t x = 0; x < out.tc; ++x) {
              const int64_t r = i * out.tr + y, c = int64_t{out.col[j]} * out.tc + x;
              C s = C(0);
              if (r < m && c < n)
                for (int64_t k = 0; k < kk; ++k) s += av(r, k) * bv(k, c);
              V[(j * out.tr + y) * out.tc + x] = convert<T>(s);
            }
    });
  });
}

Tiles tiles_of(const KListIndex& a) {
  return {a.offsets.data<int32_t>(), a.k.data<int32_t>(), a.values, a.rows, a.cols, a.block_rows, 1};
}
Tiles tiles_of(const BlockListIndex& a) {
  return {a.offsets.data<int32_t>(), a.col.data<int32_t>(), a.values, a.rows, a.cols, a.block, a.block};
}

}  // namespace

void condense_gemm(const KListIndex& a, const Tensor& b, Tensor& c, const Epilogue& epilogue) {
  tile_gemm(tiles_of(a), b, c, epilogue);
}
void block_gemm(const BlockListIndex& a, const Tensor& b, Tensor& c, const Epilogue& epilogue) {
  tile_gemm(tiles_of(a), b, c, epilogue);
}
void condense_gemm_tn(const KListIndex& a, const Tensor& g, Tensor& db, Write write) {
  tile_gemm_tn(tiles_of(a), g, db, write);
}
void block_gemm_tn(const BlockListIndex& a, const Tensor& g, Tensor& db, Write write) {
  tile_gemm_tn(tiles_of(a), g, db, write);
}
void sampled_gemm(const Tensor& a, const Tensor& b, KListIndex& out, bool a_trans, bool b_trans) {
  tile_sampled(a, b, tiles_of(out), out.values, a_trans, b_trans);
}
void sampled_gemm(const Tensor& a, const Tensor& b, BlockListIndex& out, bool a_trans, bool b_trans) {
  tile_sampled(a, b, tiles_of(out), out.values, a_trans, b_trans);
}

}  // namespace pit::sparse::cpu
