// Differentiable reductions and softmax.
#include <algorithm>

#include "autograd/node.h"
#include "ops/functional.h"
#include "ops/kernels.h"
#include "ops/reduced_dims.h"

namespace pit::ops {
namespace {

// g (the reduction's output gradient) broadcast back to x's shape.
Tensor expand_back(const Tensor& g, const Shape& x_shape, const std::vector<int64_t>& rdims,
                   bool keepdim) {
  return detail::with_kept_dims(g, rdims, keepdim).expand(x_shape);
}

}  // namespace

Variable sum(const Variable& x, const std::vector<int64_t>& dims, bool keepdim) {
  const std::vector<int64_t> rdims = detail::reduced_dims(x.data(), dims);
  const Shape shape = x.shape();
  return record("sum", {x}, kernels::sum(x.data(), dims, keepdim),
                [=](const Tensor& g) -> std::vector<Tensor> {
                  return {expand_back(g, shape, rdims, keepdim)};
                });
}

Variable mean(const Variable& x, const std::vector<int64_t>& dims, bool keepdim) {
  const std::vector<int64_t> rdims = detail::reduced_dims(x.data(), dims);
  int64_t count = 1;
  for (int64_t d : rdims) count *= x.size(d);
  const Shape shape = x.shape();
  return record("mean", {x}, kernels::mean(x.data(), dims, keepdim),
                [=](const Tensor& g) -> std::vector<Tensor> {
                  const Tensor scaled =
                      kernels::unary(UnaryOp::mul_scalar, g, count > 0 ? 1.0 / count : 0.0);
                  return {expand_back(scaled, shape, rdims, keepdim)};
                });
}

Variable softmax(const Variable& x, int64_t dim) {
  const Tensor y = kernels::softmax(x.data(), dim);
  const Tensor saved = needs_grad({x}) ? y : Tensor();
  return record("softmax", {x}, y, [=](const Tensor& g) -> std::vector<Tensor> {
    return {kernels::softmax_backward(g, saved, dim)};
  });
}

Variable log_softmax(const Variable& x, int64_t dim) {
  const Tensor y = kernels::log_softmax(x.data(), dim);
  const Tensor saved = needs_grad({x}) ? y : Tensor();
  return record("log_softmax", {x}, y, [=](const Tensor& g) -> std::vector<Tensor> {
    return {kernels::log_softmax_backward(g, saved, dim)};
  });
}

}  // namespace pit::ops
