#pragma once
// One (strided-batched) row-major GEMM: C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b] for
// b < batch, with op(X) = X or X^T. Row-major, leading dimensions in elements; batch strides
// may be 0 (a broadcast operand).
#include <cstdint>

#include "core/dtype.h"
#include "core/error.h"

namespace pit {

struct GemmArgs {
  DType dtype = DType::f32;
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0, batch = 1;
  const void* a = nullptr;
  int64_t lda = 0, stride_a = 0;
  const void* b = nullptr;
  int64_t ldb = 0, stride_b = 0;
  void* c = nullptr;
  int64_t ldc = 0, stride_c = 0;
  double alpha = 1.0, beta = 0.0;
};

// The BLAS libraries (OpenBLAS, cuBLAS) take sizes, leading dimensions and the batch as 32-bit
// ints: a larger one would be cut silently, so it is an error, named with the library's limit.
inline void check_gemm_fits_int(const GemmArgs& g, const char* library) {
  const struct {
    const char* name;
    int64_t value;
  } dims[] = {{"m", g.m}, {"n", g.n}, {"k", g.k}, {"lda", g.lda}, {"ldb", g.ldb}, {"ldc", g.ldc},
              {"batch", g.batch}};
  for (const auto& d : dims)
    PIT_CHECK(d.value <= INT32_MAX, "matmul: ", d.name, " = ", d.value, " exceeds ", library,
              "'s 32-bit limit (2147483647); split the product into smaller ones (for example "
              "along the rows of A)");
}

}  // namespace pit
