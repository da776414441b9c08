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

// Merges adjacent dimensions that are contiguous with each other in both descriptions (same
// sizes required), and drops size-1 dimensions, so copies index as few dimensions as possible.
void coalesce_pair(StridedDesc& a, StridedDesc& b);
bool is_dense_row_major(const StridedDesc& d);

}  // namespace pit
