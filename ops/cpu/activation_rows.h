#pragma once
// The fused activations over a row of f32 values on the CPU: one loop per activation, which the
// compiler vectorises, with glibc's vector math library (libmvec) for erf, exp and tanh where
// CMake found it (PIT_HAVE_LIBMVEC; glibc >= 2.35 on x86-64). The formulas are apply_unary's and
// unary_derivative's (ops/elementwise_op.h); the results differ from them by the rounding of the
// vector erf / exp / tanh (a few ulp). Scalar erff took about 10 ns an element: with the MoE
// layer's GELU it was about half of the CPU forward (11.4 ms -> 6.1 ms at 2048 x 128, ffn 512).
#include <cstdint>

#include "ops/elementwise_op.h"

namespace pit::cpu {

// The activations with vector loops; activate_f32 and activation_derivative_f32 take any other
// op element by element through apply_unary / unary_derivative.
constexpr bool has_vector_loop(UnaryOp act) {
  return act == UnaryOp::relu || act == UnaryOp::gelu_tanh || act == UnaryOp::gelu_erf || act == UnaryOp::silu;
}

// v[i] = act(v[i]).
void activate_f32(UnaryOp act, float* v, int64_t n);

// d[i] = act'(x[i]), given y[i] = act(x[i]) (unary_derivative's arguments).
void activation_derivative_f32(UnaryOp act, const float* x, const float* y, float* d, int64_t n);

}  // namespace pit::cpu
