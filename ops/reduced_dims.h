#pragma once
// The dims a reduction removes, and its output gradient put back where they were: shared by the
// differentiable reductions (ops/reduction_ops.cpp, ops/reduction_grad_ops.cpp).
#include <algorithm>
#include <vector>

#include "core/tensor.h"

namespace pit::ops::detail {

// The dims a reduction over `dims` of x removes (all of them when dims is empty), wrapped and
// sorted. A 0-d tensor has none (its dims 0 and -1, which the kernels accept, remove nothing).
inline std::vector<int64_t> reduced_dims(const Tensor& x, const std::vector<int64_t>& dims) {
  std::vector<int64_t> out;
  if (x.dim() == 0) return out;
  if (dims.empty()) {
    for (int64_t d = 0; d < x.dim(); ++d) out.push_back(d);
  } else {
    for (const int64_t d : dims) out.push_back(x.wrap_dim(d));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// g, of the reduction's output shape, with size-1 dims put back at the reduced dims.
inline Tensor with_kept_dims(const Tensor& g, const std::vector<int64_t>& rdims, bool keepdim) {
  Tensor t = g;
  if (!keepdim)
    for (const int64_t d : rdims) t = t.unsqueeze(d);
  return t;
}

}  // namespace pit::ops::detail
