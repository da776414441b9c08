#pragma once
// CUDA elementwise kernels (ops/cuda/elementwise.cu), as plain C++ (no CUDA headers).
// pit::kernels (ops/elementwise.cpp) checks shapes, dtypes and devices and calls these.
//
// Operands are described as for the CPU kernels (ops/cpu/elementwise.h): one StridedDesc per
// operand, all of the same ndim and sizes, inputs broadcast through stride-0 dims, dims merged
// by the caller where possible. Dtypes f32, f16, bf16 (computed in float, rounded once on
// store) and f64 (computed in double). Every launch goes on `stream`'s device and stream and
// nothing synchronizes. Dense operands with 16-byte aligned data take a vectorised path
// (16-byte loads and stores); anything else takes a strided path of up to kMaxDims dims.
#include "core/device.h"
#include "core/strided.h"
#include "ops/elementwise_op.h"

namespace pit::cuda {

// out = f(x; alpha)
void unary(UnaryOp op, const StridedDesc& out, const StridedDesc& x, double alpha,
           StreamRef stream);
// grad_x = grad_y * f'(x) for y = f(x; alpha)
void unary_backward(UnaryOp op, const StridedDesc& grad_x, const StridedDesc& grad_y,
                    const StridedDesc& x, const StridedDesc& y, double alpha, StreamRef stream);
// out = a (op) b
void binary(BinaryOp op, const StridedDesc& out, const StridedDesc& a, const StridedDesc& b,
            StreamRef stream);
// a += alpha * b, in place (a has no stride-0 dims of size > 1; b overlaps a only element for
// element).
void add_scaled(const StridedDesc& a, const StridedDesc& b, double alpha, StreamRef stream);

}  // namespace pit::cuda
