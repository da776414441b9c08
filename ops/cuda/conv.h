#pragma once
// CUDA convolution (cuDNN, ops/cuda/conv.cpp) and pooling (own kernels, ops/cuda/pool.cu), as
// plain C++. Same geometry structs and layouts as the CPU kernels (ops/cpu/conv.h): contiguous
// NCHW, outputs allocated and shapes validated by ops/conv.cpp. Every call runs on `stream`
// (which must be the current stream of its device: workspaces come from pit's caching allocator
// on that stream) and nothing synchronizes.
//
// Convolution dtypes: f32 (cuDNN FMA math: no TF32, so results match the CPU to f32 rounding),
// f16 and bf16 (tensor-core math, f32 accumulation), f64. Algorithms come from cuDNN's
// heuristics (cudnnGet*Algorithm_v7), checked for a workspace query that succeeds, deterministic
// ones preferred, and are cached per (device, dtype, shape, parameters).
//
// Pooling keeps the CPU contract: max pooling returns i64 indices (ih * w + iw in the plane)
// and its backward scatters through them. f32, f64, f16, bf16 with f32 math (f64 for f64).
#include <cstdint>

#include "core/device.h"
#include "core/dtype.h"
#include "ops/cpu/conv.h"

namespace pit::cuda {

// ---- cuDNN (conv.cpp) ----
// y = conv(x, weight) (+ bias per output channel when bias is non-null).
void conv2d(const cpu::ConvGeometry& g, DType dtype, const void* x, const void* weight,
            const void* bias, void* y, StreamRef stream);
// dx = the gradient w.r.t. x (overwritten).
void conv2d_backward_data(const cpu::ConvGeometry& g, DType dtype, const void* dy,
                          const void* weight, void* dx, StreamRef stream);
// dweight = the gradient w.r.t. the weight (overwritten).
void conv2d_backward_filter(const cpu::ConvGeometry& g, DType dtype, const void* x, const void* dy,
                            void* dweight, StreamRef stream);

// ---- own kernels (pool.cu) ----
// y (n, c, hw) += bias[c], in place.
void add_channel_bias(int64_t n, int64_t c, int64_t hw, DType dtype, void* y, const void* bias,
                      StreamRef stream);
void max_pool2d(const cpu::PoolGeometry& g, DType dtype, const void* x, void* y, int64_t* indices,
                StreamRef stream);
// dx = zeros with dy added at the indices (atomics). f16/bf16 accumulate in `scratch`
// (planes * in_plane floats, required for them, ignored otherwise) and round once into dx.
// Indices outside the plane are skipped (a kernel cannot throw). The order of the additions into
// one element is unspecified, so where one input is the maximum of three or more overlapping
// windows the f32 sum may differ in its last bits from run to run.
void max_pool2d_backward(int64_t planes, int64_t in_plane, int64_t out_plane, DType dtype,
                         const void* dy, const int64_t* indices, void* dx, float* scratch,
                         StreamRef stream);
void avg_pool2d(const cpu::PoolGeometry& g, DType dtype, const void* x, void* y, StreamRef stream);
// A gather over the windows that cover each input: deterministic.
void avg_pool2d_backward(const cpu::PoolGeometry& g, DType dtype, const void* dy, void* dx,
                         StreamRef stream);

}  // namespace pit::cuda
