#pragma once
// The element functions of the elementwise kernels, shared by the CPU and CUDA kernels so that
// both compute the same formula (host and device code). Math runs in `float` for f16/bf16/f32
// and in `double` for f64 (the kernels choose the compute type C).
#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "core/macros.h"

namespace pit {

enum class UnaryOp : uint8_t {
  neg, exp, log, sqrt, rsqrt, tanh, sigmoid, relu, gelu_tanh, gelu_erf, silu, abs,
  add_scalar,  // x + alpha
  mul_scalar,  // x * alpha
  pow_scalar,  // x ^ alpha
  rsub_scalar, // alpha - x
  rdiv_scalar, // alpha / x
};

// keep_where: a where b != 0 (NaN counts as non-zero), else 0: a sparsity pattern applied in one
// pass (no autograd backward).
enum class BinaryOp : uint8_t { add, sub, mul, div, pow, maximum, minimum, keep_where };

const char* unary_name(UnaryOp op);
const char* binary_name(BinaryOp op);

// Host-side dispatch of a runtime op to kernels templated on it (CPU and CUDA launchers).
// Calls fn.template operator()<Op>() with the op as a compile-time constant.
template <typename Fn>
inline void with_unary_op(UnaryOp op, Fn&& fn) {
#define PIT_UNARY_CASE(name) \
  case UnaryOp::name: return fn.template operator()<UnaryOp::name>();
  switch (op) {
    PIT_UNARY_CASE(neg) PIT_UNARY_CASE(exp) PIT_UNARY_CASE(log) PIT_UNARY_CASE(sqrt)
    PIT_UNARY_CASE(rsqrt) PIT_UNARY_CASE(tanh) PIT_UNARY_CASE(sigmoid) PIT_UNARY_CASE(relu)
    PIT_UNARY_CASE(gelu_tanh) PIT_UNARY_CASE(gelu_erf) PIT_UNARY_CASE(silu) PIT_UNARY_CASE(abs)
    PIT_UNARY_CASE(add_scalar) PIT_UNARY_CASE(mul_scalar) PIT_UNARY_CASE(pow_scalar)
    PIT_UNARY_CASE(rsub_scalar) PIT_UNARY_CASE(rdiv_scalar)
  }
#undef PIT_UNARY_CASE
  PIT_THROW("elementwise: invalid UnaryOp value ", static_cast<int>(op));
}

template <typename Fn>
inline void with_binary_op(BinaryOp op, Fn&& fn) {
#define PIT_BINARY_CASE(name) \
  case BinaryOp::name: return fn.template operator()<BinaryOp::name>();
  switch (op) {
    PIT_BINARY_CASE(add) PIT_BINARY_CASE(sub) PIT_BINARY_CASE(mul) PIT_BINARY_CASE(div)
    PIT_BINARY_CASE(pow) PIT_BINARY_CASE(maximum) PIT_BINARY_CASE(minimum) PIT_BINARY_CASE(keep_where)
  }
#undef PIT_BINARY_CASE
  PIT_THROW("elementwise: invalid BinaryOp value ", static_cast<int>(op));
}

template <typename C>
PIT_HD_INLINE C sigmoid_of(C x) { return C(1) / (C(1) + std::exp(-x)); }

// sqrt(2/pi) and the 0.044715 cubic coefficient of the tanh approximation of GELU.
template <typename C> PIT_HD_INLINE C gelu_k0() { return C(0.7978845608028654); }
template <typename C> PIT_HD_INLINE C gelu_k1() { return C(0.044715); }

template <typename C>
PIT_HD_INLINE C apply_unary(UnaryOp op, C x, C alpha) {
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::exp: return std::exp(x);
    case UnaryOp::log: return std::log(x);
    case UnaryOp::sqrt: return std::sqrt(x);
    case UnaryOp::rsqrt: return C(1) / std::sqrt(x);
    case UnaryOp::tanh: return std::tanh(x);
    case UnaryOp::sigmoid: return sigmoid_of(x);
    case UnaryOp::relu: return x <= C(0) ? C(0) : x;  // NaN stays NaN (as in PyTorch)
    case UnaryOp::gelu_tanh:
      return C(0.5) * x * (C(1) + std::tanh(gelu_k0<C>() * (x + gelu_k1<C>() * x * x * x)));
    case UnaryOp::gelu_erf: return C(0.5) * x * (C(1) + std::erf(x * C(0.7071067811865476)));
    case UnaryOp::silu: return x * sigmoid_of(x);
    case UnaryOp::abs: return x < C(0) ? -x : x;
    case UnaryOp::add_scalar: return x + alpha;
    case UnaryOp::mul_scalar: return x * alpha;
    case UnaryOp::pow_scalar: return std::pow(x, alpha);
    case UnaryOp::rsub_scalar: return alpha - x;
    case UnaryOp::rdiv_scalar: return alpha / x;
  }
  return x;
}

// dy/dx of y = f(x; alpha), given x and y.
template <typename C>
PIT_HD_INLINE C unary_derivative(UnaryOp op, C x, C y, C alpha) {
  switch (op) {
    case UnaryOp::neg: return C(-1);
    case UnaryOp::exp: return y;
    case UnaryOp::log: return C(1) / x;
    case UnaryOp::sqrt: return C(0.5) / y;
    case UnaryOp::rsqrt: return C(-0.5) * y * y * y;
    case UnaryOp::tanh: return C(1) - y * y;
    case UnaryOp::sigmoid: return y * (C(1) - y);
    case UnaryOp::relu: return x > C(0) ? C(1) : C(0);
    case UnaryOp::gelu_tanh: {
      const C inner = gelu_k0<C>() * (x + gelu_k1<C>() * x * x * x);
      const C t = std::tanh(inner);
      const C dinner = gelu_k0<C>() * (C(1) + C(3) * gelu_k1<C>() * x * x);
      return C(0.5) * (C(1) + t) + C(0.5) * x * (C(1) - t * t) * dinner;
    }
    case UnaryOp::gelu_erf: {
      // 0.5 (1 + erf(x/sqrt2)) + x exp(-x^2/2) / sqrt(2 pi)
      return C(0.5) * (C(1) + std::erf(x * C(0.7071067811865476))) +
             x * std::exp(C(-0.5) * x * x) * C(0.3989422804014327);
    }
    case UnaryOp::silu: {
      const C s = sigmoid_of(x);
      return s * (C(1) + x * (C(1) - s));
    }
    case UnaryOp::abs: return x > C(0) ? C(1) : (x < C(0) ? C(-1) : C(0));
    case UnaryOp::add_scalar: return C(1);
    case UnaryOp::mul_scalar: return alpha;
    case UnaryOp::pow_scalar:  // x^0 is constant: 0, not 0 * x^-1 (NaN at x = 0)
      return alpha == C(0) ? C(0) : alpha * std::pow(x, alpha - C(1));
    case UnaryOp::rsub_scalar: return C(-1);
    case UnaryOp::rdiv_scalar: return -alpha / (x * x);
  }
  return C(0);
}

template <typename C>
PIT_HD_INLINE C apply_binary(BinaryOp op, C a, C b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
    case BinaryOp::pow: return std::pow(a, b);
    case BinaryOp::maximum: return a > b || a != a ? a : b;  // a NaN on either side wins (as torch.maximum)
    case BinaryOp::minimum: return a < b || a != a ? a : b;
    case BinaryOp::keep_where: return b != C(0) ? a : C(0);
  }
  return a;
}

}  // namespace pit
