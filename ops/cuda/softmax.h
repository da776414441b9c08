#pragma once
// CUDA softmax kernels (ops/cuda/softmax.cu), as plain C++: the same [outer, mid, inner] view
// (View3, ops/cpu/reduce.h) and contract as ops/cpu/softmax.h, on f32, f16, bf16 and f64
// (f32 math, f64 for f64). Every launch goes on `stream`; nothing synchronizes.
#include "core/device.h"
#include "ops/cpu/reduce.h"

namespace pit::cuda {

void softmax(const View3& x, void* y, bool log, StreamRef stream);
void softmax_backward(const View3& grad_y, const View3& y, void* grad_x, bool log,
                      StreamRef stream);

}  // namespace pit::cuda
