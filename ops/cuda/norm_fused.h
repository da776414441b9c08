#pragma once
// Layernorm / rmsnorm backward in one pass over x and dy by cp.async (ops/cuda/norm_fused.cu), the
// path ops/cuda/norm.cu takes where the bulk-copy kernel (norm_bulk.h) does not: for rows of up to
// 1024 elements in whole, 16-byte aligned packs.
#include <cstdint>

#include "core/device.h"
#include "ops/cpu/norm.h"

namespace pit::cuda {

// dx, and dweight / dbias where not null, as norm_backward (mean null for rmsnorm). Returns false,
// having launched nothing, when the rows do not suit it (longer than 1024, not whole packs,
// misaligned, f64); the caller then runs the general kernels.
bool norm_backward_fused(const cpu::NormArgs& a, const void* dy, int64_t dy_stride, const void* x,
                         int64_t x_stride, const void* weight, const void* mean, const void* rstd,
                         void* dx, void* dweight, void* dbias, StreamRef stream);

}  // namespace pit::cuda
