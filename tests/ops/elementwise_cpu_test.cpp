// kernels::unary / unary_backward / binary on the CPU: f64 against the <cmath> references of
// elementwise_refs.h (unary_backward against a central difference of them), f16/bf16 against
// f32, ragged sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/random.h"
#include "ops/kernels.h"
#include "tests/ops/elementwise_refs.h"

using namespace pit;
using namespace pit::test::elementwise;

namespace {

// d/dx ref_unary by a central difference in f64 (error ~ h^2 f''' + eps f / h, about 1e-10).
double numeric_derivative(UnaryOp op, double x, double a) {
  const double h = 1e-5 * std::max(1.0, std::fabs(x));
  return (ref_unary(op, x + h, a) - ref_unary(op, x - h, a)) / (2 * h);
}

}  // namespace

// ---- CPU, f64, against the references ------------------------------------------------------

TEST(ElementwiseCpu, UnaryF64MatchesCmathReference) {
  manual_seed(1);
  for (UnaryOp op : kUnaryOps) {
    const double alpha = alpha_for(op);
    const Tensor x = unary_input(op, {37, 29});
    const Tensor y = kernels::unary(op, x, alpha);
    EXPECT_EQ(y.shape(), x.shape());
    EXPECT_EQ(y.dtype(), DType::f64);
    EXPECT_TRUE(y.is_contiguous());
    EXPECT_TRUE(all_close(values(y), ref_unary_all(op, x, alpha), 1e-12, 1e-14)) << name(op);
  }
}

TEST(ElementwiseCpu, UnaryBackwardF64MatchesNumericDerivative) {
  manual_seed(2);
  for (UnaryOp op : kUnaryOps) {
    const double alpha = alpha_for(op);
    const Tensor x = unary_input(op, {23, 19});
    const Tensor y = kernels::unary(op, x, alpha);
    const Tensor gy = make_normal({23, 19});
    const Tensor gx = kernels::unary_backward(op, gy, x, y, alpha);
    ASSERT_EQ(gx.shape(), x.shape());
    const std::vector<double> xv = values(x), gv = values(gy);
    std::vector<double> want(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) want[i] = gv[i] * numeric_derivative(op, xv[i], alpha);
    EXPECT_TRUE(all_close(values(gx), want, 1e-6, 1e-8)) << name(op);
  }
}

TEST(ElementwiseCpu, BinaryF64MatchesCmathReference) {
  manual_seed(3);
  for (BinaryOp op : kBinaryOps) {
    const Tensor a = make_input({31, 33}, [op](double v) { return binary_domain_a(op, v); });
    const Tensor b = make_input({31, 33}, [op](double v) { return binary_domain_b(op, v); });
    const Tensor z = kernels::binary(op, a, b);
    EXPECT_EQ(z.shape(), (Shape{31, 33}));
    EXPECT_TRUE(all_close(values(z), ref_broadcast(op, a, b, {31, 33}), 1e-12, 1e-14)) << name(op);
  }
}

TEST(ElementwiseCpu, NanPropagatesThroughReluMaximumAndMinimum) {
  expect_nan_propagates(Device::cpu(), {DType::f64, DType::f32, DType::bf16, DType::f16});
}

// ---- f16 / bf16 on the CPU ---------------------------------------------------------------------

TEST(ElementwiseCpu, HalfAndBFloat16MatchF32Reference) {
  manual_seed(7);
  for (DType dt : {DType::f16, DType::bf16}) {
    const double rtol = half_ulp(dt), atol = 0x1p-25;
    for (UnaryOp op : kUnaryOps) {
      const double alpha = alpha_for(op);
      const Tensor x = unary_input(op, {257}, dt);
      const Tensor y = kernels::unary(op, x, alpha);
      ASSERT_EQ(y.dtype(), dt);
      const Tensor y32 = kernels::unary(op, x.to(DType::f32), alpha);
      EXPECT_TRUE(all_close(y, y32, rtol, atol)) << name(op) << " " << dt;
      // And against the f64 reference on the same rounded inputs, so that the f32 formulas are not
      // their own check: one rounding to dt, and f32's error where a result cancels (atol).
      EXPECT_TRUE(all_close(values(y), ref_unary_all(op, x, alpha), rtol, 4e-6)) << name(op) << " " << dt << " against f64";
      const Tensor gy = make_normal({257}, dt);
      const Tensor gx = kernels::unary_backward(op, gy, x, y, alpha);
      const Tensor gx32 = kernels::unary_backward(op, gy.to(DType::f32), x.to(DType::f32),
                                                  y.to(DType::f32), alpha);
      EXPECT_TRUE(all_close(gx, gx32, rtol, atol)) << name(op) << " backward " << dt;
    }
    for (BinaryOp op : kBinaryOps) {
      const Tensor a = make_input({9, 31}, [op](double v) { return binary_domain_a(op, v); }, dt);
      const Tensor b = make_input({31}, [op](double v) { return binary_domain_b(op, v); }, dt);
      const Tensor z = kernels::binary(op, a, b);
      ASSERT_EQ(z.dtype(), dt);
      EXPECT_TRUE(all_close(z, kernels::binary(op, a.to(DType::f32), b.to(DType::f32)), rtol, atol))
          << name(op) << " " << dt;
      EXPECT_TRUE(all_close(values(z), ref_broadcast(op, a, b, {9, 31}), rtol, 4e-6)) << name(op) << " " << dt << " against f64";
    }
  }
}

// f32 on the CPU against the f64 reference on the same inputs, every unary and binary op: f32's
// rounding (a few units of 2^-24, more where a formula cancels: atol).
TEST(ElementwiseCpu, F32MatchesF64Reference) {
  manual_seed(17);
  for (UnaryOp op : kUnaryOps) {
    const double alpha = alpha_for(op);
    const Tensor x = unary_input(op, {1031}, DType::f32);
    EXPECT_TRUE(all_close(values(kernels::unary(op, x, alpha)), ref_unary_all(op, x, alpha), 1e-5, 1e-6)) << name(op);
  }
  for (BinaryOp op : kBinaryOps) {
    const Tensor a = make_input({7, 33}, [op](double v) { return binary_domain_a(op, v); }, DType::f32);
    const Tensor b = make_input({33}, [op](double v) { return binary_domain_b(op, v); }, DType::f32);
    EXPECT_TRUE(all_close(values(kernels::binary(op, a, b)), ref_broadcast(op, a, b, {7, 33}), 1e-6, 1e-7)) << name(op);
  }
}

// ---- ragged sizes ------------------------------------------------------------------------------

TEST(ElementwiseCpu, RaggedSizes) {
  manual_seed(8);
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1000003}}) {
    const Tensor x = make_normal({n}, DType::f32), w = make_normal({n}, DType::f32);
    // f32 results against f64 references on the same (f32) inputs.
    EXPECT_TRUE(all_close(values(kernels::unary(UnaryOp::sigmoid, x)),
                          ref_unary_all(UnaryOp::sigmoid, x, 0), 1e-6, 1e-7)) << n;
    EXPECT_TRUE(all_close(values(kernels::binary(BinaryOp::mul, x, w)),
                          ref_broadcast(BinaryOp::mul, x, w, {n}), 1e-6, 0)) << n;
    const Tensor y = kernels::unary(UnaryOp::exp, x);
    const std::vector<double> xv = values(x), wv = values(w);
    std::vector<double> want(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) want[i] = wv[i] * std::exp(xv[i]);
    EXPECT_TRUE(all_close(values(kernels::unary_backward(UnaryOp::exp, w, x, y)), want, 1e-6, 1e-7)) << n;
  }
}
