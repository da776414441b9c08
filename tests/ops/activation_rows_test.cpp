// The CPU's vectorised f32 activations (ops/cpu/activation_rows.h) against apply_unary and
// unary_derivative in f64, over a dense grid of inputs and odd lengths.
#include "ops/cpu/activation_rows.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "tests/core/worst.h"

using namespace pit;

namespace {

// -12 .. 12 in steps of about 1e-3, the signed zeros, and the far tails: 24,007 values (not a
// multiple of any vector width).
std::vector<float> inputs() {
  std::vector<float> x;
  for (int i = -12000; i <= 12000; ++i) x.push_back(static_cast<float>(i) * 1.0e-3f + 1.7e-5f);
  for (const float v : {0.0f, -0.0f, 30.0f, -30.0f, 90.0f, -90.0f}) x.push_back(v);
  return x;
}

// Within atol + rtol |want| of the f64 formula at every input; reports the worst.
void expect_close(const char* what, UnaryOp op, const std::vector<float>& x, const std::vector<float>& got,
                  bool derivative) {
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double xd = x[i], yd = apply_unary<double>(op, xd, 0.0);
    const double want = derivative ? unary_derivative<double>(op, xd, yd, 0.0) : yd;
    // f32 rounds the input and the formula's steps: 2e-6 absolute (1 + erf near -1, 1 - t^2)
    // and 1e-5 relative cover them; the scalar f32 formulas err as much.
    const double excess = std::abs(got[i] - want) - (2e-6 + 1e-5 * std::abs(want));
    if (test::worse(excess, worst)) {  // a NaN output sticks
      worst = excess;
      at = i;
    }
  }
  EXPECT_EQ(worst, 0.0) << what << " " << unary_name(op) << ": at x = " << x[at] << " got " << got[at];
}

TEST(ActivationRowsCpu, MatchTheF64Formulas) {
  const std::vector<float> x = inputs();
  for (const UnaryOp op : {UnaryOp::relu, UnaryOp::gelu_tanh, UnaryOp::gelu_erf, UnaryOp::silu, UnaryOp::tanh}) {
    std::vector<float> y = x;
    cpu::activate_f32(op, y.data(), static_cast<int64_t>(y.size()));
    expect_close("activate_f32", op, x, y, false);
    std::vector<float> d(x.size());
    cpu::activation_derivative_f32(op, x.data(), y.data(), d.data(), static_cast<int64_t>(x.size()));
    expect_close("activation_derivative_f32", op, x, d, true);
  }
}

TEST(ActivationRowsCpu, NanStaysNanAndEmptyRowsAreFine) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const UnaryOp op : {UnaryOp::relu, UnaryOp::gelu_tanh, UnaryOp::gelu_erf, UnaryOp::silu}) {
    std::vector<float> v(7, nan);
    cpu::activate_f32(op, v.data(), 7);
    for (const float y : v) EXPECT_TRUE(std::isnan(y)) << unary_name(op);
    cpu::activate_f32(op, v.data(), 0);
  }
}

}  // namespace
