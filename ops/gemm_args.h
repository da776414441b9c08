#pragma once
// One (strided-batched) row-major GEMM: C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b] for
// b < batch, with op(X) = X or X^T. Row-major, leading dimensions in elements; batch strides
// may be 0 (a broadcast operand).
#include <cstdint>

#include "core/dtype.h"

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

}  // namespace pit
