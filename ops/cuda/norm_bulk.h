#pragma once
// Layernorm / rmsnorm backward in one pass over x and dy, its rows brought in by bulk copies
// (ops/cuda/norm_bulk.cu): the path ops/cuda/norm.cu takes first on sm_90 GPUs, for rows of up to
// 1024 elements (512 in f32) in whole, 16-byte aligned packs. PIT_NORM_BULK=0 turns it off (the
// cp.async kernel of ops/cuda/norm_fused.cu then takes these rows).
#include <cstdint>

#include "core/device.h"
#include "ops/cpu/norm.h"

namespace pit::cuda {

// dx, and dweight / dbias where not null, as norm_backward (mean null for rmsnorm). Returns false,
// having launched nothing, when the rows do not suit it (longer than 1024, not whole packs,
// misaligned, f64), the GPU or build is older than sm_90, or PIT_NORM_BULK=0.
bool norm_backward_bulk(const cpu::NormArgs& a, const void* dy, int64_t dy_stride, const void* x,
                        int64_t x_stride, const void* weight, const void* mean, const void* rstd,
                        void* dx, void* dweight, void* dbias, StreamRef stream);
// How many times norm_backward_bulk launched (returned true) in this process: tests assert the path ran.
int64_t norm_backward_bulk_launches();

}  // namespace pit::cuda
