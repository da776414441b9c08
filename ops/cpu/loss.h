#pragma once
// CPU cross-entropy kernels, fused with log-softmax, over rows: logits are `rows` rows of
// `classes` elements, row r starting at logits + r * stride, elements contiguous within a row.
// Targets are dense (rows) of i64 or i32. Per-row results (loss, lse) and the incoming per-row
// gradient are dense (rows) of the stats type: f64 for f64 logits, f32 otherwise. dlogits is
// dense [rows, classes] of the logits' dtype. Sums in f64.
//
// Row r with target t:
//   t == ignore_index:    loss 0, lse 0, zero gradient;
//   t outside [0, classes): loss, lse and the row's gradient are NaN (kernels::cross_entropy
//                         rejects such targets on the host before calling this);
//   otherwise, with eps = label_smoothing, lse = log(sum_c exp(x_c)):
//     loss = (1 - eps) (lse - x_t) + eps mean_c (lse - x_c) = lse - (1 - eps) x_t - eps mean_c x_c
//     dloss/dx_c = softmax_c - (1 - eps) [c == t] - eps / classes.
#include <cstdint>

#include "core/dtype.h"

namespace pit::cpu {

struct CrossEntropyArgs {
  DType dtype = DType::f32;         // of the logits
  DType target_dtype = DType::i64;  // i64 or i32
  int64_t rows = 0, classes = 0;
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
};

void cross_entropy(const CrossEntropyArgs& a, const void* logits, int64_t stride,
                   const void* targets, void* loss, void* lse);
// dlogits = grad_loss[r] * dloss_r/dlogits, from the forward's lse.
void cross_entropy_backward(const CrossEntropyArgs& a, const void* grad_loss, const void* logits,
                            int64_t stride, const void* targets, const void* lse, void* dlogits);

}  // namespace pit::cpu
