#pragma once
// CPU reduction kernels. pit::kernels (ops/reduce.cpp) views the input as a strided
// [outer, mid, inner] array (View3) and reduces `mid`; outputs are dense [outer, inner].
//
// Accumulation: in f64 for every floating dtype. The CPU is the reference the CUDA kernels are
// tested against, and f64 makes its rounding error negligible next to theirs; the cost (one
// widening per element) is hidden behind several independent accumulators per output.
#include <cstdint>

#include "core/dtype.h"

namespace pit {

// A strided array seen as three dims: sizes {outer, mid, inner}, strides in elements. Element
// (o, m, i) lies at data + o * strides[0] + m * strides[1] + i * strides[2]. Shared by the CPU
// and CUDA reduction and softmax kernels.
struct View3 {
  const void* data = nullptr;
  DType dtype = DType::f32;
  int64_t sizes[3] = {1, 1, 1};
  int64_t strides[3] = {0, 0, 0};
};

}  // namespace pit

namespace pit::cpu {

// out[o * inner + i] = scale * sum over m of x(o, m, i). mean passes scale = 1 / mid.
// Floating dtypes; out has x's dtype. Needs numel(x) > 0 (the caller fills empty reductions).
void reduce_sum(const View3& x, void* out, double scale);
// Variance over mid: sum of squared deviations / max(0, mid - correction) (NaN for 0 / 0).
void reduce_var(const View3& x, void* out, int64_t correction);
// Maximum over mid and the index of its first occurrence; NaN counts as larger than any number
// (the first NaN wins), as in PyTorch.
void reduce_max(const View3& x, void* values, int64_t* indices);

}  // namespace pit::cpu
