#pragma once
// CPU convolution and pooling kernels (ops/cpu/conv.cpp) and the geometry structs that the CUDA
// kernels (ops/cuda/conv.h) share. Every tensor is contiguous NCHW; the dispatch in ops/conv.cpp
// validates shapes, makes operands contiguous and allocates outputs.
//
// conv2d: im2col + GEMM (ops/cpu/gemm, OpenBLAS) per chunk of images: col (K, Ho*Wo) with
// K = Cin*kh*kw, then y[n] = W (Cout, K) x col[n] for the chunk in one strided-batched GEMM.
// 1x1 stride-1 unpadded convolutions skip im2col (col[n] is x[n] itself). Backward:
// dW = sum_n dy[n] col[n]^T, dcol[n] = W^T dy[n] and dx = col2im(dcol). f32 and f64 (the dispatch
// runs f16/bf16 through f32).
//
// Pooling: one task per (n, c) plane, parallel over planes; f32, f64, f16, bf16 (f64 math on the
// CPU, so it is an accurate reference).
#include <cstdint>

#include "core/dtype.h"

namespace pit::cpu {

// One 2-D convolution: x (n, c_in, h, w), weight (c_out, c_in, kh, kw), y (n, c_out, h_out,
// w_out) with h_out = (h + 2 pad_h - dilation_h (kh - 1) - 1) / stride_h + 1 (likewise w_out).
struct ConvGeometry {
  int64_t n = 0, c_in = 0, h = 0, w = 0;
  int64_t c_out = 0, kh = 0, kw = 0;
  int64_t h_out = 0, w_out = 0;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
};

// One 2-D pooling over `planes` = n * c independent (h, w) planes; output (h_out, w_out) with
// h_out = (h + 2 pad_h - kernel_h) / stride_h + 1. Padding never wins a max and counts as zeros
// in the average (divisor kernel_h * kernel_w).
struct PoolGeometry {
  int64_t planes = 0, h = 0, w = 0, h_out = 0, w_out = 0;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

// y = conv(x, weight) (+ bias per output channel when bias is non-null). f32, f64.
void conv2d(const ConvGeometry& g, DType dtype, const void* x, const void* weight, const void* bias,
            void* y);
// dx (when non-null) = the gradient w.r.t. x; dweight (when non-null) = w.r.t. the weight. Both are
// overwritten. f32, f64.
void conv2d_backward(const ConvGeometry& g, DType dtype, const void* dy, const void* x,
                     const void* weight, void* dx, void* dweight);

// Max pooling: y and i64 indices (ih * w + iw inside the plane) of the first maximum in the
// window's row-major order; NaN counts as the maximum (the first NaN wins).
void max_pool2d(const PoolGeometry& g, DType dtype, const void* x, void* y, int64_t* indices);
// dx (planes, in_plane) = zeros with dy[p, o] added at indices[p, o]; in plane order, so the
// result is deterministic.
void max_pool2d_backward(int64_t planes, int64_t in_plane, int64_t out_plane, DType dtype,
                         const void* dy, const int64_t* indices, void* dx);
void avg_pool2d(const PoolGeometry& g, DType dtype, const void* x, void* y);
// Gathers, for each input element, dy / (kernel_h * kernel_w) of every window covering it.
void avg_pool2d_backward(const PoolGeometry& g, DType dtype, const void* dy, void* dx);

}  // namespace pit::cpu
