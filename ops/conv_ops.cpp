// Differentiable conv2d, max_pool2d and avg_pool2d (NCHW). Each saves only what its backward
// reads: conv2d the input and the weight (as references, no copies) and computes only the
// gradients that some input needs; max_pool2d its i64 indices; avg_pool2d nothing but shapes.
#include "autograd/node.h"
#include "ops/functional.h"
#include "ops/kernels.h"

namespace pit::kernels {
// Defined in ops/conv.cpp: conv2d_backward computing only the requested gradients.
Conv2dGrads conv2d_backward_select(const Tensor& dy, const Tensor& x, const Tensor& weight,
                                   bool has_bias, const Conv2dParams& p, bool need_dx,
                                   bool need_dweight);
}  // namespace pit::kernels

namespace pit::ops {
namespace {

// The pooling stride argument: -1 means "the kernel size"; any other value is taken as given
// (and validated by the kernels).
int64_t pool_stride(int64_t kernel, int64_t stride) { return stride == -1 ? kernel : stride; }

kernels::Pool2dParams pool_params(int64_t kernel, int64_t stride, int64_t padding) {
  const int64_t s = pool_stride(kernel, stride);
  kernels::Pool2dParams p;
  p.kernel_h = p.kernel_w = kernel;
  p.stride_h = p.stride_w = s;
  p.pad_h = p.pad_w = padding;
  return p;
}

}  // namespace

Variable conv2d(const Variable& x, const Variable& weight, const Variable& bias, int64_t stride,
                int64_t padding, int64_t dilation) {
  PIT_CHECK(x.defined() && weight.defined(), "conv2d: the input and the weight must be defined");
  kernels::Conv2dParams p;
  p.stride_h = p.stride_w = stride;
  p.pad_h = p.pad_w = padding;
  p.dilation_h = p.dilation_w = dilation;
  const Tensor y = kernels::conv2d(x.data(), weight.data(), bias.defined() ? bias.data() : Tensor(), p);
  const bool grad = needs_grad({x, weight, bias});
  const bool need_x = grad && x.requires_grad(), need_w = grad && weight.requires_grad();
  const bool need_b = grad && bias.defined() && bias.requires_grad();
  // dx reads the weight and dweight reads x; either needs both for the geometry.
  const Tensor sx = need_x || need_w ? x.data() : Tensor();
  const Tensor sw = need_x || need_w ? weight.data() : Tensor();
  return record("conv2d", {x, weight, bias}, y, [=](const Tensor& g) -> std::vector<Tensor> {
    if (!need_x && !need_w) return {Tensor(), Tensor(), kernels::sum(g, {0, 2, 3})};
    kernels::Conv2dGrads r = kernels::conv2d_backward_select(g, sx, sw, need_b, p, need_x, need_w);
    return {r.dx, r.dweight, r.dbias};
  });
}

Variable max_pool2d(const Variable& x, int64_t kernel, int64_t stride, int64_t padding) {
  const kernels::Pool2dParams p = pool_params(kernel, stride, padding);
  kernels::MaxPoolResult r = kernels::max_pool2d(x.data(), p);
  const Tensor indices = needs_grad({x}) ? r.indices : Tensor();
  const Shape x_shape = x.shape();
  return record("max_pool2d", {x}, r.y, [=](const Tensor& g) -> std::vector<Tensor> {
    return {kernels::max_pool2d_backward(g, indices, x_shape)};
  });
}

Variable avg_pool2d(const Variable& x, int64_t kernel, int64_t stride, int64_t padding) {
  const kernels::Pool2dParams p = pool_params(kernel, stride, padding);
  const Tensor y = kernels::avg_pool2d(x.data(), p);
  const Shape x_shape = x.shape();
  return record("avg_pool2d", {x}, y, [=](const Tensor& g) -> std::vector<Tensor> {
    return {kernels::avg_pool2d_backward(g, x_shape, p)};
  });
}

}  // namespace pit::ops
