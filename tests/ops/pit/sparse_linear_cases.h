#pragma once
// sparse_linear over a compact weight (ops/pit/compact.h) against dense autograd of
// linear(x, W * mask, b): the value, dx, db, the compact gradient of the values and the dense
// weight gradient RigL asks for; every micro-tile kind (K lists of 16/32/128 rows, blocks of
// 16/32/64, element masks covered by 32x1 tiles), ragged shapes, empty / partial / full patterns,
// on the PIT kernels and on the dense path (compact_gather); each also with the ReLU fused
// (SparseLinearOptions::relu), against relu of the dense reference.
// The layout is made once: forward and backward run no detection. Run on the CPU
// (sparse_linear_test.cpp) and on CUDA (sparse_linear_cuda_test.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>

#include "ops/functional.h"
#include "ops/kernels.h"
#include "ops/pit/compact.h"
#include "ops/pit/detect.h"
#include "ops/pit/pattern.h"
#include "ops/pit/pit_ops.h"
#include "tests/ops/check.h"
#include "tests/ops/pit/gemm_cases.h"
#include "tests/ops/pit/sparse_data.h"

namespace pit::test {

struct CompactCase {
  sparse::MicroTile tile;
  bool elements;  // an element mask covered by the tiles
};
inline const CompactCase kCompactCases[] = {{{16, 1}, false},  {{32, 1}, false},  {{128, 1}, false}, {{16, 16}, false},
                                            {{32, 32}, false}, {{64, 64}, false}, {{32, 1}, true}};

// A 0/1 mask [rows, cols] of the case's granularity at about `density`.
inline Tensor compact_case_mask(const CompactCase& c, int64_t rows, int64_t cols, double density, uint64_t seed,
                                Device dev) {
  const int64_t tr = c.elements ? 1 : c.tile.rows, tc = c.elements ? 1 : c.tile.cols;
  return sparse_tensor(rows, cols, tr, tc, density, seed, DType::f32, dev, /*inner_zero=*/0.0).to(DType::boolean);
}

// 1 where t > 0, else 0: t's dtype and device.
inline Tensor positive(const Tensor& t) {
  return kernels::unary_backward(UnaryOp::relu, full(t.shape(), 1.0, t.dtype(), t.device()), t, t);
}

// y's ReLU pattern against an independent pre-activation `pre` (dense autograd's): y > 0 exactly
// where pre > 0, except where |pre| is within `tol` of 0 at the tensor's scale (there the two
// computations may round to either side of the kink). The references below then take the ReLU
// where y > 0, which this check has tied to the pre-activation: a wrong 0 in y (or a wrong
// positive) fails here rather than being copied into the reference.
inline void expect_relu_pattern(const Tensor& y, const Tensor& pre, double tol, const std::string& what) {
  const std::vector<double> yv = values(y), pv = values(pre);
  ASSERT_EQ(yv.size(), pv.size()) << what;
  double scale = 1;
  for (const double v : pv) scale = std::max(scale, std::abs(v));
  int64_t bad = 0;
  size_t first = 0;
  for (size_t i = 0; i < yv.size(); ++i)
    if (!(std::abs(pv[i]) <= tol * scale) && (yv[i] > 0) != (pv[i] > 0) && bad++ == 0) first = i;
  EXPECT_EQ(bad, 0) << what << ": " << bad << " ReLU outputs on the wrong side of 0, the first at flat index " << first
                    << " (got " << yv[first] << ", pre-activation " << pv[first] << ")";
}

inline void run_sparse_linear_cases(Device dev, const std::vector<DType>& dtypes) {
  uint64_t seed = 12000;
  for (const DType dt : dtypes)
    for (const CompactCase& c : kCompactCases)
      for (const double d : {0.0, 0.3, 1.0, -1.0})  // -1: skewed, the first unit row dense, the rest at 2%
      for (const bool dense : {false, true})
      for (const bool relu : {false, true})
      for (const bool aligned : {true, false}) {
        // 64 x 64 blocks on rows of 16 bytes (in a multiple of 8): on CUDA, the kernels that read x
        // and dy as they lie (block_linear, block_sampled); and ragged and odd (in 45 < 64, out 100:
        // the transposing way). The other units ragged and odd.
        const bool b64 = c.tile.cols == 64;
        if (!b64 && !aligned) continue;
        const int64_t out = b64 ? (aligned ? 200 : 100) : 70, in = b64 && aligned ? 136 : 45;
        const std::string what = std::string("sparse_linear ") + c.tile.str() + (c.elements ? " covering elements " : " ") +
                                 dtype_name(dt) + " density " + (d < 0 ? std::string("skewed") : std::to_string(d)) +
                                 (dense ? " dense path" : "") +
                                 (relu ? " relu" : "") + " [" + std::to_string(out) + ", " + std::to_string(in) + "]";
        Tensor mask = compact_case_mask(c, out, in, d < 0 ? 0.02 : d, ++seed, dev);
        if (d < 0) mask.slice(0, 0, std::min(out, c.tile.rows)).fill_(1.0);
        const Tensor w = dense_random({out, in}, ++seed, dt, dev);
        const Tensor bias = dense_random({out}, ++seed, dt, dev);
        const Tensor x = dense_random({2, 37, in}, ++seed, dt, dev);
        const Tensor g = dense_random({2, 37, out}, ++seed, dt, dev);
        const sparse::CompactLayout layout = sparse::compact_layout(mask, c.tile, c.elements, dense ? 0.0 : 2.0);
        EXPECT_EQ(layout.dense_path(), dense) << what;
        const Tensor values = sparse::compact_values(layout, w, mask);
        ASSERT_EQ(values.shape(), layout.values_shape()) << what;
        EXPECT_EQ(layout.inside.defined(), c.elements) << what;
        expect_close(sparse::compact_to_dense(layout, values), sparse::apply_pattern(w, mask), 0.0, 0.0,
                     what + " to dense");

        const uint64_t calls = sparse::detection_calls();
        Variable xv(x, true), vv(values, true), bv(bias, true);
        const auto dense_grad = std::make_shared<Tensor>();
        Variable y = ops::sparse_linear(xv, vv, bv, layout, {.dense_weight_grad = dense_grad, .relu = relu});
        y.backward(g);
        EXPECT_EQ(sparse::detection_calls(), calls) << what << ": forward or backward ran a detection";

        Variable xr(x, true), wr(w, true), br(bias, true);
        Variable yr = ops::linear(xr, ops::mul(wr, Variable(mask.to(dt))), br);
        // The ReLU as the op took it: where y > 0 (a pre-activation within rounding of 0 may fall
        // on either side of the kink in the two computations, and the gradients would differ there),
        // once y's pattern is checked against dense autograd's pre-activation.
        if (relu) {
          expect_relu_pattern(y.data(), yr.data(), tol_for(dt), what + " relu pattern");
          yr = ops::mul(yr, Variable(positive(y.data())));
        }
        yr.backward(g);
        const double tol = tol_for(dt);
        expect_close(y.data(), yr.data(), tol, tol, what + " value");
        expect_close(xv.grad(), xr.grad(), tol, tol, what + " dx");
        expect_close(bv.grad(), br.grad(), tol, tol, what + " db");
        ASSERT_EQ(vv.grad().shape(), layout.values_shape()) << what << ": the gradient must be compact";
        expect_close(vv.grad(), sparse::compact_values(layout, wr.grad(), mask), tol, tol, what + " dvalues");
        const Tensor x2 = x.reshape({-1, in});
        const Tensor g2 = relu ? kernels::binary(BinaryOp::mul, g, positive(y.data())).reshape({-1, out}) : g.reshape({-1, out});
        ASSERT_TRUE(dense_grad->defined()) << what;
        expect_close(*dense_grad, ref_matmul(g2.t().contiguous(), x2), tol, tol, what + " dense dW");
        if (::testing::Test::HasFailure()) return;
      }
}

// No tokens: x [0, in] gives y [0, out] and gradients of zeros (the values', the bias's, x's of
// shape [0, in]), on the PIT kernels and on the dense path.
inline void run_sparse_linear_empty_batch(Device dev, DType dt) {
  uint64_t seed = 13000;
  for (const CompactCase& c : kCompactCases)
    for (const bool dense : {false, true}) {
      const int64_t out = 70, in = 45;
      const std::string what = std::string("sparse_linear, no tokens, ") + c.tile.str() + (dense ? " dense path" : "");
      const Tensor mask = compact_case_mask(c, out, in, 0.3, ++seed, dev);
      const sparse::CompactLayout layout = sparse::compact_layout(mask, c.tile, c.elements, dense ? 0.0 : 2.0);
      const Tensor values = sparse::compact_values(layout, dense_random({out, in}, ++seed, dt, dev), mask);
      Variable xv(dense_random({0, in}, ++seed, dt, dev), true), vv(values, true), bv(dense_random({out}, ++seed, dt, dev), true);
      const Variable y = ops::sparse_linear(xv, vv, bv, layout);
      ASSERT_EQ(y.shape(), Shape({0, out})) << what;
      y.backward(Tensor::empty({0, out}, dt, dev));
      ASSERT_EQ(xv.grad().shape(), Shape({0, in})) << what;
      for (const Tensor& g : {vv.grad(), bv.grad()}) {
        ASSERT_TRUE(g.defined()) << what;
        for (const double v : g.to(Device::cpu(), DType::f64).contiguous().to_vector<double>()) ASSERT_EQ(v, 0.0) << what;
      }
    }
}

}  // namespace pit::test
