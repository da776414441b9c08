#include "trainer/optim/clip.h"

#include "ops/kernels.h"
#include "trainer/optim/grads.h"

namespace pit::optim {
namespace {

constexpr double kClipEps = 1e-6;  // torch.nn.utils.clip_grad_norm_'s

}  // namespace

Tensor grad_norm(const std::vector<Variable>& params) {
  const std::vector<Tensor> grads = f32_grads(params);
  if (grads.empty()) return zeros({});
  return kernels::global_norm(grads);
}

Tensor clip_grad_norm(const std::vector<Variable>& params, double max_norm) {
  const Tensor norm = grad_norm(params);
  clip_grads_to_norm(params, norm, max_norm);
  return norm;
}

void clip_grads_to_norm(const std::vector<Variable>& params, const Tensor& norm, double max_norm) {
  PIT_CHECK(max_norm > 0.0, "clip_grad_norm: max_norm must be > 0, got ", max_norm);
  const std::vector<Tensor> grads = f32_grads(params);
  if (!grads.empty()) kernels::clip_by_norm_(grads, norm, max_norm, kClipEps);
}

}  // namespace pit::optim
