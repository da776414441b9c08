// Differentiable layernorm and rmsnorm over the last dim. Backward saves x, the weight and the
// per-row statistics (mean, rstd), never the output.
#include "autograd/node.h"
#include "ops/functional.h"
#include "ops/kernels.h"

namespace pit::ops {
namespace {

Tensor data_or_undefined(const Variable& v) { return v.defined() ? v.data() : Tensor(); }
bool wants_grad(const Variable& v) { return v.defined() && v.requires_grad(); }

}  // namespace

Variable layernorm(const Variable& x, const Variable& weight, const Variable& bias, double eps) {
  const Tensor w = data_or_undefined(weight), b = data_or_undefined(bias);
  kernels::NormResult r = kernels::layernorm(x.data(), w, b, eps);
  if (!needs_grad({x, weight, bias})) return Variable(r.y);
  const bool need_b = wants_grad(bias);
  const bool need_x = wants_grad(x), need_w = wants_grad(weight);
  kernels::NormResult saved{Tensor(), r.mean, r.rstd};  // not the output
  const Tensor sx = x.data();
  return record("layernorm", {x, weight, bias}, r.y,
                [=](const Tensor& g) -> std::vector<Tensor> {
                  // dbias only when bias needs it (dweight comes whenever there is a weight).
                  kernels::NormGrads d = kernels::layernorm_backward(g, sx, w, saved, need_b);
                  return {need_x ? d.dx : Tensor(), need_w ? d.dweight : Tensor(),
                          need_b ? d.dbias : Tensor()};
                });
}

Variable rmsnorm(const Variable& x, const Variable& weight, double eps) {
  const Tensor w = data_or_undefined(weight);
  kernels::NormResult r = kernels::rmsnorm(x.data(), w, eps);
  if (!needs_grad({x, weight})) return Variable(r.y);
  const bool need_x = wants_grad(x), need_w = wants_grad(weight);
  kernels::NormResult saved{Tensor(), Tensor(), r.rstd};
  const Tensor sx = x.data();
  return record("rmsnorm", {x, weight}, r.y, [=](const Tensor& g) -> std::vector<Tensor> {
    kernels::NormGrads d = kernels::rmsnorm_backward(g, sx, w, saved);
    return {need_x ? d.dx : Tensor(), need_w ? d.dweight : Tensor()};
  });
}

}  // namespace pit::ops
