#pragma once
// The cuBLAS handle of every benchmark's cuBLAS peer: created with the math mode of pit's own
// handles (ops/cuda/gemm.cpp: f16 / bf16 split-K partial sums kept in f32), so that a row compares
// pit with the kernels cuBLAS picks under the same rules.
#include <cublas_v2.h>

#include "core/error.h"

namespace pit::bench {

struct CublasPeer {
  cublasHandle_t h = nullptr;
  CublasPeer() {
    PIT_CUBLAS_CHECK(cublasCreate(&h));
    PIT_CUBLAS_CHECK(cublasSetMathMode(h, static_cast<cublasMath_t>(
                                              CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
  }
  ~CublasPeer() { cublasDestroy(h); }
  CublasPeer(const CublasPeer&) = delete;
  CublasPeer& operator=(const CublasPeer&) = delete;
};

}  // namespace pit::bench
