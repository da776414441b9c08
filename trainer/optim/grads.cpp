#include "trainer/optim/grads.h"

namespace pit::optim {

Tensor f32_grad(const Variable& v) {
  if (v.grad().dtype() != DType::f32 || !v.grad().is_contiguous()) {
    Variable handle = v;  // shares v's state: the converted gradient replaces v's
    handle.set_grad(v.grad().to(DType::f32).contiguous());
  }
  return v.grad();
}

std::vector<Tensor> f32_grads(const std::vector<Variable>& params) {
  std::vector<Tensor> out;
  for (const Variable& p : params)
    if (p.defined() && p.grad().defined()) out.push_back(f32_grad(p));
  return out;
}

}  // namespace pit::optim
