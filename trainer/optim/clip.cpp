#include "trainer/optim/clip.h"

#include "ops/kernels.h"

namespace pit::optim {
namespace {

constexpr double kClipEps = 1e-6;  // torch.nn.utils.clip_grad_norm_'s

// The defined gradients, f32 and contiguous (converted in place on the Variable if needed).
std::vector<Tensor> grads_of(const std::vector<Variable>& params) {
  std::vector<Tensor> out;
  for (const Variable& p : params) {
    if (!p.defined() || !p.grad().defined()) continue;
    if (p.grad().dtype() != DType::f32 || !p.grad().is_contiguous()) {
      Variable v = p;
      v.set_grad(p.grad().to(DType::f32).contiguous());
    }
    out.push_back(p.grad());
  }
  return out;
}

}  // namespace

Tensor grad_norm(const std::vector<Variable>& params) {
  const std::vector<Tensor> grads = grads_of(params);
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
  const std::vector<Tensor> grads = grads_of(params);
  if (!grads.empty()) kernels::clip_by_norm_(grads, norm, max_norm, kClipEps);
}

}  // namespace pit::optim
