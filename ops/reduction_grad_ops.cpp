// Differentiable max (values and indices over one dim) and var, on kernels::max / kernels::var.
//
// max: the gradient goes to the first maximum of each slice (the index kernels::max returns),
// scattered with kernels::scatter_add; every input position receives at most one value, so the
// result does not depend on the order of the additions. Backward saves the indices only.
// var: d var / dx = 2 (x - mean) / (N - correction), times the incoming gradient broadcast back
// over the reduced dims (inf / NaN where N - correction <= 0, like the variance itself).
// Backward saves x; f16 / bf16 compute it in f32 and round once.
#include <algorithm>
#include <vector>

#include "autograd/node.h"
#include "ops/functional.h"
#include "ops/kernels.h"
#include "ops/reduced_dims.h"

namespace pit::ops {

using detail::reduced_dims;
using detail::with_kept_dims;

MaxOutput max(const Variable& x, int64_t dim, bool keepdim) {
  kernels::MaxResult r = kernels::max(x.data(), dim, keepdim);
  MaxOutput out;
  out.indices = r.indices;
  if (!needs_grad({x})) {
    out.values = Variable(r.values);
    return out;
  }
  const Shape shape = x.shape();
  if (x.dim() == 0) {  // the maximum of one element is that element
    out.values = record("max", {x}, r.values,
                        [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
    return out;
  }
  const int64_t d = x.data().wrap_dim(dim);
  const Tensor index = keepdim ? r.indices : r.indices.unsqueeze(d);
  out.values = record("max", {x}, r.values, [=](const Tensor& g) -> std::vector<Tensor> {
    const Tensor src = keepdim ? g : g.unsqueeze(d);
    return {kernels::scatter_add(shape, d, index, src)};
  });
  return out;
}

Variable var(const Variable& x, const std::vector<int64_t>& dims, int64_t correction,
             bool keepdim) {
  Tensor y = kernels::var(x.data(), dims, correction, keepdim);
  if (!needs_grad({x})) return Variable(y);
  const std::vector<int64_t> rdims = reduced_dims(x.data(), dims);
  int64_t count = 1;
  for (const int64_t d : rdims) count *= x.size(d);
  const double denom = static_cast<double>(std::max<int64_t>(0, count - correction));
  const double scale = 2.0 / denom;  // inf when denom is 0, as the variance is NaN / inf then
  const Tensor sx = x.data();
  return record("var", {x}, y, [=](const Tensor& g) -> std::vector<Tensor> {
    const DType dt = sx.dtype();
    const DType ct = (dt == DType::f16 || dt == DType::bf16) ? DType::f32 : dt;
    const Tensor xc = sx.to(ct);
    const Tensor mean = kernels::mean(xc, rdims, true);
    const Tensor gk = with_kept_dims(g.to(ct), rdims, keepdim);
    const Tensor diff = kernels::binary(BinaryOp::sub, xc, mean);
    Tensor gx = kernels::unary(UnaryOp::mul_scalar, kernels::binary(BinaryOp::mul, diff, gk), scale);
    return {gx.to(dt)};
  });
}

}  // namespace pit::ops
