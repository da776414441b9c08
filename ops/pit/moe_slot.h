#pragma once
// Where an entry of a routing index (rows_from_routing, ops/pit/detect.h) came from: its expert
// segment and the slot of its token that named it. Host and device code, shared by the CPU and
// CUDA moe_activation_backward (ops/pit/moe_grad.h) so that both pair entries and slots alike.
#include <cstdint>

#include "core/macros.h"

namespace pit::sparse {

// The segment of entry e < offsets[segments] (offsets[0] = 0): the s with
// offsets[s] <= e < offsets[s + 1], by binary search (empty segments are never the answer).
PIT_HD_INLINE int segment_of(const int32_t* offsets, int segments, int e) {
  int lo = 0, hi = segments;  // offsets[lo] <= e < offsets[hi]
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (offsets[mid] <= e)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

// The flat slot t * k + j of entry e of segment s (token t = rows[e]): the o-th slot j with
// expert_of[t, j] == s, o the number of entries of s just before e with the same token (a token
// that names s twice has two consecutive entries, in slot order). -1 when there is none (an
// index not built from this routing).
template <typename I>
PIT_HD_INLINE int64_t slot_of(const int32_t* rows, const int32_t* offsets, const I* expert_of, int k, int s,
                              int e) {
  const int t = rows[e];
  int o = 0;
  while (e - o > offsets[s] && rows[e - o - 1] == t) ++o;
  const I* ids = expert_of + int64_t{t} * k;
  for (int j = 0; j < k; ++j)
    if (ids[j] == s && o-- == 0) return int64_t{t} * k + j;
  return -1;
}

}  // namespace pit::sparse
