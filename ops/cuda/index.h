#pragma once
// CUDA gather / scatter-add along one dim (see ops/cpu/index.h for the layout).
#include <cstdint>

#include "core/tensor.h"

namespace pit::cuda {

void gather(const Tensor& x, const Tensor& index, const int64_t index_strides[3], Tensor& out,
            int64_t outer, int64_t n, int64_t m, int64_t inner, StreamRef stream);
// Accumulates with atomics in f32 (f64 for f64): the order of additions, and so the last bits of
// f32 sums, may vary between runs. f16/bf16 outputs accumulate in an f32 buffer, then round.
void scatter_add(Tensor& out, const Tensor& index, const int64_t index_strides[3], const Tensor& src,
                 int64_t outer, int64_t n, int64_t m, int64_t inner, StreamRef stream);

}  // namespace pit::cuda
