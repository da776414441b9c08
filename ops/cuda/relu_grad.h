#pragma once
// The backward of a ReLU that follows a linear layer, in one pass (ops/cuda/relu_grad.cu), as
// plain C++ (no CUDA headers): grad_x = grad_y where y > 0 (else 0), read from the ReLU's output y,
// and the bias gradient (the column sums of grad_x) from the same loads. pit::kernels
// (ops/elementwise.cpp, relu_backward_from_output) checks the operands and calls it.
#include <cstdint>

#include "core/device.h"
#include "core/dtype.h"

namespace pit::cuda {

// grad_y, y, grad_x: [rows, n] row-major, contiguous; bias_grad: [n] or null. Returns false
// (nothing launched) for what it does not take: a dtype other than f32 / f16 / bf16, rows of
// n not a whole number of 16-byte packs, data not 16-byte aligned, no rows.
bool relu_backward_from_output(DType dtype, int64_t rows, int64_t n, const void* grad_y, const void* y,
                               void* grad_x, void* bias_grad, StreamRef stream);

}  // namespace pit::cuda
