// Differentiable elementwise ops.
#include "autograd/node.h"
#include "ops/functional.h"
#include "ops/kernels.h"

namespace pit::ops {
namespace {

// Saves a tensor for backward only when backward will run.
Tensor keep(bool needed, const Tensor& t) { return needed ? t : Tensor(); }

Variable binary_op(BinaryOp op, const Variable& a, const Variable& b) {
  const Tensor out = kernels::binary(op, a.data(), b.data());
  const bool grad = needs_grad({a, b});
  const bool need_a = grad && a.requires_grad(), need_b = grad && b.requires_grad();
  // Saved operands: mul needs the other one, div needs b (and the output for db).
  const Tensor sa = keep(grad && (op == BinaryOp::mul && need_b), a.data());
  const Tensor sb = keep(grad && (op == BinaryOp::mul || op == BinaryOp::div), b.data());
  const Tensor so = keep(grad && op == BinaryOp::div && need_b, out);
  const Shape a_shape = a.shape(), b_shape = b.shape();
  return record(binary_name(op), {a, b}, out, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor ga, gb;
    switch (op) {
      case BinaryOp::add:
        if (need_a) ga = g;
        if (need_b) gb = g;
        break;
      case BinaryOp::sub:
        if (need_a) ga = g;
        if (need_b) gb = kernels::unary(UnaryOp::neg, g);
        break;
      case BinaryOp::mul:
        if (need_a) ga = kernels::binary(BinaryOp::mul, g, sb);
        if (need_b) gb = kernels::binary(BinaryOp::mul, g, sa);
        break;
      case BinaryOp::div:
        // d(a/b)/da = 1/b; d(a/b)/db = -(a/b)/b
        if (need_a) ga = kernels::binary(BinaryOp::div, g, sb);
        if (need_b)
          gb = kernels::unary(UnaryOp::neg,
                              kernels::binary(BinaryOp::div, kernels::binary(BinaryOp::mul, g, so), sb));
        break;
      default:
        PIT_THROW("backward of ", binary_name(op), " is not implemented");
    }
    if (ga.defined()) ga = kernels::sum_to(ga, a_shape);
    if (gb.defined()) gb = kernels::sum_to(gb, b_shape);
    return {ga, gb};
  });
}

}  // namespace

Variable unary(UnaryOp op, const Variable& x, double alpha) {
  const Tensor out = kernels::unary(op, x.data(), alpha);
  const bool grad = needs_grad({x});
  const Tensor sx = keep(grad, x.data()), so = keep(grad, out);
  return record(unary_name(op), {x}, out, [=](const Tensor& g) -> std::vector<Tensor> {
    return {kernels::unary_backward(op, g, sx, so, alpha)};
  });
}

Variable add(const Variable& a, const Variable& b) { return binary_op(BinaryOp::add, a, b); }
Variable sub(const Variable& a, const Variable& b) { return binary_op(BinaryOp::sub, a, b); }
Variable mul(const Variable& a, const Variable& b) { return binary_op(BinaryOp::mul, a, b); }
Variable div(const Variable& a, const Variable& b) { return binary_op(BinaryOp::div, a, b); }
Variable add(const Variable& a, double s) { return unary(UnaryOp::add_scalar, a, s); }
Variable mul(const Variable& a, double s) { return unary(UnaryOp::mul_scalar, a, s); }
Variable pow(const Variable& a, double e) { return unary(UnaryOp::pow_scalar, a, e); }
Variable neg(const Variable& x) { return unary(UnaryOp::neg, x); }
Variable exp(const Variable& x) { return unary(UnaryOp::exp, x); }
Variable log(const Variable& x) { return unary(UnaryOp::log, x); }
Variable sqrt(const Variable& x) { return unary(UnaryOp::sqrt, x); }
Variable rsqrt(const Variable& x) { return unary(UnaryOp::rsqrt, x); }
Variable tanh(const Variable& x) { return unary(UnaryOp::tanh, x); }
Variable sigmoid(const Variable& x) { return unary(UnaryOp::sigmoid, x); }
Variable relu(const Variable& x) { return unary(UnaryOp::relu, x); }
Variable silu(const Variable& x) { return unary(UnaryOp::silu, x); }
Variable gelu(const Variable& x, GeluApprox approx) {
  return unary(approx == GeluApprox::tanh ? UnaryOp::gelu_tanh : UnaryOp::gelu_erf, x);
}

}  // namespace pit::ops
