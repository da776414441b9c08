#pragma once
// A plain description of a strided array (pointer, dtype, sizes, strides in elements) that
// kernels take instead of a Tensor. Host and device code may include it.
#include <cstdint>

#include "core/dtype.h"

namespace pit {

inline constexpr int kMaxDims = 8;

struct StridedDesc {
  void* data = nullptr;
  DType dtype = DType::f32;
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};  // in elements
};

// Merges adjacent dimensions that are contiguous with each other in both layouts, and drops
// size-1 dimensions, in place over n dims of one shape (`sizes`) with strides `sa` and `sb`;
// returns the dims left (the same logical order of elements). Any n: tensors of more than
// kMaxDims dims merge before they become descriptions (core/copy.cpp).
int coalesce_pair(int n, int64_t* sizes, int64_t* sa, int64_t* sb);
// The same over two descriptions of one shape, so copies index as few dimensions as possible.
void coalesce_pair(StridedDesc& a, StridedDesc& b);
bool is_dense_row_major(const StridedDesc& d);

}  // namespace pit
