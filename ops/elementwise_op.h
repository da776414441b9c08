#pragma once
// The element functions of the elementwise kernels, shared by the CPU and CUDA kernels so that
// both compute the same formula (host and device code). Math runs in `float` for f16/bf16/f32
// and in `double` for f64 (the kernels choose the compute type C).
#include <cmath>
#include <cstdint>

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

enum class BinaryOp : uint8_t { add, sub, mul, div, pow, maximum, minimum };

const char* unary_name(UnaryOp op);
const char* binary_name(BinaryOp op);

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
    case UnaryOp::relu: return x > C(0) ? x : C(0);
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
    case UnaryOp::pow_scalar: return alpha * std::pow(x, alpha - C(1));
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
    case BinaryOp::maximum: return a > b ? a : b;
    case BinaryOp::minimum: return a < b ? a : b;
  }
  return a;
}

}  // namespace pit
