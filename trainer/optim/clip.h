#pragma once
// Gradient clipping by the global L2 norm, as torch.nn.utils.clip_grad_norm_.
#include <vector>

#include "autograd/variable.h"
#include "core/tensor.h"

namespace pit::optim {

// The L2 norm of all gradients together (parameters without a gradient are skipped), computed
// on their device; each gradient is then scaled in place by min(1, max_norm / (norm + 1e-6)) on
// the device, with no host synchronisation. Returns the norm before clipping as a 0-d f32
// tensor on the gradients' device (read it when logging). No gradient at all: a CPU zero.
Tensor clip_grad_norm(const std::vector<Variable>& params, double max_norm);
// The same norm without clipping.
Tensor grad_norm(const std::vector<Variable>& params);
// Clipping with a norm computed elsewhere (0-d f32 on the gradients' device: e.g. a norm over
// gradients sharded across ranks, trainer/train/shards.h): each gradient *= min(1, max_norm /
// (norm + 1e-6)).
void clip_grads_to_norm(const std::vector<Variable>& params, const Tensor& norm, double max_norm);

}  // namespace pit::optim
