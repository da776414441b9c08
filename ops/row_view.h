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
  bool ok = r.dim == 1 || x.stride(-1) == 1;
  int64_t prev = -1;
  for (int64_t d = 0; ok && d + 1 < x.dim(); ++d) {
    if (x.size(d) == 1) continue;
    if (prev >= 0 && x.stride(prev) != x.size(d) * x.stride(d)) ok = false;
    r.stride = x.stride(d);
    prev = d;
  }
  if (!ok) r.t = x.contiguous();
  if (!ok || r.rows <= 1) r.stride = r.dim;
  return r;
}

// The dtype of per-row statistics (mean, rstd, lse, per-row losses): f64 for f64 inputs, so that
// gradcheck keeps full precision, else f32.
inline DType stat_dtype(DType x) { return x == DType::f64 ? DType::f64 : DType::f32; }

}  // namespace pit::kernels
