#pragma once
// Gradients as the update kernels read them (optimizer steps, clipping, loss scaling): f32 and
// contiguous. A bf16/f16 or strided gradient is converted once, in place on its Variable, so the
// next reader finds it ready.
#include <vector>

#include "autograd/variable.h"

namespace pit::optim {

// v's gradient (defined), made f32 and contiguous on v if it was not.
Tensor f32_grad(const Variable& v);
// The defined gradients of params, each by f32_grad, in order; parameters without one are skipped.
std::vector<Tensor> f32_grads(const std::vector<Variable>& params);

}  // namespace pit::optim
