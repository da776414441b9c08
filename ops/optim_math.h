#pragma once
// The element steps of the optimizer kernels, shared by the CPU (ops/cpu/optim.cpp) and CUDA
// (ops/cuda/optim.cu) kernels so that both compute the same f32 formula in the same order. The
// per-step constants are folded on the host (in double, rounded once to f32) by ops/optim.cpp.
#include <cmath>

#include "core/macros.h"

namespace pit {

// AdamW as torch.optim.AdamW: decoupled weight decay, then the Adam moments and update.
struct AdamWCoeffs {
  float decay = 1.0f;  // 1 - lr * weight_decay
  float beta1 = 0.9f, beta2 = 0.999f;
  // 1 - beta, computed in double and rounded once (1 - 0.999f in f32 would be off by 5e-5).
  float one_minus_beta1 = 0.1f, one_minus_beta2 = 0.001f;
  float step_size = 0.0f;  // lr / (1 - beta1^t), or lr without bias correction
  float sqrt_bc2 = 1.0f;   // sqrt(1 - beta2^t), or 1 without bias correction
  float eps = 1e-8f;
};

PIT_HD_INLINE void adamw_element(float& p, float g, float& m, float& v, const AdamWCoeffs& c) {
  p *= c.decay;
  m = c.beta1 * m + c.one_minus_beta1 * g;
  v = c.beta2 * v + c.one_minus_beta2 * g * g;
  const float denom = std::sqrt(v) / c.sqrt_bc2 + c.eps;
  p -= c.step_size * (m / denom);
}

// SGD as torch.optim.SGD: L2 weight decay added to the gradient, then momentum (the buffer is
// the decayed gradient itself on the first step), Nesterov or plain.
struct SgdCoeffs {
  float lr = 0.0f;
  float weight_decay = 0.0f;
  float momentum = 0.0f;  // 0: no buffer
  float one_minus_dampening = 1.0f;
  bool nesterov = false;
  bool first = false;  // first step of this parameter: buf = d
};

// `buf` is read and written only when c.momentum != 0.
PIT_HD_INLINE void sgd_element(float& p, float g, float& buf, const SgdCoeffs& c) {
  float d = g;
  if (c.weight_decay != 0.0f) d += c.weight_decay * p;
  if (c.momentum != 0.0f) {
    const float b = c.first ? d : c.momentum * buf + c.one_minus_dampening * d;
    buf = b;
    d = c.nesterov ? d + c.momentum * b : b;
  }
  p -= c.lr * d;
}

}  // namespace pit
