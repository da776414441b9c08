#pragma once
// CPU gather / scatter-add along one dim of tensors viewed as [outer, n, inner].
#include <cstdint>

#include "core/tensor.h"

namespace pit::cpu {

// What an out-of-range index error names: the op and the dim it indexes.
struct IndexSite {
  const char* op;
  int64_t dim;
};

// out[o, j, i] = x[o, index[o, j, i], i]; x contiguous [outer, n, inner], out contiguous
// [outer, m, inner], index i64 with strides (outer, m, inner) given (0 for broadcast).
void gather(const Tensor& x, const Tensor& index, const int64_t index_strides[3], Tensor& out,
            int64_t outer, int64_t n, int64_t m, int64_t inner, IndexSite site);
// out[o, index[o, j, i], i] += src[o, j, i]; out contiguous [outer, n, inner]. f16/bf16 sum in
// f32 and are rounded once at the end (as on CUDA), not after every addition.
void scatter_add(Tensor& out, const Tensor& index, const int64_t index_strides[3], const Tensor& src,
                 int64_t outer, int64_t n, int64_t m, int64_t inner, IndexSite site);

}  // namespace pit::cpu
