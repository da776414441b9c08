#pragma once
// Shared by conv_pool_cpu_test.cpp and conv_pool_cuda_test.cpp: naive f64 loop references for
// conv2d and pooling (forward and backward), the cases, comparison helpers and the fixture.
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
#include "tests/core/expect_error.h"
#include "tests/gpu.h"

namespace pit::test::conv_pool {

inline std::vector<double> values(const Tensor& t) { return t.to(Device::cpu(), DType::f64).to_vector<double>(); }

inline Tensor f64(const Tensor& t) { return t.to(Device::cpu(), DType::f64); }

// max |got - want| <= tol * (1 + max |want|); reports the worst element.
inline void expect_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
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

inline kernels::Conv2dParams conv_params(int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,
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

inline kernels::Pool2dParams pool_params(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph,
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

inline std::string describe(const Shape& x, const Shape& w, const kernels::Conv2dParams& p) {
  return "x " + shape_str(x) + " w " + shape_str(w) + " stride (" + std::to_string(p.stride_h) +
         "," + std::to_string(p.stride_w) + ") pad (" + std::to_string(p.pad_h) + "," +
         std::to_string(p.pad_w) + ") dilation (" + std::to_string(p.dilation_h) + "," +
         std::to_string(p.dilation_w) + ")";
}

// ---- naive references (f64, plain loops) -------------------------------------------------------

struct ConvDims {
  int64_t n, c, h, w, co, kh, kw, ho, wo;
};

inline ConvDims conv_dims(const Shape& x, const Shape& w, const kernels::Conv2dParams& p) {
  ConvDims d{x[0], x[1], x[2], x[3], w[0], w[2], w[3], 0, 0};
  d.ho = (d.h + 2 * p.pad_h - p.dilation_h * (d.kh - 1) - 1) / p.stride_h + 1;
  d.wo = (d.w + 2 * p.pad_w - p.dilation_w * (d.kw - 1) - 1) / p.stride_w + 1;
  return d;
}

// The 7-loop definition: y[n, o, i, j] = b[o] + sum_{c, a, e} x[n, c, i s - p + a d, j s - p + e d]
// * w[o, c, a, e].
inline Tensor naive_conv(const Tensor& x, const Tensor& w, const Tensor& b, const kernels::Conv2dParams& p) {
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
inline kernels::Conv2dGrads naive_conv_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
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
inline NaivePool naive_pool(const Tensor& x, const kernels::Pool2dParams& p, bool max,
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
inline Tensor distinct64(const Shape& shape) {
  const std::vector<double> keys = rand(shape, DType::f64).to_vector<double>();
  std::vector<size_t> order(keys.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return keys[a] < keys[b]; });
  std::vector<double> v(keys.size());
  for (size_t r = 0; r < order.size(); ++r) v[order[r]] = 0.1 * static_cast<double>(r) - 1.0;
  return from_vector(v, shape);
}

// Small integers: many ties inside every window.
inline Tensor with_ties(const Shape& shape, DType dtype = DType::f64, Device device = Device::cpu()) {
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
inline std::vector<ConvCase> conv_cases() {
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

inline std::vector<kernels::Pool2dParams> pool_cases() {
  return {
      pool_params(2, 2, 2, 2, 0, 0),  // the classic, non-overlapping
      pool_params(3, 3, 2, 2, 1, 1),  // overlapping, padded
      pool_params(3, 2, 1, 1, 0, 1),  // stride 1: heavy overlap, asymmetric
      pool_params(2, 3, 3, 2, 1, 0),  // stride > kernel in h: gaps
      pool_params(4, 5, 2, 3, 2, 2),  // padding of half the kernel
      pool_params(7, 5, 1, 1, 0, 0),  // the whole plane: one output
  };
}

inline std::string describe_pool(const Shape& x, const kernels::Pool2dParams& p) {
  return "x " + shape_str(x) + " kernel (" + std::to_string(p.kernel_h) + "," +
         std::to_string(p.kernel_w) + ") stride (" + std::to_string(p.stride_h) + "," +
         std::to_string(p.stride_w) + ") pad (" + std::to_string(p.pad_h) + "," +
         std::to_string(p.pad_w) + ")";
}

}  // namespace pit::test::conv_pool
