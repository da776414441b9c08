#pragma once
// CPU gather / scatter-add along one dim of tensors viewed as [outer, n, inner].
#include <cstdint>

#include "core/tensor.h"

namespace pit::cpu {

// out[o, j, i] = x[o, index[o, j, i], i]; x contiguous [outer, n, inner], out contiguous
// [outer, m, inner], index i64 with strides (outer, m, inner) given (0 for broadcast).
void gather(const Tensor& x, const Tensor& index, const int64_t index_strides[3], Tensor& out,
            int64_t outer, int64_t n, int64_t m, int64_t inner);
// out[o, index[o, j, i], i] += src[o, j, i]; out contiguous [outer, n, inner].
void scatter_add(Tensor& out, const Tensor& index, const int64_t index_strides[3], const Tensor& src,
                 int64_t outer, int64_t n, int64_t m, int64_t inner);

}  // namespace pit::cpu
