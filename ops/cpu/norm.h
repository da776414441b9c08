#pragma once
// CPU layernorm / rmsnorm kernels over rows: x is `rows` rows of `dim` elements, row r starting
// at x + r * x_stride, elements contiguous within a row. Outputs (y, dx) are dense
// [rows, dim] of x's dtype; weight / bias / dweight / dbias are dense (dim) of x's dtype or null.
// Statistics (mean, rstd: dense (rows)) are of the stats type: f64 for f64 inputs, f32
// otherwise. Sums accumulate in f64 whatever the dtype, so the CPU is an accurate reference for
// the CUDA kernels. dweight / dbias are summed over rows one column at a time, in row order:
// the same bits whatever the thread count.
#include <cstdint>

#include "core/dtype.h"

namespace pit::cpu {

struct NormArgs {
  DType dtype = DType::f32;
  int64_t rows = 0, dim = 0;
  bool rms = false;  // rmsnorm: no centring, mean is null
};

// y = (x - mean) * rstd * weight + bias (rms: x * rstd * weight); writes mean (layernorm only)
// and rstd = 1 / sqrt(var + eps) (rms: 1 / sqrt(mean(x^2) + eps)).
void norm_forward(const NormArgs& a, const void* x, int64_t x_stride, const void* weight,
                  const void* bias, double eps, void* y, void* mean, void* rstd);
// dx, and dweight (when non-null) / dbias (when non-null), from dy (rows with stride dy_stride),
// x and the saved statistics (mean null for rms).
void norm_backward(const NormArgs& a, const void* dy, int64_t dy_stride, const void* x,
                   int64_t x_stride, const void* weight, const void* mean, const void* rstd,
                   void* dx, void* dweight, void* dbias);

}  // namespace pit::cpu
