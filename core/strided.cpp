#include "core/strided.h"

namespace pit {

int coalesce_pair(int n, int64_t* sizes, int64_t* sa, int64_t* sb) {
  int out = 0;
  for (int d = 0; d < n; ++d) {
    if (sizes[d] == 1) continue;  // size-1 dims move nothing
    if (out > 0 && sa[out - 1] == sizes[d] * sa[d] && sb[out - 1] == sizes[d] * sb[d]) {
      // dim d continues dim out-1 in both arrays: merge them
      sizes[out - 1] *= sizes[d];
      sa[out - 1] = sa[d];
      sb[out - 1] = sb[d];
      continue;
    }
    sizes[out] = sizes[d];
    sa[out] = sa[d];
    sb[out] = sb[d];
    ++out;
  }
  // An array with no dim of size > 1 is one element (or empty: a zero size is kept above).
  return out;
}

void coalesce_pair(StridedDesc& a, StridedDesc& b) {
  a.ndim = b.ndim = coalesce_pair(a.ndim, a.sizes, a.strides, b.strides);
  for (int d = 0; d < a.ndim; ++d) b.sizes[d] = a.sizes[d];
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
