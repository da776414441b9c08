#pragma once
// CPU elementwise kernels (ops/cpu/elementwise.cpp). pit::kernels (ops/elementwise.cpp) checks
// shapes, dtypes and devices and calls these.
//
// Every operand is a StridedDesc with the same ndim and sizes (those of the output); inputs
// broadcast through stride-0 dims. Any strides are handled; the caller merges dims first
// (size-1 dims dropped, dims contiguous in every operand merged) so that most calls reach the
// dense inner loop. All operands share one dtype: f32, f64, f16 or bf16 (others throw). The
// math runs in double for f64 and in float otherwise (f16/bf16 round once, on store), with the
// formulas of ops/elementwise_op.h, the same as the CUDA kernels.
#include "core/strided.h"
#include "ops/elementwise_op.h"

namespace pit::cpu {

// out = f(x; alpha)
void unary(UnaryOp op, const StridedDesc& out, const StridedDesc& x, double alpha);
// grad_x = grad_y * f'(x) for y = f(x; alpha)
void unary_backward(UnaryOp op, const StridedDesc& grad_x, const StridedDesc& grad_y,
                    const StridedDesc& x, const StridedDesc& y, double alpha);
// out = a (op) b
void binary(BinaryOp op, const StridedDesc& out, const StridedDesc& a, const StridedDesc& b);
// a += alpha * b, in place. `a` must not have stride-0 dims of size > 1, and b must not
// overlap a other than element for element.
void add_scaled(const StridedDesc& a, const StridedDesc& b, double alpha);

}  // namespace pit::cpu
