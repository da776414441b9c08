#pragma once
// CUDA layernorm / rmsnorm kernels (ops/cuda/norm.cu), as plain C++: the same row layout and
// contract as ops/cpu/norm.h (NormArgs), on f32, f16, bf16 and f64. Statistics and sums in f32
// (f64 for f64); outputs rounded once. dweight / dbias are reduced without atomics, in an order
// fixed by the shape alone, so they are bit-identical from run to run (and GPU to GPU). Every
// launch goes on `stream`; nothing synchronizes.
#include <cstdint>

#include "core/device.h"
#include "ops/cpu/norm.h"

namespace pit::cuda {

void norm_forward(const cpu::NormArgs& a, const void* x, int64_t x_stride, const void* weight,
                  const void* bias, double eps, void* y, void* mean, void* rstd, StreamRef stream);
void norm_backward(const cpu::NormArgs& a, const void* dy, int64_t dy_stride, const void* x,
                   int64_t x_stride, const void* weight, const void* mean, const void* rstd,
                   void* dx, void* dweight, void* dbias, StreamRef stream);

}  // namespace pit::cuda
