#pragma once
// CPU optimizer kernels over n contiguous f32 elements: the fused AdamW / SGD updates (one pass
// over param, grad and state, in place) and the gradient utilities behind clip_grad_norm and
// loss scaling. Multi-threaded with parallel_for; sums are taken over fixed chunks added in
// order, so the result does not depend on the thread count.
#include <cstdint>

#include "ops/optim_math.h"

namespace pit::cpu {

void adamw_step(const AdamWCoeffs& c, int64_t n, float* param, const float* grad, float* exp_avg,
                float* exp_avg_sq);
// buf may be null when c.momentum == 0.
void sgd_step(const SgdCoeffs& c, int64_t n, float* param, const float* grad, float* buf);
// Sum of x[i]^2 in f64.
double sum_of_squares(const float* x, int64_t n);
// x *= s.
void scale(float* x, int64_t n, float s);
// x *= s; returns whether any scaled element is inf or NaN.
bool scale_and_check(float* x, int64_t n, float s);

}  // namespace pit::cpu
