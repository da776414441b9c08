#pragma once
// A tensor seen as rows of its last dim, for the row-wise kernels (norms, cross-entropy): the
// tensor itself when the last dim has unit stride and the leading dims merge into one stride
// (views and slices need no copy), else a contiguous copy. Row i starts at t's data + i * stride.
#include <cstdint>

#include "core/tensor.h"

namespace pit::kernels {

struct RowView {
  Tensor t;
  int64_t rows = 0, dim = 0, stride = 0;
};

inline RowView row_view(const Tensor& x) {
  RowView r;
  r.dim = x.size(-1);
  r.rows = r.dim > 0 ? x.numel() / r.dim : 0;
  r.t = x;
  const auto rows = merged_dims(x, 0, x.dim() - 1);
  const bool ok = (r.dim == 1 || x.stride(-1) == 1) && rows.has_value();
  if (!ok) r.t = x.contiguous();
  r.stride = ok && r.rows > 1 ? rows->stride : r.dim;
  return r;
}

// The dtype of per-row statistics (mean, rstd, lse, per-row losses): f64 for f64 inputs, so that
// gradcheck keeps full precision, else f32.
inline DType stat_dtype(DType x) { return x == DType::f64 ? DType::f64 : DType::f32; }

}  // namespace pit::kernels
