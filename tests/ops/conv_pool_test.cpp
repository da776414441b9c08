// conv2d, max_pool2d, avg_pool2d: CPU f64 kernels against naive loop references (forward and
// backward), f32/f16/bf16 CPU paths, finite-difference gradchecks of the differentiable ops,
// error messages, and the CUDA path (cuDNN convolutions, pooling kernels) against the CPU on the
// same inputs.
//
// GPU tolerances, as max |got - want| <= tol * (1 + max |want|) per tensor (want: the CPU in f64
// on the very same, exactly widened, inputs): f32 1e-4 (cuDNN runs f32 with FMA math, no TF32;
// the slack covers Winograd/FFT algorithms and f32 accumulation over ~25k terms), f16 5e-3
// (output rounding 2^-11 plus f32 accumulation), bf16 2e-2 (rounding 2^-8). Max pooling is
// exact (values and indices); pooling sums have the f32 rounding of a few terms.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "autograd/gradcheck.h"
#include "core/random.h"
#include "ops/functional.h"
#include "ops/kernels.h"
#include "tests/gpu.h"

using namespace pit;

namespace {

std::vector<double> values(const Tensor& t) { return t.to(Device::cpu(), DType::f64).to_vector<double>(); }

Tensor f64(const Tensor& t) { return t.to(Device::cpu(), DType::f64); }

// max |got - want| <= tol * (1 + max |want|); reports the worst element.
void expect_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  ASSERT_TRUE(got.defined()) << what << ": undefined result";
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const std::vector<double> g = values(got), w = values(want);
  double scale = 0, worst = 0;
  size_t at = 0;
  for (double v : w) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < g.size(); ++i) {
    const double err = std::abs(g[i] - w[i]);
    if (std::isnan(err)) {
      worst = std::numeric_limits<double>::infinity();
      at = i;
      break;
    }
    if (err > worst) worst = err, at = i;
  }
  const double bound = tol * (1.0 + scale);
  EXPECT_TRUE(worst <= bound) << what << ": worst error " << worst << " at flat index " << at
                              << " (got " << (g.empty() ? 0.0 : g[at]) << ", want "
                              << (w.empty() ? 0.0 : w[at]) << "), bound " << bound;
}

template <typename F>
void expect_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error thrown; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message '" << e.what() << "' does not mention '" << needle << "'";
  }
}

kernels::Conv2dParams conv_params(int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,
                                  int64_t dw) {
  kernels::Conv2dParams p;
  p.stride_h = sh;
  p.stride_w = sw;
  p.pad_h = ph;
  p.pad_w = pw;
  p.dilation_h = dh;
  p.dilation_w = dw;
  return p;
}

kernels::Pool2dParams pool_params(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph,
                                  int64_t pw) {
  kernels::Pool2dParams p;
  p.kernel_h = kh;
  p.kernel_w = kw;
  p.stride_h = sh;
  p.stride_w = sw;
  p.pad_h = ph;
  p.pad_w = pw;
  return p;
}

std::string describe(const Shape& x, const Shape& w, const kernels::Conv2dParams& p) {
  return "x " + shape_str(x) + " w " + shape_str(w) + " stride (" + std::to_string(p.stride_h) +
         "," + std::to_string(p.stride_w) + ") pad (" + std::to_string(p.pad_h) + "," +
         std::to_string(p.pad_w) + ") dilation (" + std::to_string(p.dilation_h) + "," +
         std::to_string(p.dilation_w) + ")";
}

// ---- naive references (f64, plain loops) -------------------------------------------------------

struct ConvDims {
  int64_t n, c, h, w, co, kh, kw, ho, wo;
};

ConvDims conv_dims(const Shape& x, const Shape& w, const kernels::Conv2dParams& p) {
  ConvDims d{x[0], x[1], x[2], x[3], w[0], w[2], w[3], 0, 0};
  d.ho = (d.h + 2 * p.pad_h - p.dilation_h * (d.kh - 1) - 1) / p.stride_h + 1;
  d.wo = (d.w + 2 * p.pad_w - p.dilation_w * (d.kw - 1) - 1) / p.stride_w + 1;
  return d;
}

// The 7-loop definition: y[n, o, i, j] = b[o] + sum_{c, a, e} x[n, c, i s - p + a d, j s - p + e d]
// * w[o, c, a, e].
Tensor naive_conv(const Tensor& x, const Tensor& w, const Tensor& b, const kernels::Conv2dParams& p) {
  const ConvDims d = conv_dims(x.shape(), w.shape(), p);
  const std::vector<double> xv = values(x), wv = values(w);
  const std::vector<double> bv = b.defined() ? values(b) : std::vector<double>(d.co, 0.0);
  std::vector<double> y(static_cast<size_t>(d.n * d.co * d.ho * d.wo));
  for (int64_t n = 0; n < d.n; ++n)
    for (int64_t o = 0; o < d.co; ++o)
      for (int64_t i = 0; i < d.ho; ++i)
        for (int64_t j = 0; j < d.wo; ++j) {
          double acc = bv[o];
          for (int64_t c = 0; c < d.c; ++c)
            for (int64_t a = 0; a < d.kh; ++a)
              for (int64_t e = 0; e < d.kw; ++e) {
                const int64_t ih = i * p.stride_h - p.pad_h + a * p.dilation_h;
                const int64_t iw = j * p.stride_w - p.pad_w + e * p.dilation_w;
                if (ih < 0 || ih >= d.h || iw < 0 || iw >= d.w) continue;
                acc += xv[((n * d.c + c) * d.h + ih) * d.w + iw] * wv[((o * d.c + c) * d.kh + a) * d.kw + e];
              }
          y[((n * d.co + o) * d.ho + i) * d.wo + j] = acc;
        }
  return from_vector(y, {d.n, d.co, d.ho, d.wo});
}

// The same loops, scattering dy into dx and dw.
kernels::Conv2dGrads naive_conv_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                                         const kernels::Conv2dParams& p) {
  const ConvDims d = conv_dims(x.shape(), w.shape(), p);
  const std::vector<double> xv = values(x), wv = values(w), gv = values(dy);
  std::vector<double> dx(xv.size(), 0.0), dw(wv.size(), 0.0), db(static_cast<size_t>(d.co), 0.0);
  for (int64_t n = 0; n < d.n; ++n)
    for (int64_t o = 0; o < d.co; ++o)
      for (int64_t i = 0; i < d.ho; ++i)
        for (int64_t j = 0; j < d.wo; ++j) {
          const double g = gv[((n * d.co + o) * d.ho + i) * d.wo + j];
          db[o] += g;
          for (int64_t c = 0; c < d.c; ++c)
            for (int64_t a = 0; a < d.kh; ++a)
              for (int64_t e = 0; e < d.kw; ++e) {
                const int64_t ih = i * p.stride_h - p.pad_h + a * p.dilation_h;
                const int64_t iw = j * p.stride_w - p.pad_w + e * p.dilation_w;
                if (ih < 0 || ih >= d.h || iw < 0 || iw >= d.w) continue;
                const size_t xi = ((n * d.c + c) * d.h + ih) * d.w + iw;
                const size_t wi = ((o * d.c + c) * d.kh + a) * d.kw + e;
                dx[xi] += g * wv[wi];
                dw[wi] += g * xv[xi];
              }
        }
  return {from_vector(dx, x.shape()), from_vector(dw, w.shape()), from_vector(db, {d.co})};
}

struct NaivePool {
  Tensor y, indices, dx;  // dx: the backward of dy (if given)
};

// Max (first maximum in row-major window order) or average (divisor kh * kw) pooling, and the
// backward of `dy` by scattering.
NaivePool naive_pool(const Tensor& x, const kernels::Pool2dParams& p, bool max,
                     const Tensor& dy = Tensor()) {
  const Shape& s = x.shape();
  const int64_t planes = s[0] * s[1], h = s[2], w = s[3];
  const int64_t ho = (h + 2 * p.pad_h - p.kernel_h) / p.stride_h + 1;
  const int64_t wo = (w + 2 * p.pad_w - p.kernel_w) / p.stride_w + 1;
  const std::vector<double> xv = values(x);
  const std::vector<double> gv = dy.defined() ? values(dy) : std::vector<double>();
  std::vector<double> y(static_cast<size_t>(planes * ho * wo)), dx(xv.size(), 0.0);
  std::vector<int64_t> idx(y.size(), -1);
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t i = 0; i < ho; ++i)
      for (int64_t j = 0; j < wo; ++j) {
        const size_t o = static_cast<size_t>((pl * ho + i) * wo + j);
        double best = -std::numeric_limits<double>::infinity(), sum = 0;
        int64_t arg = -1;
        for (int64_t a = 0; a < p.kernel_h; ++a)
          for (int64_t e = 0; e < p.kernel_w; ++e) {
            const int64_t ih = i * p.stride_h - p.pad_h + a, iw = j * p.stride_w - p.pad_w + e;
            if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
            const double v = xv[static_cast<size_t>((pl * h + ih) * w + iw)];
            sum += v;
            if (arg < 0 || v > best) best = v, arg = ih * w + iw;
          }
        const double area = static_cast<double>(p.kernel_h * p.kernel_w);
        y[o] = max ? best : sum / area;
        idx[o] = arg;
        if (!gv.empty()) {
          if (max) {
            dx[static_cast<size_t>(pl * h * w + arg)] += gv[o];
          } else {
            for (int64_t a = 0; a < p.kernel_h; ++a)
              for (int64_t e = 0; e < p.kernel_w; ++e) {
                const int64_t ih = i * p.stride_h - p.pad_h + a, iw = j * p.stride_w - p.pad_w + e;
                if (ih >= 0 && ih < h && iw >= 0 && iw < w)
                  dx[static_cast<size_t>((pl * h + ih) * w + iw)] += gv[o] / area;
              }
          }
        }
      }
  NaivePool r;
  r.y = from_vector(y, {s[0], s[1], ho, wo});
  r.indices = from_vector(idx, {s[0], s[1], ho, wo});
  if (dy.defined()) r.dx = from_vector(dx, s);
  return r;
}

// Distinct values 0.1 apart in random order: max pooling has no ties, even under the finite
// differences of gradcheck.
Tensor distinct64(const Shape& shape) {
  const std::vector<double> keys = rand(shape, DType::f64).to_vector<double>();
  std::vector<size_t> order(keys.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return keys[a] < keys[b]; });
  std::vector<double> v(keys.size());
  for (size_t r = 0; r < order.size(); ++r) v[order[r]] = 0.1 * static_cast<double>(r) - 1.0;
  return from_vector(v, shape);
}

// Small integers: many ties inside every window.
Tensor with_ties(const Shape& shape, DType dtype = DType::f64, Device device = Device::cpu()) {
  std::vector<double> v = rand(shape, DType::f64).to_vector<double>();
  for (double& e : v) e = std::floor(e * 3.0);
  return from_vector(v, shape).to(device, dtype);
}

struct ConvCase {
  Shape x, w;
  bool bias;
  kernels::Conv2dParams p;
};

// Shapes and parameters that exercise every code path: ragged sizes, asymmetric stride /
// padding / dilation, 1x1 (direct, and strided so not direct), kernel as large as the padded
// input, one output row.
std::vector<ConvCase> conv_cases() {
  return {
      {{2, 3, 7, 5}, {4, 3, 3, 2}, true, conv_params(1, 1, 0, 0, 1, 1)},
      {{2, 3, 7, 5}, {4, 3, 3, 2}, false, conv_params(2, 1, 1, 0, 1, 1)},
      {{2, 3, 7, 5}, {4, 3, 3, 2}, true, conv_params(1, 2, 1, 2, 2, 1)},
      {{1, 2, 9, 8}, {3, 2, 3, 3}, true, conv_params(2, 2, 1, 1, 2, 2)},
      {{3, 4, 6, 6}, {5, 4, 1, 1}, true, conv_params(1, 1, 0, 0, 1, 1)},   // direct 1x1
      {{3, 4, 6, 7}, {5, 4, 1, 1}, false, conv_params(2, 3, 1, 0, 1, 1)},  // strided, padded 1x1
      {{2, 1, 4, 3}, {2, 1, 6, 5}, true, conv_params(1, 1, 1, 1, 1, 1)},   // kernel = padded input
      {{1, 3, 5, 11}, {2, 3, 5, 3}, true, conv_params(3, 4, 0, 1, 1, 3)},  // one output row
      {{2, 2, 8, 8}, {3, 2, 2, 2}, false, conv_params(3, 3, 2, 2, 3, 3)},  // pad > kernel
  };
}

class ConvPoolTest : public ::testing::Test {
 protected:
  void SetUp() override { manual_seed(7); }
};

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

std::vector<kernels::Pool2dParams> pool_cases() {
  return {
      pool_params(2, 2, 2, 2, 0, 0),  // the classic, non-overlapping
      pool_params(3, 3, 2, 2, 1, 1),  // overlapping, padded
      pool_params(3, 2, 1, 1, 0, 1),  // stride 1: heavy overlap, asymmetric
      pool_params(2, 3, 3, 2, 1, 0),  // stride > kernel in h: gaps
      pool_params(4, 5, 2, 3, 2, 2),  // padding of half the kernel
      pool_params(7, 5, 1, 1, 0, 0),  // the whole plane: one output
  };
}

std::string describe_pool(const Shape& x, const kernels::Pool2dParams& p) {
  return "x " + shape_str(x) + " kernel (" + std::to_string(p.kernel_h) + "," +
         std::to_string(p.kernel_w) + ") stride (" + std::to_string(p.stride_h) + "," +
         std::to_string(p.stride_w) + ") pad (" + std::to_string(p.pad_h) + "," +
         std::to_string(p.pad_w) + ")";
}

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
  expect_error([&] { kernels::conv2d(randn({3, 7, 5}), w, Tensor(), p); }, "must be 4-D (N, C, H, W)");
  expect_error([&] { kernels::conv2d(x, randn({4, 3, 3}), Tensor(), p); }, "the weight must be 4-D");
  expect_error([&] { kernels::conv2d(x, randn({4, 2, 3, 2}), Tensor(), p); }, "has 3 channels");
  expect_error([&] { kernels::conv2d(x, randn({4, 3, 9, 2}), Tensor(), p); },
               "larger than the padded input");
  expect_error([&] { kernels::conv2d(x, w, Tensor(), conv_params(1, 1, 0, 0, 4, 1)); },
               "larger than the padded input");
  expect_error([&] { kernels::conv2d(x, w, Tensor(), conv_params(0, 1, 0, 0, 1, 1)); },
               "stride must be positive");
  expect_error([&] { kernels::conv2d(x, w, Tensor(), conv_params(1, 1, -1, 0, 1, 1)); },
               "padding must be non-negative");
  expect_error([&] { kernels::conv2d(x, w, Tensor(), conv_params(1, 1, 0, 0, 0, 1)); },
               "dilation must be positive");
  expect_error([&] { kernels::conv2d(x, w, randn({3}), p); }, "the bias must be (4)");
  expect_error([&] { kernels::conv2d(x, w.to(DType::f64), Tensor(), p); }, "dtype");
  expect_error([&] { kernels::conv2d(x.to(DType::i64), w, Tensor(), p); }, "not supported");
  expect_error([&] { kernels::conv2d_backward(randn({2, 4, 5, 3}), x, w, false, p); },
               "grad_y has shape [2, 4, 5, 3]");
  expect_error([&] { ops::conv2d(Variable(x), Variable(w), Variable(), 1, 0, 0); },
               "dilation must be positive");

  expect_error([&] { kernels::max_pool2d(randn({3, 7, 5}), pool_params(2, 2, 2, 2, 0, 0)); },
               "must be 4-D");
  expect_error([&] { kernels::max_pool2d(x, pool_params(2, 2, 0, 2, 0, 0)); }, "stride must be positive");
  expect_error([&] { kernels::max_pool2d(x, pool_params(2, 2, 2, 2, 2, 0)); }, "at most half the kernel");
  expect_error([&] { kernels::avg_pool2d(x, pool_params(6, 6, 1, 1, 0, 0)); },
               "larger than the padded input");
  expect_error([&] { kernels::avg_pool2d(x, pool_params(0, 2, 1, 1, 0, 0)); }, "kernel size must be positive");
  const kernels::MaxPoolResult r = kernels::max_pool2d(x, pool_params(2, 2, 2, 2, 0, 0));
  expect_error([&] { kernels::max_pool2d_backward(r.y, r.indices.to(DType::i32), x.shape()); }, "i64");
  expect_error([&] { kernels::max_pool2d_backward(r.y, r.indices, {2, 4, 7, 5}); },
               "does not belong to an input");
  expect_error([&] { kernels::avg_pool2d_backward(r.y, x.shape(), pool_params(3, 3, 1, 1, 0, 0)); },
               "grad_y has shape");
  expect_error([&] { ops::max_pool2d(Variable(x), 2, 0); }, "stride must be positive");
}

// ---- CUDA -------------------------------------------------------------------------------------

double gpu_tol(DType dtype) {
  switch (dtype) {
    case DType::f32: return 1e-4;
    case DType::f16: return 5e-3;
    case DType::bf16: return 2e-2;
    default: return 1e-10;  // f64
  }
}

const DType kGpuDtypes[] = {DType::f32, DType::bf16, DType::f16, DType::f64};

// Forward and every gradient on the GPU against the CPU in f64 on the same inputs.
void check_conv_gpu(const Shape& xs, const Shape& ws, bool bias, const kernels::Conv2dParams& p,
                    DType dtype) {
  SCOPED_TRACE(describe(xs, ws, p) + " " + dtype_name(dtype) + (bias ? " bias" : ""));
  const Device gpu = Device::cuda();
  const Tensor x = randn(xs, dtype, gpu), w = randn(ws, dtype, gpu);
  const Tensor b = bias ? randn({ws[0]}, dtype, gpu) : Tensor();
  const double tol = gpu_tol(dtype);
  const Tensor y = kernels::conv2d(x, w, b, p);
  ASSERT_TRUE(y.is_cuda());
  ASSERT_EQ(y.dtype(), dtype);
  expect_close(y, kernels::conv2d(f64(x), f64(w), bias ? f64(b) : Tensor(), p), tol, "forward");
  const Tensor dy = randn(y.shape(), dtype, gpu);
  const kernels::Conv2dGrads got = kernels::conv2d_backward(dy, x, w, bias, p);
  const kernels::Conv2dGrads ref = kernels::conv2d_backward(f64(dy), f64(x), f64(w), bias, p);
  ASSERT_TRUE(got.dx.is_cuda() && got.dweight.is_cuda());
  expect_close(got.dx, ref.dx, tol, "dx");
  expect_close(got.dweight, ref.dweight, tol, "dweight");
  if (bias) expect_close(got.dbias, ref.dbias, tol, "dbias");
}

TEST_F(ConvPoolTest, CudaConv2dMatchesCpu) {
  PIT_REQUIRE_CUDA();
  for (const DType dtype : kGpuDtypes)
    for (const ConvCase& c : conv_cases()) check_conv_gpu(c.x, c.w, c.bias, c.p, dtype);
}

TEST_F(ConvPoolTest, CudaConv2dMisalignedAndStridedOperands) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  const kernels::Conv2dParams p = conv_params(1, 1, 1, 1, 1, 1);
  for (const DType dtype : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(dtype_name(dtype));
    // Contiguous views one element into their storage, and a transposed (strided) input.
    const Tensor x = randn({2 * 8 * 9 * 10 + 1}, dtype, gpu).slice(0, 1, 2 * 8 * 9 * 10 + 1).view({2, 8, 9, 10});
    const Tensor w = randn({4 * 8 * 3 * 3 + 1}, dtype, gpu).slice(0, 1, 4 * 8 * 3 * 3 + 1).view({4, 8, 3, 3});
    const Tensor xt = randn({2, 8, 10, 9}, dtype, gpu).transpose(2, 3);
    const double tol = gpu_tol(dtype);
    for (const Tensor& in : {x, xt}) {
      expect_close(kernels::conv2d(in, w, Tensor(), p), kernels::conv2d(f64(in), f64(w), Tensor(), p),
                   tol, "forward");
      const Tensor dy = randn({2 * 4 * 9 * 10 + 1}, dtype, gpu).slice(0, 1, 2 * 4 * 9 * 10 + 1).view({2, 4, 9, 10});
      const kernels::Conv2dGrads got = kernels::conv2d_backward(dy, in, w, false, p);
      const kernels::Conv2dGrads ref = kernels::conv2d_backward(f64(dy), f64(in), f64(w), false, p);
      expect_close(got.dx, ref.dx, tol, "dx");
      expect_close(got.dweight, ref.dweight, tol, "dweight");
    }
  }
}

TEST_F(ConvPoolTest, CudaConv2dCnnSized) {
  PIT_REQUIRE_CUDA();
  for (const DType dtype : kGpuDtypes) {
    check_conv_gpu({32, 32, 28, 28}, {32, 32, 3, 3}, true, conv_params(1, 1, 1, 1, 1, 1), dtype);
    check_conv_gpu({32, 32, 28, 28}, {64, 32, 3, 3}, true, conv_params(2, 2, 1, 1, 1, 1), dtype);
    check_conv_gpu({32, 3, 28, 28}, {32, 3, 5, 5}, false, conv_params(1, 1, 2, 2, 1, 1), dtype);
    check_conv_gpu({32, 32, 14, 14}, {16, 32, 1, 1}, true, conv_params(1, 1, 0, 0, 1, 1), dtype);
  }
}

TEST_F(ConvPoolTest, CudaConv2dDeterministic) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  const kernels::Conv2dParams p = conv_params(1, 1, 1, 1, 1, 1);
  for (const DType dtype : {DType::f32, DType::bf16}) {
    const Tensor x = randn({32, 32, 28, 28}, dtype, gpu), w = randn({32, 32, 3, 3}, dtype, gpu);
    const Tensor dy = randn({32, 32, 28, 28}, dtype, gpu);
    EXPECT_EQ(values(kernels::conv2d(x, w, Tensor(), p)), values(kernels::conv2d(x, w, Tensor(), p)));
    const kernels::Conv2dGrads a = kernels::conv2d_backward(dy, x, w, false, p);
    const kernels::Conv2dGrads b = kernels::conv2d_backward(dy, x, w, false, p);
    EXPECT_EQ(values(a.dx), values(b.dx)) << dtype_name(dtype);
    EXPECT_EQ(values(a.dweight), values(b.dweight)) << dtype_name(dtype);
  }
}

TEST_F(ConvPoolTest, CudaPoolingMatchesCpu) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  for (const DType dtype : kGpuDtypes)
    for (const Shape& shape : {Shape{2, 3, 7, 5}, Shape{32, 32, 28, 28}})
      for (const kernels::Pool2dParams& p : pool_cases()) {
        if (p.kernel_h > shape[2] + 2 * p.pad_h || p.kernel_w > shape[3] + 2 * p.pad_w) continue;
        SCOPED_TRACE(describe_pool(shape, p) + " " + dtype_name(dtype));
        for (const bool ties : {false, true}) {
          SCOPED_TRACE(ties ? "with ties" : "random");
          const Tensor x = ties ? with_ties(shape, dtype, gpu) : randn(shape, dtype, gpu);
          const Tensor xc = x.to(Device::cpu());  // same dtype: the CPU kernels run it natively
          const kernels::MaxPoolResult r = kernels::max_pool2d(x, p);
          const kernels::MaxPoolResult rc = kernels::max_pool2d(xc, p);
          ASSERT_TRUE(r.y.is_cuda() && r.indices.is_cuda());
          EXPECT_EQ(values(r.y), values(rc.y));
          EXPECT_EQ(r.indices.to_vector<int64_t>(), rc.indices.to_vector<int64_t>());
          const Tensor dy = randn(r.y.shape(), dtype, gpu);
          const double tol = gpu_tol(dtype);
          expect_close(kernels::max_pool2d_backward(dy, r.indices, shape),
                       kernels::max_pool2d_backward(f64(dy), rc.indices, shape), tol, "max backward");
          expect_close(kernels::avg_pool2d(x, p), kernels::avg_pool2d(f64(x), p), tol, "avg forward");
          expect_close(kernels::avg_pool2d_backward(dy, shape, p),
                       kernels::avg_pool2d_backward(f64(dy), shape, p), tol, "avg backward");
        }
      }
}

TEST_F(ConvPoolTest, CudaOpsEndToEnd) {
  PIT_REQUIRE_CUDA();
  // conv -> max pool -> conv -> avg pool through autograd on the GPU, against the same graph on
  // the CPU in f64. f32 and f64 only: with bf16 the rounded conv outputs would tie or swap inside
  // pooling windows against the exact f64 ones, moving max-pool gradients (the single-op tests
  // cover bf16/f16 on identical inputs).
  for (const DType dtype : {DType::f32, DType::f64}) {
    SCOPED_TRACE(dtype_name(dtype));
    const Device gpu = Device::cuda();
    const std::vector<Tensor> init{randn({4, 3, 14, 13}, dtype, gpu), randn({8, 3, 3, 3}, dtype, gpu),
                                   randn({8}, dtype, gpu), randn({6, 8, 3, 2}, dtype, gpu)};
    auto run = [&](const std::vector<Tensor>& ts) {
      std::vector<Variable> v;
      for (const Tensor& t : ts) v.emplace_back(t, true);
      Variable h = ops::conv2d(v[0], v[1], v[2], 1, 1);
      h = ops::max_pool2d(h, 3, 2, 1);
      h = ops::conv2d(h, v[3], Variable(), 1, 1, 2);
      h = ops::avg_pool2d(h, 2);
      h.backward(ones(h.shape(), h.dtype(), h.device()));
      std::vector<Tensor> out{h.data()};
      for (const Variable& e : v) out.push_back(e.grad());
      return out;
    };
    std::vector<Tensor> cpu_in;
    for (const Tensor& t : init) cpu_in.push_back(f64(t));
    const std::vector<Tensor> got = run(init), want = run(cpu_in);
    // Two layers: twice the single-op tolerance.
    const double tol = 2 * gpu_tol(dtype);
    const char* names[] = {"output", "dx", "dw1", "db1", "dw2"};
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(got[i].is_cuda()) << names[i];
      expect_close(got[i], want[i], tol, names[i]);
    }
  }
}

// Zero-size inputs on the GPU, as the CPU's Conv2dEmptyDims: a batch of none (N = 0) gives empty
// outputs and dx, and dweight / dbias zero (sums over no images); no input channels (Cin = 0) a
// bias-filled output and dbias the sums of dy. The op must answer both before cuDNN, whose
// descriptors take no zero dim. Pooling an empty batch: empty outputs, indices and gradients.
TEST(ConvPoolCuda, EmptyBatchAndChannelsMatchCpu) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  const kernels::Conv2dParams p = conv_params(1, 1, 1, 1, 1, 1);
  const kernels::Pool2dParams pp = pool_params(3, 3, 2, 2, 1, 1);
  for (const DType dtype : kGpuDtypes) {
    SCOPED_TRACE(dtype_name(dtype));
    const auto same = [&](const Tensor& got, const Tensor& want, const std::string& what) {
      ASSERT_TRUE(got.defined()) << what;
      EXPECT_TRUE(got.is_cuda()) << what;
      EXPECT_EQ(got.dtype(), dtype) << what;
      expect_close(got, want, gpu_tol(dtype), what);  // shape, and values where there are any
    };
    for (const auto& [xs, ws] : {std::pair<Shape, Shape>{{0, 2, 4, 4}, {3, 2, 3, 3}}, {{2, 0, 4, 4}, {3, 0, 3, 3}}}) {
      const std::string what = "conv2d of " + shape_str(xs) + " ";
      const Tensor x = randn(xs, dtype, gpu), w = randn(ws, dtype, gpu), b = randn({3}, dtype, gpu);
      const Tensor y = kernels::conv2d(x, w, b, p);
      same(y, kernels::conv2d(f64(x), f64(w), f64(b), p), what + "y");
      const Tensor dy = randn(y.shape(), dtype, gpu);
      const kernels::Conv2dGrads g = kernels::conv2d_backward(dy, x, w, true, p);
      const kernels::Conv2dGrads c = kernels::conv2d_backward(f64(dy), f64(x), f64(w), true, p);
      same(g.dx, c.dx, what + "dx");
      same(g.dweight, c.dweight, what + "dweight");
      same(g.dbias, c.dbias, what + "dbias");
    }
    const Shape xs{0, 3, 7, 5};
    const Tensor x = randn(xs, dtype, gpu);
    const kernels::MaxPoolResult r = kernels::max_pool2d(x, pp), rc = kernels::max_pool2d(f64(x), pp);
    same(r.y, rc.y, "max_pool2d y");
    EXPECT_TRUE(r.indices.is_cuda() && r.indices.dtype() == DType::i64 && r.indices.shape() == rc.indices.shape());
    same(kernels::max_pool2d_backward(r.y, r.indices, xs), kernels::max_pool2d_backward(rc.y, rc.indices, xs),
         "max_pool2d dx");
    same(kernels::avg_pool2d(x, pp), kernels::avg_pool2d(f64(x), pp), "avg_pool2d y");
    same(kernels::avg_pool2d_backward(r.y, xs, pp), kernels::avg_pool2d_backward(rc.y, xs, pp), "avg_pool2d dx");
  }
}

}  // namespace
