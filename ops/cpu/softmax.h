#pragma once
// CPU softmax kernels along the middle dim of a strided [outer, mid, inner] view (View3, see
// ops/cpu/reduce.h). Outputs are dense [outer, mid, inner] of the input's dtype. Floating
// dtypes; f16/bf16/f32 compute in f32, f64 in f64; every output is rounded once.
#include "ops/cpu/reduce.h"

namespace pit::cpu {

// y = softmax(x) (log = false) or log_softmax(x) (log = true) along mid.
void softmax(const View3& x, void* y, bool log);
// grad_x along mid, given grad_y and y = the forward's output:
//   softmax:     grad_x = y * (grad_y - sum(grad_y * y))
//   log_softmax: grad_x = grad_y - exp(y) * sum(grad_y)
// grad_y and y have the same sizes and dtype (their strides may differ).
void softmax_backward(const View3& grad_y, const View3& y, void* grad_x, bool log);

}  // namespace pit::cpu
