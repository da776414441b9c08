#pragma once
// A tensor seen as the [outer, mid, inner] array (View3) of the reduction and softmax kernels,
// without a copy, where each group of dims walks with one stride.
#include <cstdint>
#include <optional>

#include "core/tensor.h"
#include "ops/cpu/reduce.h"

namespace pit::kernels {

// t's dims [0, mid_begin) as outer, [mid_begin, mid_end) as mid and the rest as inner; empty
// where a group's strides do not chain (see merged_dims).
inline std::optional<View3> view3(const Tensor& t, int64_t mid_begin, int64_t mid_end) {
  const auto outer = merged_dims(t, 0, mid_begin), mid = merged_dims(t, mid_begin, mid_end),
             inner = merged_dims(t, mid_end, t.dim());
  if (!outer || !mid || !inner) return std::nullopt;
  View3 v;
  v.data = t.data_ptr();
  v.dtype = t.dtype();
  const MergedDims groups[3] = {*outer, *mid, *inner};
  for (int i = 0; i < 3; ++i) {
    v.sizes[i] = groups[i].size;
    v.strides[i] = groups[i].stride;
  }
  return v;
}

}  // namespace pit::kernels
