#include "core/strided.h"

namespace pit {

void coalesce_pair(StridedDesc& a, StridedDesc& b) {
  int out = 0;
  for (int d = 0; d < a.ndim; ++d) {
    if (a.sizes[d] == 1) continue;  // size-1 dims move nothing
    if (out > 0 && a.strides[out - 1] == a.sizes[d] * a.strides[d] &&
        b.strides[out - 1] == b.sizes[d] * b.strides[d]) {
      // dim d continues dim out-1 in both arrays: merge them
      a.sizes[out - 1] *= a.sizes[d];
      b.sizes[out - 1] *= b.sizes[d];
      a.strides[out - 1] = a.strides[d];
      b.strides[out - 1] = b.strides[d];
      continue;
    }
    a.sizes[out] = a.sizes[d];
    b.sizes[out] = b.sizes[d];
    a.strides[out] = a.strides[d];
    b.strides[out] = b.strides[d];
    ++out;
  }
  // An array with no dim of size > 1 is one element (or empty: a zero size is kept above).
  a.ndim = b.ndim = out;
}

bool is_dense_row_major(const StridedDesc& d) {
  int64_t expected = 1;
  for (int i = d.ndim - 1; i >= 0; --i) {
    if (d.sizes[i] != 1 && d.strides[i] != expected) return false;
    expected *= d.sizes[i];
  }
  return true;
}

}  // namespace pit
