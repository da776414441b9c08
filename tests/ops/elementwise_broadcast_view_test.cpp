// kernels::broadcast_shapes, binary with numpy broadcasting, and unary / binary / backward /
// add_scaled_ on non-contiguous views (transposed, stepped, expanded, permuted, nine dims,
// large enough to split over threads) on the CPU, against the f64 references.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/random.h"
#include "core/thread_pool.h"
#include "ops/kernels.h"
#include "tests/ops/elementwise_refs.h"

using namespace pit;
using namespace pit::test::elementwise;

// ---- broadcasting ------------------------------------------------------------------------------

TEST(ElementwiseCpu, BroadcastShapes) {
  EXPECT_EQ(kernels::broadcast_shapes({3, 1}, {1, 4}), (Shape{3, 4}));
  EXPECT_EQ(kernels::broadcast_shapes({2, 3, 4}, {4}), (Shape{2, 3, 4}));
  EXPECT_EQ(kernels::broadcast_shapes({4}, {2, 3, 4}), (Shape{2, 3, 4}));
  EXPECT_EQ(kernels::broadcast_shapes({}, {2, 3}), (Shape{2, 3}));
  EXPECT_EQ(kernels::broadcast_shapes({}, {}), Shape{});
  EXPECT_EQ(kernels::broadcast_shapes({0, 3}, {1, 3}), (Shape{0, 3}));
  EXPECT_EQ(kernels::broadcast_shapes({5, 1, 0}, {1, 7, 1}), (Shape{5, 7, 0}));
}

TEST(ElementwiseCpu, BinaryBroadcastsLikeNumpy) {
  manual_seed(4);
  for (const BroadcastCase& c : kBroadcastCases) {
    for (BinaryOp op : kBinaryOps) {
      const Tensor a = make_input(c.a, [op](double v) { return binary_domain_a(op, v); });
      const Tensor b = make_input(c.b, [op](double v) { return binary_domain_b(op, v); });
      const Tensor z = kernels::binary(op, a, b);
      ASSERT_EQ(z.shape(), c.out) << shape_str(c.a) << " x " << shape_str(c.b);
      EXPECT_TRUE(all_close(values(z), ref_broadcast(op, a, b, c.out), 1e-12, 1e-14))
          << name(op) << " " << shape_str(c.a) << " x " << shape_str(c.b);
    }
  }
}

// ---- views -------------------------------------------------------------------------------------

namespace {

Tensor squeeze_nine(const Tensor& t) { return t.squeeze(7).squeeze(5).squeeze(3).squeeze(1); }

}  // namespace

TEST(ElementwiseCpu, NonContiguousInputs) {
  manual_seed(5);
  for (const Tensor& v : views_5x7()) {
    ASSERT_EQ(v.shape(), (Shape{5, 7}));
    // unary ops without domain limits
    for (UnaryOp op : {UnaryOp::exp, UnaryOp::gelu_erf, UnaryOp::mul_scalar}) {
      const double alpha = alpha_for(op);
      EXPECT_TRUE(all_close(values(kernels::unary(op, v, alpha)), ref_unary_all(op, v, alpha), 1e-12, 1e-14))
          << name(op) << " strides " << shape_str(v.strides());
    }
    // binary with every other view as the second operand
    for (const Tensor& w : views_5x7())
      for (BinaryOp op : {BinaryOp::sub, BinaryOp::maximum}) {
        EXPECT_TRUE(all_close(values(kernels::binary(op, v, w)), ref_broadcast(op, v, w, {5, 7}), 0, 0))
            << name(op) << " strides " << shape_str(v.strides()) << " and " << shape_str(w.strides());
      }
    // backward with a non-contiguous grad_y and x
    const Tensor y = kernels::unary(UnaryOp::tanh, v);
    const Tensor gx = kernels::unary_backward(UnaryOp::tanh, v, v, y);
    const std::vector<double> xv = values(v);
    std::vector<double> want(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) want[i] = xv[i] * (1 - std::tanh(xv[i]) * std::tanh(xv[i]));
    EXPECT_TRUE(all_close(values(gx), want, 1e-12, 1e-14)) << "strides " << shape_str(v.strides());
  }
}

TEST(ElementwiseCpu, PermutedAndPartlyMergeableViews) {
  manual_seed(6);
  // [4, 6, 8] sliced along the last dim: dims 0 and 1 merge, the last does not.
  const Tensor a = make_normal({4, 6, 8}).slice(2, 0, 5);
  const Tensor b = make_normal({6, 5, 4}).permute({2, 0, 1});
  ASSERT_EQ(b.shape(), (Shape{4, 6, 5}));
  EXPECT_TRUE(all_close(values(kernels::binary(BinaryOp::mul, a, b)),
                        ref_broadcast(BinaryOp::mul, a, b, {4, 6, 5}), 0, 0));
  EXPECT_TRUE(all_close(values(kernels::unary(UnaryOp::silu, a)), ref_unary_all(UnaryOp::silu, a, 0),
                        1e-12, 1e-14));
  // Nine dims, four of them of size 1, transposed: more than kMaxDims until size-1 dims drop.
  const Tensor c = nine_dim_view(make_normal({2, 3, 2, 3, 2}));
  const Tensor y = kernels::unary(UnaryOp::neg, c);
  ASSERT_EQ(y.shape(), c.shape());
  EXPECT_TRUE(all_close(values(y.view({2, 3, 2, 3, 2})),
                        ref_unary_all(UnaryOp::neg, squeeze_nine(c), 0), 0, 0));
  // Ten contiguous dims: one dense run.
  const Tensor d = make_normal({2, 2, 2, 2, 2, 2, 2, 2, 2, 3});
  EXPECT_TRUE(all_close(values(kernels::binary(BinaryOp::add, d, d)),
                        ref_broadcast(BinaryOp::add, d, d, d.shape()), 0, 0));
}

// Views large enough for the CPU kernels to split them over threads, in chunks that start and
// end inside rows (the GPU runs the same shapes through its strided path).
TEST(ElementwiseCpu, LargeViewsSplitAcrossThreads) {
  manual_seed(12);
  const int saved = num_threads();
  set_num_threads(4);
  const Tensor a = make_normal({300, 401}).t();          // [401, 300], transposed
  const Tensor b = make_normal({300});                    // a broadcast row
  const Tensor c = make_normal({401, 1}).expand({401, 300});
  EXPECT_TRUE(all_close(values(kernels::binary(BinaryOp::add, a, b)),
                        ref_broadcast(BinaryOp::add, a, b, {401, 300}), 0, 0));
  EXPECT_TRUE(all_close(values(kernels::binary(BinaryOp::div, c, a)),
                        ref_broadcast(BinaryOp::div, c, a, {401, 300}), 1e-15, 0));
  EXPECT_TRUE(all_close(values(kernels::unary(UnaryOp::exp, a)), ref_unary_all(UnaryOp::exp, a, 0),
                        1e-12, 0));
  Tensor dst = make_normal({401, 600});
  Tensor view = dst.slice(1, 0, 600, 2);
  const std::vector<double> before = values(view);
  kernels::add_scaled_(view, a, 1.0);
  const std::vector<double> av = values(a);
  std::vector<double> want(before.size());
  for (size_t i = 0; i < want.size(); ++i) want[i] = before[i] + av[i];
  EXPECT_TRUE(all_close(values(view), want, 0, 0));
  set_num_threads(saved);
}
