// conv2d, max_pool2d, avg_pool2d on the CPU: f64 kernels against naive loop references (forward
// and backward), f32/f16/bf16 CPU paths, finite-difference gradchecks of the differentiable ops,
// error messages. References and cases: tests/ops/conv_pool_refs.h.
#include "tests/ops/conv_pool_refs.h"

using namespace pit;
using namespace pit::test::conv_pool;
using pit::test::expect_error_contains;

namespace {

// ---- CPU convolution --------------------------------------------------------------------------

TEST_F(ConvPoolTest, Conv2dCpuMatchesNaiveLoops) {
  for (const ConvCase& c : conv_cases()) {
    SCOPED_TRACE(describe(c.x, c.w, c.p));
    const Tensor x = randn(c.x, DType::f64), w = randn(c.w, DType::f64);
    const Tensor b = c.bias ? randn({c.w[0]}, DType::f64) : Tensor();
    const Tensor y = kernels::conv2d(x, w, b, c.p);
    const Tensor want = naive_conv(x, w, b, c.p);
    expect_close(y, want, 1e-13, "forward");

    const Tensor dy = randn(want.shape(), DType::f64);
    const kernels::Conv2dGrads got = kernels::conv2d_backward(dy, x, w, c.bias, c.p);
    const kernels::Conv2dGrads ref = naive_conv_backward(dy, x, w, c.p);
    expect_close(got.dx, ref.dx, 1e-13, "dx");
    expect_close(got.dweight, ref.dweight, 1e-13, "dweight");
    if (c.bias) {
      expect_close(got.dbias, ref.dbias, 1e-13, "dbias");
    } else {
      EXPECT_FALSE(got.dbias.defined());
    }
  }
}

TEST_F(ConvPoolTest, Conv2dCpuSeveralIm2colChunks) {
  // 80 channels x 3x3 x 64x64 outputs: ~2.9M col entries per image, so the 2^23-element budget
  // splits the 3 images into chunks of 2 and 1.
  const kernels::Conv2dParams p = conv_params(1, 1, 1, 1, 1, 1);
  const Tensor x = randn({3, 80, 64, 64}, DType::f64), w = randn({2, 80, 3, 3}, DType::f64);
  const Tensor b = randn({2}, DType::f64);
  const Tensor want = naive_conv(x, w, b, p);
  expect_close(kernels::conv2d(x, w, b, p), want, 1e-13, "forward");
  const Tensor dy = randn(want.shape(), DType::f64);
  const kernels::Conv2dGrads got = kernels::conv2d_backward(dy, x, w, true, p);
  const kernels::Conv2dGrads ref = naive_conv_backward(dy, x, w, p);
  expect_close(got.dx, ref.dx, 1e-13, "dx");
  expect_close(got.dweight, ref.dweight, 1e-13, "dweight");
  expect_close(got.dbias, ref.dbias, 1e-13, "dbias");
}

TEST_F(ConvPoolTest, Conv2dCpuReducedPrecision) {
  // f32 natively; f16/bf16 through f32 with one rounding. Inputs are representable in every
  // dtype, so the only errors are the arithmetic and the final rounding.
  const ConvCase c{{2, 3, 7, 5}, {4, 3, 3, 2}, true, conv_params(2, 1, 1, 1, 1, 2)};
  const std::pair<DType, double> dtypes[] = {{DType::f32, 1e-6}, {DType::f16, 2e-3}, {DType::bf16, 1e-2}};
  for (const auto& [dtype, tol] : dtypes) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tensor x = randn(c.x, dtype), w = randn(c.w, dtype), b = randn({c.w[0]}, dtype);
    const Tensor y = kernels::conv2d(x, w, b, c.p);
    EXPECT_EQ(y.dtype(), dtype);
    const Tensor want = naive_conv(f64(x), f64(w), f64(b), c.p);
    expect_close(y, want, tol, "forward");
    const Tensor dy = randn(want.shape(), dtype);
    const kernels::Conv2dGrads got = kernels::conv2d_backward(dy, x, w, true, c.p);
    const kernels::Conv2dGrads ref = naive_conv_backward(f64(dy), f64(x), f64(w), c.p);
    EXPECT_EQ(got.dx.dtype(), dtype);
    expect_close(got.dx, ref.dx, tol, "dx");
    expect_close(got.dweight, ref.dweight, tol, "dweight");
    expect_close(got.dbias, ref.dbias, tol, "dbias");
  }
}

TEST_F(ConvPoolTest, Conv2dNonContiguousOperands) {
  const kernels::Conv2dParams p = conv_params(1, 1, 1, 1, 1, 1);
  const Tensor xt = randn({2, 3, 5, 6}, DType::f64).transpose(2, 3);  // (2, 3, 6, 5) view
  const Tensor wt = randn({4, 3, 2, 3}, DType::f64).transpose(2, 3);  // (4, 3, 3, 2) view
  ASSERT_FALSE(xt.is_contiguous());
  ASSERT_FALSE(wt.is_contiguous());
  expect_close(kernels::conv2d(xt, wt, Tensor(), p), naive_conv(xt, wt, Tensor(), p), 1e-13,
               "transposed input");
}

TEST_F(ConvPoolTest, Conv2dEmptyDims) {
  const kernels::Conv2dParams p = conv_params(1, 1, 1, 1, 1, 1);
  // No batch: empty output and gradients.
  const Tensor y0 = kernels::conv2d(randn({0, 2, 4, 4}, DType::f64), randn({3, 2, 3, 3}, DType::f64),
                                    Tensor(), p);
  EXPECT_EQ(y0.shape(), (Shape{0, 3, 4, 4}));
  // No input channels: the output is the bias.
  const Tensor b = from_vector(std::vector<double>{1.5, -2.0, 0.25});
  const Tensor y1 = kernels::conv2d(randn({2, 0, 4, 4}, DType::f64), randn({3, 0, 3, 3}, DType::f64), b, p);
  ASSERT_EQ(y1.shape(), (Shape{2, 3, 4, 4}));
  const std::vector<double> v = values(y1);
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(v[i], values(b)[(i / 16) % 3]);
  const kernels::Conv2dGrads g =
      kernels::conv2d_backward(randn({2, 3, 4, 4}, DType::f64), randn({2, 0, 4, 4}, DType::f64),
                               randn({3, 0, 3, 3}, DType::f64), true, p);
  EXPECT_EQ(g.dx.shape(), (Shape{2, 0, 4, 4}));
  EXPECT_EQ(g.dweight.shape(), (Shape{3, 0, 3, 3}));
  EXPECT_EQ(g.dbias.shape(), (Shape{3}));
}

// ---- CPU pooling ------------------------------------------------------------------------------

TEST_F(ConvPoolTest, PoolingCpuMatchesNaiveLoops) {
  const Shape shape{2, 3, 7, 5};
  for (const kernels::Pool2dParams& p : pool_cases()) {
    SCOPED_TRACE(describe_pool(shape, p));
    for (const bool ties : {false, true}) {
      SCOPED_TRACE(ties ? "with ties" : "random");
      const Tensor x = ties ? with_ties(shape) : randn(shape, DType::f64);
      const NaivePool m0 = naive_pool(x, p, true);
      const Tensor dy = randn(m0.y.shape(), DType::f64);
      const NaivePool m = naive_pool(x, p, true, dy);
      const kernels::MaxPoolResult r = kernels::max_pool2d(x, p);
      EXPECT_EQ(values(r.y), values(m.y));
      EXPECT_EQ(r.indices.to_vector<int64_t>(), m.indices.to_vector<int64_t>());
      expect_close(kernels::max_pool2d_backward(dy, r.indices, shape), m.dx, 1e-14, "max backward");

      const NaivePool a = naive_pool(x, p, false, dy);
      expect_close(kernels::avg_pool2d(x, p), a.y, 1e-14, "avg forward");
      expect_close(kernels::avg_pool2d_backward(dy, shape, p), a.dx, 1e-14, "avg backward");
    }
  }
}

TEST_F(ConvPoolTest, MaxPoolTiesPickTheFirstMaximum) {
  // A constant plane: every window's maximum is its first in-bounds element (row-major).
  const Tensor x = full({1, 1, 4, 4}, 2.0, DType::f64);
  const kernels::MaxPoolResult r = kernels::max_pool2d(x, pool_params(3, 3, 1, 1, 1, 1));
  const std::vector<int64_t> want{0, 0, 1, 2, 0, 0, 1, 2, 4, 4, 5, 6, 8, 8, 9, 10};
  EXPECT_EQ(r.indices.to_vector<int64_t>(), want);
  // The gradient of overlapping windows with the same argmax adds up there.
  const Tensor dx = kernels::max_pool2d_backward(ones({1, 1, 4, 4}, DType::f64), r.indices, x.shape());
  const std::vector<double> g = values(dx);
  EXPECT_EQ(g[0], 4.0);
  EXPECT_EQ(g[1], 2.0);
  EXPECT_EQ(g[3], 0.0);
  EXPECT_EQ(std::accumulate(g.begin(), g.end(), 0.0), 16.0);
}

TEST_F(ConvPoolTest, PoolingCpuReducedPrecision) {
  const Shape shape{2, 3, 9, 8};
  const kernels::Pool2dParams p = pool_params(3, 3, 2, 2, 1, 1);
  for (const DType dtype : {DType::f32, DType::f16, DType::bf16}) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tensor x = randn(shape, dtype);
    const kernels::MaxPoolResult r = kernels::max_pool2d(x, p);
    const NaivePool m = naive_pool(f64(x), p, true);
    EXPECT_EQ(values(r.y), values(m.y));
    EXPECT_EQ(r.indices.to_vector<int64_t>(), m.indices.to_vector<int64_t>());
    const double tol = dtype == DType::f32 ? 1e-6 : dtype == DType::f16 ? 1e-3 : 8e-3;
    expect_close(kernels::avg_pool2d(x, p), naive_pool(f64(x), p, false).y, tol, "avg");
  }
}

// ---- differentiable ops: gradcheck ------------------------------------------------------------

void expect_gradcheck(const std::function<Variable(const std::vector<Variable>&)>& fn,
                      const std::vector<Tensor>& inputs) {
  const GradcheckResult r = gradcheck(fn, inputs);
  EXPECT_TRUE(r.ok) << r.report;
}

TEST_F(ConvPoolTest, Conv2dGradcheck) {
  const Tensor x = randn({2, 3, 7, 5}, DType::f64), w = randn({4, 3, 3, 2}, DType::f64);
  const Tensor b = randn({4}, DType::f64);
  struct Setting {
    int64_t stride, padding, dilation;
  };
  for (const Setting s : {Setting{1, 0, 1}, Setting{2, 0, 1}, Setting{1, 1, 1}, Setting{1, 0, 2},
                          Setting{2, 1, 2}}) {
    SCOPED_TRACE("stride " + std::to_string(s.stride) + " padding " + std::to_string(s.padding) +
                 " dilation " + std::to_string(s.dilation));
    expect_gradcheck(
        [&](const auto& v) { return ops::conv2d(v[0], v[1], v[2], s.stride, s.padding, s.dilation); },
        {x, w, b});
    expect_gradcheck(
        [&](const auto& v) { return ops::conv2d(v[0], v[1], Variable(), s.stride, s.padding, s.dilation); },
        {x, w});
  }
  // 1x1 (the direct path without im2col).
  expect_gradcheck([](const auto& v) { return ops::conv2d(v[0], v[1], v[2]); },
                   {randn({2, 3, 4, 5}, DType::f64), randn({2, 3, 1, 1}, DType::f64), randn({2}, DType::f64)});
}

TEST_F(ConvPoolTest, PoolingGradcheck) {
  const Shape shape{2, 2, 7, 6};
  struct Setting {
    int64_t kernel, stride, padding;
  };
  for (const Setting s : {Setting{2, -1, 0}, Setting{3, 2, 1}, Setting{3, 1, 1}, Setting{2, 3, 1}}) {
    SCOPED_TRACE("kernel " + std::to_string(s.kernel) + " stride " + std::to_string(s.stride) +
                 " padding " + std::to_string(s.padding));
    expect_gradcheck([&](const auto& v) { return ops::max_pool2d(v[0], s.kernel, s.stride, s.padding); },
                     {distinct64(shape)});
    expect_gradcheck([&](const auto& v) { return ops::avg_pool2d(v[0], s.kernel, s.stride, s.padding); },
                     {randn(shape, DType::f64)});
  }
}

TEST_F(ConvPoolTest, OpsComputeOnlyNeededGradients) {
  // The input needs no gradient (a first layer): only the weight and bias get one.
  const Variable x(randn({2, 3, 6, 6}, DType::f64));
  const Variable w(randn({4, 3, 3, 3}, DType::f64), true), b(randn({4}, DType::f64), true);
  const Variable y = ops::conv2d(x, w, b, 1, 1);
  const Tensor dy = randn(y.shape(), DType::f64);
  y.backward(dy);
  const kernels::Conv2dParams p = conv_params(1, 1, 1, 1, 1, 1);
  const kernels::Conv2dGrads ref = naive_conv_backward(dy, x.data(), w.data(), p);
  EXPECT_FALSE(x.grad().defined());
  expect_close(w.grad(), ref.dweight, 1e-13, "dweight");
  expect_close(b.grad(), ref.dbias, 1e-13, "dbias");
  // Only the bias needs one.
  const Variable w2(randn({4, 3, 3, 3}, DType::f64)), b2(randn({4}, DType::f64), true);
  ops::conv2d(x, w2, b2, 1, 1).backward(dy);
  expect_close(b2.grad(), ref.dbias, 1e-13, "dbias only");
  // Default pooling stride is the kernel.
  EXPECT_EQ(ops::max_pool2d(x, 2).shape(), (Shape{2, 3, 3, 3}));
  EXPECT_EQ(ops::avg_pool2d(x, 4).shape(), (Shape{2, 3, 1, 1}));
  EXPECT_EQ(ops::avg_pool2d(x, 3, 1, 1).shape(), (Shape{2, 3, 6, 6}));
}

// ---- errors -----------------------------------------------------------------------------------

TEST_F(ConvPoolTest, ClearErrors) {
  const Tensor x = randn({2, 3, 7, 5}), w = randn({4, 3, 3, 2});
  const kernels::Conv2dParams p;
  expect_error_contains([&] { kernels::conv2d(randn({3, 7, 5}), w, Tensor(), p); }, "must be 4-D (N, C, H, W)");
  expect_error_contains([&] { kernels::conv2d(x, randn({4, 3, 3}), Tensor(), p); }, "the weight must be 4-D");
  expect_error_contains([&] { kernels::conv2d(x, randn({4, 2, 3, 2}), Tensor(), p); }, "has 3 channels");
  expect_error_contains([&] { kernels::conv2d(x, randn({4, 3, 9, 2}), Tensor(), p); },
                        "larger than the padded input");
  expect_error_contains([&] { kernels::conv2d(x, w, Tensor(), conv_params(1, 1, 0, 0, 4, 1)); },
                        "larger than the padded input");
  expect_error_contains([&] { kernels::conv2d(x, w, Tensor(), conv_params(0, 1, 0, 0, 1, 1)); },
                        "stride must be positive");
  expect_error_contains([&] { kernels::conv2d(x, w, Tensor(), conv_params(1, 1, -1, 0, 1, 1)); },
                        "padding must be non-negative");
  expect_error_contains([&] { kernels::conv2d(x, w, Tensor(), conv_params(1, 1, 0, 0, 0, 1)); },
                        "dilation must be positive");
  expect_error_contains([&] { kernels::conv2d(x, w, randn({3}), p); }, "the bias must be (4)");
  expect_error_contains([&] { kernels::conv2d(x, w.to(DType::f64), Tensor(), p); }, "dtype");
  expect_error_contains([&] { kernels::conv2d(x.to(DType::i64), w, Tensor(), p); }, "not supported");
  expect_error_contains([&] { kernels::conv2d_backward(randn({2, 4, 5, 3}), x, w, false, p); },
                        "grad_y has shape [2, 4, 5, 3]");
  expect_error_contains([&] { ops::conv2d(Variable(x), Variable(w), Variable(), 1, 0, 0); },
                        "dilation must be positive");

  expect_error_contains([&] { kernels::max_pool2d(randn({3, 7, 5}), pool_params(2, 2, 2, 2, 0, 0)); },
                        "must be 4-D");
  expect_error_contains([&] { kernels::max_pool2d(x, pool_params(2, 2, 0, 2, 0, 0)); }, "stride must be positive");
  expect_error_contains([&] { kernels::max_pool2d(x, pool_params(2, 2, 2, 2, 2, 0)); }, "at most half the kernel");
  expect_error_contains([&] { kernels::avg_pool2d(x, pool_params(6, 6, 1, 1, 0, 0)); },
                        "larger than the padded input");
  expect_error_contains([&] { kernels::avg_pool2d(x, pool_params(0, 2, 1, 1, 0, 0)); }, "kernel size must be positive");
  const kernels::MaxPoolResult r = kernels::max_pool2d(x, pool_params(2, 2, 2, 2, 0, 0));
  expect_error_contains([&] { kernels::max_pool2d_backward(r.y, r.indices.to(DType::i32), x.shape()); }, "i64");
  expect_error_contains([&] { kernels::max_pool2d_backward(r.y, r.indices, {2, 4, 7, 5}); },
                        "does not belong to an input");
  expect_error_contains([&] { kernels::avg_pool2d_backward(r.y, x.shape(), pool_params(3, 3, 1, 1, 0, 0)); },
                        "grad_y has shape");
  expect_error_contains([&] { ops::max_pool2d(Variable(x), 2, 0); }, "stride must be positive");
}

}  // namespace
