#pragma once
// CUDA optimizer kernels (ops/cuda/optim.cu), as plain C++: the contract of ops/cpu/optim.h on
// f32 device memory. The updates are one fused kernel per parameter tensor; the gradient
// utilities take a list of tensors and launch one kernel per 48 of them. Every launch goes on
// `stream`; nothing synchronizes and nothing is read back by the host.
#include <cstdint>
#include <vector>

#include "core/device.h"
#include "ops/optim_math.h"

namespace pit::cuda {

void adamw_step(const AdamWCoeffs& c, int64_t n, float* param, const float* grad, float* exp_avg,
                float* exp_avg_sq, StreamRef stream);
// buf may be null when c.momentum == 0.
void sgd_step(const SgdCoeffs& c, int64_t n, float* param, const float* grad, float* buf,
              StreamRef stream);

struct FloatSpan {
  float* data;
  int64_t n;
};

// *norm = sqrt(sum of x^2 over every span): per-block partial sums in f32, added in a fixed
// order in f64 by one block, so the result is bit-identical from run to run.
void global_norm(const std::vector<FloatSpan>& xs, float* norm, StreamRef stream);
// x *= min(1, max_norm / (*norm + eps)) for every span, the coefficient computed on the device
// from *norm; the kernels touch no gradient when it is 1.
void clip_by_norm(const std::vector<FloatSpan>& xs, const float* norm, float max_norm, float eps,
                  StreamRef stream);
// x *= s for every span; *found_inf = 1 when a scaled element is inf or NaN (left as it was
// otherwise: the caller zeroes it first).
void scale_and_check(const std::vector<FloatSpan>& xs, float s, float* found_inf, StreamRef stream);

}  // namespace pit::cuda
