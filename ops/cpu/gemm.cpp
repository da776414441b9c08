#include "ops/cpu/gemm.h"

#include <cblas.h>

#include <algorithm>
#include <vector>

#include "core/convert.h"
#include "core/error.h"
#include "ops/cpu/blas_setup.h"

namespace pit::cpu {
namespace {

CBLAS_TRANSPOSE op(bool trans) { return trans ? CblasTrans : CblasNoTrans; }

// Rows x cols elements of a row-major matrix with leading dimension ld, widened to f32.
template <typename T>
std::vector<float> widen(const T* p, int64_t rows, int64_t cols, int64_t ld) {
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = static_cast<float>(p[r * ld + c]);
  return out;
}

template <typename T>
void gemm_reduced(const GemmArgs& g) {
  // Stored shapes of A and B (before op).
  const int64_t ar = g.trans_a ? g.k : g.m, ac = g.trans_a ? g.m : g.k;
  const int64_t br = g.trans_b ? g.n : g.k, bc = g.trans_b ? g.k : g.n;
  for (int64_t i = 0; i < g.batch; ++i) {
    const auto a = widen(static_cast<const T*>(g.a) + i * g.stride_a, ar, ac, g.lda);
    const auto b = widen(static_cast<const T*>(g.b) + i * g.stride_b, br, bc, g.ldb);
    T* c = static_cast<T*>(g.c) + i * g.stride_c;
    std::vector<float> cf = g.beta != 0.0 ? widen(c, g.m, g.n, g.ldc)
                                          : std::vector<float>(static_cast<size_t>(g.m * g.n));
    cblas_sgemm(CblasRowMajor, op(g.trans_a), op(g.trans_b), g.m, g.n, g.k,
                static_cast<float>(g.alpha), a.data(), static_cast<int>(std::max<int64_t>(ac, 1)), b.data(),
                static_cast<int>(std::max<int64_t>(bc, 1)), static_cast<float>(g.beta), cf.data(),
                static_cast<int>(std::max<int64_t>(g.n, 1)));
    for (int64_t r = 0; r < g.m; ++r)
      for (int64_t col = 0; col < g.n; ++col) c[r * g.ldc + col] = T(cf[r * g.n + col]);
  }
}

}  // namespace

void gemm(const GemmArgs& g) {
  if (g.m == 0 || g.n == 0 || g.batch == 0) return;
  prepare_blas();  // OpenBLAS's kernels for this CPU and its thread count (ops/cpu/blas_setup.h)
  check_gemm_fits_int(g, "the CPU BLAS");
  const int m = static_cast<int>(g.m), n = static_cast<int>(g.n), k = static_cast<int>(g.k);
  const int lda = static_cast<int>(g.lda), ldb = static_cast<int>(g.ldb), ldc = static_cast<int>(g.ldc);
  switch (g.dtype) {
    case DType::f32:
      for (int64_t i = 0; i < g.batch; ++i)
        cblas_sgemm(CblasRowMajor, op(g.trans_a), op(g.trans_b), m, n, k, static_cast<float>(g.alpha),
                    static_cast<const float*>(g.a) + i * g.stride_a, lda,
                    static_cast<const float*>(g.b) + i * g.stride_b, ldb, static_cast<float>(g.beta),
                    static_cast<float*>(g.c) + i * g.stride_c, ldc);
      return;
    case DType::f64:
      for (int64_t i = 0; i < g.batch; ++i)
        cblas_dgemm(CblasRowMajor, op(g.trans_a), op(g.trans_b), m, n, k, g.alpha,
                    static_cast<const double*>(g.a) + i * g.stride_a, lda,
                    static_cast<const double*>(g.b) + i * g.stride_b, ldb, g.beta,
                    static_cast<double*>(g.c) + i * g.stride_c, ldc);
      return;
    case DType::f16: gemm_reduced<Half>(g); return;
    case DType::bf16: gemm_reduced<BFloat16>(g); return;
    default:
      PIT_THROW("matmul: dtype ", dtype_name(g.dtype), " is not supported; supported dtypes: "
                "f32, f64, f16, bf16");
  }
}

}  // namespace pit::cpu
