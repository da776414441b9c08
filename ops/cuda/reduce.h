#pragma once
// CUDA reduction kernels (ops/cuda/reduce.cu), as plain C++: the same [outer, mid, inner] view
// (View3, ops/cpu/reduce.h) and contract as the CPU kernels, on f32, f16, bf16 and f64.
// f16/bf16/f32 accumulate in f32, f64 in f64. Results are deterministic: a fixed reduction
// order (no atomics), so the same input gives the same bits on every run. Every launch goes on
// `stream`; nothing synchronizes. Needs numel(x) > 0.
#include <cstdint>

#include "core/device.h"
#include "ops/cpu/reduce.h"

namespace pit::cuda {

// out[o * inner + i] = scale * sum over m of x(o, m, i).
void reduce_sum(const View3& x, void* out, double scale, StreamRef stream);
// Sum of squared deviations / max(0, mid - correction) (Welford, merged in a fixed order).
void reduce_var(const View3& x, void* out, int64_t correction, StreamRef stream);
// Maximum over mid and the index of its first occurrence (NaN counts as the largest).
void reduce_max(const View3& x, void* values, int64_t* indices, StreamRef stream);

}  // namespace pit::cuda
