// kernels::softmax, log_softmax and their backward: CPU f64 against brute-force references and
// finite differences, edge cases, and the CUDA kernels against the CPU on the same inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/random.h"
#include "ops/kernels.h"
#include "tests/gpu.h"

using namespace pit;

namespace {

std::vector<double> values(const Tensor& t) {
  return t.to(Device::cpu(), DType::f64).to_vector<double>();
}

// Brute-force softmax / log_softmax of x along dim, in f64.
Tensor reference(const Tensor& x, int64_t dim, bool log) {
  const Shape& s = x.shape();
  const int64_t d = dim < 0 ? dim + x.dim() : dim;
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < d; ++k) outer *= s[static_cast<size_t>(k)];
  for (int64_t k = d + 1; k < x.dim(); ++k) inner *= s[static_cast<size_t>(k)];
  const int64_t n = s[static_cast<size_t>(d)];
  const std::vector<double> v = values(x);
  std::vector<double> y(v.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const auto at = [&](int64_t m) { return static_cast<size_t>((o * n + m) * inner + i); };
      double mx = -std::numeric_limits<double>::infinity(), sum = 0;
      for (int64_t m = 0; m < n; ++m) mx = std::max(mx, v[at(m)]);
      for (int64_t m = 0; m < n; ++m) sum += std::exp(v[at(m)] - mx);
      for (int64_t m = 0; m < n; ++m)
        y[at(m)] = log ? v[at(m)] - mx - std::log(sum) : std::exp(v[at(m)] - mx) / sum;
    }
  return from_vector(y, s);
}

// |got - want| <= atol + rtol * |want| everywhere; on failure the worst absolute and relative
// errors and where they are.
void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol,
                  const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const std::vector<double> g = values(got), w = values(want);
  double worst_abs = 0, worst_rel = 0;
  size_t at_abs = 0, at_rel = 0;
  int64_t bad = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double err = std::abs(g[i] - w[i]), rel = err / std::max(std::abs(w[i]), 1e-300);
    if (err > worst_abs) worst_abs = err, at_abs = i;
    if (rel > worst_rel) worst_rel = rel, at_rel = i;
    if (!(err <= atol + rtol * std::abs(w[i]))) ++bad;
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << g.size() << " outside tolerance (rtol "
                    << rtol << ", atol " << atol << "); worst abs error " << worst_abs
                    << " at flat index " << at_abs << " (got " << g[at_abs] << ", want "
                    << w[at_abs] << "), worst rel error " << worst_rel << " at flat index "
                    << at_rel << " (got " << g[at_rel] << ", want " << w[at_rel] << ")";
}

std::string label(const char* op, const Tensor& x, int64_t dim) {
  return std::string(op) + " of " + shape_str(x.shape()) + " " + dtype_name(x.dtype()) +
         " over dim " + std::to_string(dim);
}

// ---- CPU ----------------------------------------------------------------------------------

TEST(SoftmaxKernels, MatchesReferenceOverEveryDim) {
  const Tensor x = randn({3, 4, 70}, DType::f64);  // 70 > one column chunk
  for (int64_t d = -3; d < 3; ++d) {
    expect_close(kernels::softmax(x, d), reference(x, d, false), 1e-13, 1e-15,
                 label("softmax", x, d));
    expect_close(kernels::log_softmax(x, d), reference(x, d, true), 1e-13, 1e-13,
                 label("log_softmax", x, d));
  }
}

TEST(SoftmaxKernels, RowsSumToOne) {
  const Tensor x = randn({5, 6, 7}, DType::f64);
  for (int64_t d = 0; d < 3; ++d) {
    const Tensor y = kernels::softmax(x, d);
    EXPECT_TRUE(y.is_contiguous());
    EXPECT_EQ(y.shape(), x.shape());
    for (const double s : values(kernels::sum(y, {d}))) EXPECT_NEAR(s, 1.0, 1e-14) << "dim " << d;
  }
}

TEST(SoftmaxKernels, LargeValuesStayFinite) {
  const Tensor x = from_vector(std::vector<double>{1000, 1000, 999, -1000, 1000, -1000}, {2, 3});
  const std::vector<double> y = values(kernels::softmax(x, 1));
  for (const double v : y) EXPECT_TRUE(std::isfinite(v));
  const double e = std::exp(-1.0);
  EXPECT_NEAR(y[0], 1 / (2 + e), 1e-15);
  EXPECT_NEAR(y[2], e / (2 + e), 1e-15);
  EXPECT_NEAR(y[4], 1.0, 1e-15);
  EXPECT_EQ(y[3], 0.0);
  const std::vector<double> ly = values(kernels::log_softmax(x, 1));
  for (const double v : ly) EXPECT_TRUE(std::isfinite(v));
  EXPECT_NEAR(ly[0], -std::log(2 + e), 1e-12);
  EXPECT_NEAR(ly[3], -2000.0, 1e-9);
  for (const DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (const double v : values(kernels::softmax(x.to(dtype), 1))) EXPECT_TRUE(std::isfinite(v));
}

// f32 log_softmax of large logits keeps the small results' digits: computed as (x - max) -
// log(sum), not x - (max + log(sum)) rounded at 1e4 (which gave -0.47363 for -0.47408 here).
TEST(SoftmaxKernels, LogSoftmaxOfLargeF32LogitsIsExact) {
  const Tensor x = from_vector(std::vector<float>{10000.5f, 10000.0f}, {1, 2});
  const std::vector<double> got = values(kernels::log_softmax(x, 1));
  const double want0 = -std::log1p(std::exp(-0.5)), want1 = want0 - 0.5;
  EXPECT_NEAR(got[0], want0, 1e-6);
  EXPECT_NEAR(got[1], want1, 1e-6);
}

TEST(SoftmaxKernels, MaskedEntries) {
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor x = from_vector(std::vector<double>{-inf, 0, 0, -inf, -inf, -inf}, {2, 3});
  const std::vector<double> y = values(kernels::softmax(x, 1));
  EXPECT_EQ(y[0], 0.0);
  EXPECT_NEAR(y[1], 0.5, 1e-15);
  EXPECT_NEAR(y[2], 0.5, 1e-15);
  for (int i = 3; i < 6; ++i) EXPECT_TRUE(std::isnan(y[static_cast<size_t>(i)]));  // all masked
}

TEST(SoftmaxKernels, LogSoftmaxIsLogOfSoftmax) {
  const Tensor x = randn({4, 9, 6}, DType::f64);
  for (int64_t d = 0; d < 3; ++d) {
    std::vector<double> logs = values(kernels::softmax(x, d));
    for (double& v : logs) v = std::log(v);
    expect_close(kernels::log_softmax(x, d), from_vector(logs, x.shape()), 1e-13, 1e-13,
                 label("log_softmax", x, d));
  }
}

TEST(SoftmaxKernels, NonContiguousInputs) {
  const Tensor base = randn({6, 8, 10}, DType::f64);
  for (const Tensor& x :
       {base.transpose(0, 2), base.slice(2, 1, 10), base.slice(1, 0, 8, 3), base.permute({1, 2, 0}),
        randn({1, 8, 1}, DType::f64).expand({3, 8, 4})}) {
    for (int64_t d = 0; d < 3; ++d) {
      expect_close(kernels::softmax(x, d), reference(x, d, false), 1e-13, 1e-15,
                   label("softmax", x, d));
      expect_close(kernels::log_softmax(x, d), reference(x, d, true), 1e-13, 1e-13,
                   label("log_softmax", x, d));
    }
  }
}

TEST(SoftmaxKernels, ZeroDimAndEmpty) {
  const Tensor s = full({}, 3.0, DType::f64);
  EXPECT_EQ(kernels::softmax(s, 0).shape(), Shape{});
  EXPECT_EQ(kernels::softmax(s, 0).item<double>(), 1.0);
  EXPECT_EQ(kernels::log_softmax(s, -1).item<double>(), 0.0);
  const Tensor e = zeros({0, 4}, DType::f64);
  EXPECT_EQ(kernels::softmax(e, 1).shape(), (Shape{0, 4}));
  EXPECT_EQ(kernels::softmax_backward(e, e, 0).shape(), (Shape{0, 4}));
  EXPECT_THROW(kernels::softmax(e, 2), Error);
  EXPECT_THROW(kernels::softmax(zeros({3}, DType::i32), 0), Error);
  EXPECT_THROW(kernels::softmax_backward(zeros({3}, DType::f64), zeros({4}, DType::f64), 0), Error);
  EXPECT_THROW(kernels::softmax_backward(zeros({3}, DType::f32), zeros({3}, DType::f64), 0), Error);
}

// Vector-Jacobian product by central differences: sum(grad_y * (f(x + h e_k) - f(x - h e_k))) / 2h.
void check_backward_by_finite_differences(bool log) {
  const Tensor x = randn({3, 4, 5}, DType::f64);
  const Tensor gy = randn({3, 4, 5}, DType::f64);
  const std::vector<double> xv = values(x), gv = values(gy);
  const double h = 1e-6;
  for (int64_t d = 0; d < 3; ++d) {
    const auto f = [&](const std::vector<double>& v) {
      const Tensor t = from_vector(v, x.shape());
      return values(log ? kernels::log_softmax(t, d) : kernels::softmax(t, d));
    };
    std::vector<double> numeric(xv.size());
    for (size_t k = 0; k < xv.size(); ++k) {
      std::vector<double> plus = xv, minus = xv;
      plus[k] += h;
      minus[k] -= h;
      const std::vector<double> yp = f(plus), ym = f(minus);
      double vjp = 0;
      for (size_t i = 0; i < yp.size(); ++i) vjp += gv[i] * (yp[i] - ym[i]) / (2 * h);
      numeric[k] = vjp;
    }
    const Tensor y = log ? kernels::log_softmax(x, d) : kernels::softmax(x, d);
    const Tensor gx =
        log ? kernels::log_softmax_backward(gy, y, d) : kernels::softmax_backward(gy, y, d);
    expect_close(
        gx, from_vector(numeric, x.shape()), 1e-6, 1e-8,
        std::string(log ? "log_softmax" : "softmax") + "_backward over dim " + std::to_string(d));
    // Non-contiguous grad_y and y give the same result.
    const Tensor gx_t =
        log ? kernels::log_softmax_backward(gy.transpose(0, 2).contiguous().transpose(0, 2),
                                            y.transpose(0, 1).contiguous().transpose(0, 1), d)
            : kernels::softmax_backward(gy.transpose(0, 2).contiguous().transpose(0, 2),
                                        y.transpose(0, 1).contiguous().transpose(0, 1), d);
    EXPECT_FALSE(gy.transpose(0, 2).contiguous().transpose(0, 2).is_contiguous());
    expect_close(gx_t, gx, 1e-14, 1e-15, "non-contiguous backward over dim " + std::to_string(d));
  }
}

TEST(SoftmaxKernels, SoftmaxBackwardMatchesFiniteDifferences) {
  check_backward_by_finite_differences(false);
}

TEST(SoftmaxKernels, LogSoftmaxBackwardMatchesFiniteDifferences) {
  check_backward_by_finite_differences(true);
}

TEST(SoftmaxKernels, LowPrecisionDtypesOnCpu) {
  const Tensor x64 = randn({6, 50}, DType::f64);
  for (const auto& [dtype, tol] :
       {std::pair{DType::f32, 1e-5}, std::pair{DType::bf16, 8e-3}, std::pair{DType::f16, 1e-3}}) {
    const Tensor x = x64.to(dtype);
    const Tensor y = kernels::softmax(x, 1);
    EXPECT_EQ(y.dtype(), dtype);
    expect_close(y, reference(x, 1, false), tol, 1e-7, label("softmax", x, 1));
    expect_close(kernels::log_softmax(x, 1), reference(x, 1, true), tol, 4 * tol,
                 label("log_softmax", x, 1));
  }
}

// ---- CUDA ---------------------------------------------------------------------------------
// The GPU result is compared with the CPU kernels computing in f64 on the very same (already
// rounded) inputs, so the error is the GPU's f32 math plus the final rounding to the dtype:
//   f32:  rtol 1e-5 (expf/logf ulps, ~|x - max| * 2^-24 from the argument, f32 sums of up to
//         32k terms), atol 1e-9;
//   f16:  rtol 1e-3 (one ulp, 2^-10, when the f32 result rounds the other way), atol 1e-7 (one
//         f16 subnormal step: tiny probabilities of long rows are subnormal in f16);
//   bf16: rtol 8e-3 (one ulp, 2^-7 relative at worst), atol 1e-9.
// log_softmax: atol 4 * rtol (values near 0 carry the absolute error of max + log(sum)).
// Backward: atol 2 * rtol * max|want| (normwise: grad_y - dot cancels).

struct Tol {
  double rtol, atol;
};
Tol tol_for(DType d) {
  return d == DType::f32 ? Tol{1e-5, 1e-9} : d == DType::f16 ? Tol{1e-3, 1e-7} : Tol{8e-3, 1e-9};
}

const DType kGpuDtypes[] = {DType::f32, DType::bf16, DType::f16};

double max_abs(const Tensor& t) {
  double m = 0;
  for (const double v : values(t)) m = std::max(m, std::abs(v));
  return m;
}

// Forward and both backward kernels on the GPU for x (a CUDA tensor) along dim.
void check_gpu(const Tensor& x, int64_t dim) {
  const Tol tol = tol_for(x.dtype());
  const Tensor host = x.to(Device::cpu(), DType::f64);
  const Tensor y = kernels::softmax(x, dim);
  EXPECT_TRUE(y.is_cuda());
  EXPECT_TRUE(y.is_contiguous());
  EXPECT_EQ(y.dtype(), x.dtype());
  expect_close(y, kernels::softmax(host, dim), tol.rtol, tol.atol, label("softmax", x, dim));
  const Tensor ly = kernels::log_softmax(x, dim);
  expect_close(ly, kernels::log_softmax(host, dim), tol.rtol, 4 * tol.rtol,
               label("log_softmax", x, dim));

  const Tensor gy = randn(x.shape(), x.dtype(), x.device());
  const Tensor gy_host = gy.to(Device::cpu(), DType::f64);
  const Tensor want = kernels::softmax_backward(gy_host, y.to(Device::cpu(), DType::f64), dim);
  expect_close(kernels::softmax_backward(gy, y, dim), want, tol.rtol, 2 * tol.rtol * max_abs(want),
               label("softmax_backward", x, dim));
  const Tensor lwant =
      kernels::log_softmax_backward(gy_host, ly.to(Device::cpu(), DType::f64), dim);
  expect_close(kernels::log_softmax_backward(gy, ly, dim), lwant, tol.rtol,
               2 * tol.rtol * max_abs(lwant), label("log_softmax_backward", x, dim));
}

TEST(SoftmaxKernelsCuda, RowLengths) {
  PIT_REQUIRE_CUDA();
  // 1, 31: columns; 33, 4097 and 32768: streaming rows (warp, block); the others: rows held in
  // registers by lane groups of every width and by blocks of 256 and 512 threads (row counts
  // that leave partial groups).
  const std::pair<int64_t, int64_t> shapes[] = {
      {100, 1}, {100, 31},   {100, 33}, {64, 1024}, {16, 4097}, {8, 32768}, {37, 4},   {37, 8},
      {37, 16}, {1001, 128}, {37, 256}, {37, 512},  {5, 2048},  {4, 4096},  {3, 8192}, {2, 16384}};
  for (const DType dtype : kGpuDtypes)
    for (const auto& [rows, len] : shapes) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " rows of " + std::to_string(len));
      check_gpu(randn({rows, len}, dtype, Device::cuda()), 1);
    }
}

TEST(SoftmaxKernelsCuda, EveryDimAndStridedLayouts) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  for (const DType dtype : kGpuDtypes) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tensor a = randn({3, 5, 7}, dtype, gpu);
    for (int64_t d = 0; d < 3; ++d) check_gpu(a, d);
    // Few columns: the dim is moved last and the row kernels run.
    check_gpu(randn({16, 33, 40}, dtype, gpu), 1);
    check_gpu(randn({40, 300}, dtype, gpu).t(), 1);  // transposed: strided rows
    check_gpu(randn({8, 2000}, dtype, gpu).t(), 0);  // transposed: contiguous long rows
    check_gpu(randn({2, 3000, 4}, dtype, gpu), 1);
    // Enough columns for the column kernels (>= 2^17).
    check_gpu(randn({2, 50, 70000}, dtype, gpu), 1);    // inner contiguous
    check_gpu(randn({20, 140000}, dtype, gpu).t(), 1);  // transposed, outer contiguous
    check_gpu(randn({20000, 64}, dtype, gpu), 1);       // many short rows: grid-stride warps
  }
}

TEST(SoftmaxKernelsCuda, MisalignedViews) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  for (const DType dtype : kGpuDtypes) {
    SCOPED_TRACE(dtype_name(dtype));
    check_gpu(randn({37, 1025}, dtype, gpu).slice(1, 1, 1025), 1);  // warp rows off by one
    check_gpu(randn({5, 4098}, dtype, gpu).slice(1, 1, 4098), 1);   // block rows off by one
    check_gpu(randn({3, 1025}, dtype, gpu).slice(1, 1, 1024), 1);   // odd length and offset
  }
}

TEST(SoftmaxKernelsCuda, LargeValuesAndMasks) {
  PIT_REQUIRE_CUDA();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> v(4 * 2048);
  for (size_t i = 0; i < v.size(); ++i) v[i] = 1000.0 - static_cast<double>(i % 7);
  for (size_t i = 0; i < 1500; ++i) v[2048 + i] = -inf;  // row 1 starts masked
  for (const DType dtype : kGpuDtypes) {
    const Tensor x = from_vector(v, {4, 2048}).to(Device::cuda(), dtype);
    const Tensor host = x.to(Device::cpu(), DType::f64);
    const Tol tol = tol_for(dtype);
    const Tensor y = kernels::softmax(x, 1);
    for (const double e : values(y)) EXPECT_TRUE(std::isfinite(e));
    expect_close(y, kernels::softmax(host, 1), tol.rtol, tol.atol, label("softmax", x, 1));
    const Tensor xt = x.t().contiguous();  // the same along dim 0: the column kernel
    expect_close(kernels::softmax(xt, 0), kernels::softmax(host.t(), 0), tol.rtol, tol.atol,
                 label("softmax", xt, 0));
  }
}

// A +inf makes its row NaN (exp(inf - inf)), as on the CPU, on every kernel: rows of 5 go to the
// column kernel, 33 and 4097 stream, 1024 sit in registers; transposed (few columns), the dim is
// moved last first. The +inf comes after finite values and before more of them.
TEST(SoftmaxKernelsCuda, PlusInfinityMakesItsRowNaNOnEveryKernel) {
  PIT_REQUIRE_CUDA();
  const double inf = std::numeric_limits<double>::infinity();
  for (const int64_t len : {5, 33, 1024, 4097}) {
    const int64_t rows = 3;
    std::vector<double> v = values(randn({rows, len}, DType::f64));
    v[static_cast<size_t>(len + len / 2)] = inf;  // row 1
    for (const bool transposed : {false, true}) {
      SCOPED_TRACE("rows of " + std::to_string(len) + (transposed ? ", transposed" : ""));
      Tensor x = from_vector(v, {rows, len}).to(Device::cuda(), DType::f32);
      if (transposed) x = x.t().contiguous();
      const int64_t dim = transposed ? 0 : 1;
      for (const bool log : {false, true}) {
        const Tensor y = (log ? kernels::log_softmax(x, dim) : kernels::softmax(x, dim)).to(Device::cpu(), DType::f64);
        const Tensor yr = transposed ? y.t().contiguous() : y;
        const std::vector<double> got = values(yr);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < len; ++c) {
            const double e = got[static_cast<size_t>(r * len + c)];
            if (r == 1) {
              ASSERT_TRUE(std::isnan(e)) << (log ? "log_softmax" : "softmax") << " row 1 column " << c << ": " << e;
            } else {
              ASSERT_TRUE(std::isfinite(e) || (log && e == -inf)) << "row " << r << " column " << c << ": " << e;
            }
          }
      }
    }
  }
}

// The same on the GPU's kernels: rows in registers (2, 256), streaming rows (4097), and the column
// kernel (a transposed long dim): large f32 logits lose no digits to a rounded max + log(sum).
TEST(SoftmaxKernelsCuda, LogSoftmaxOfLargeF32LogitsIsExact) {
  PIT_REQUIRE_CUDA();
  for (const int64_t len : {2, 256, 4097, 140000}) {
    SCOPED_TRACE("rows of " + std::to_string(len));
    std::vector<float> v(static_cast<size_t>(2 * len));
    for (size_t i = 0; i < v.size(); ++i) v[i] = 10000.0f + 0.25f * static_cast<float>(i % 5);
    const Tensor x = from_vector(v, {2, len});
    const Tensor want = kernels::log_softmax(x.to(DType::f64), 1);
    expect_close(kernels::log_softmax(x.to(Device::cuda()), 1), want, 1e-6, 1e-6, label("log_softmax", x, 1));
    const Tensor xt = x.t().contiguous().to(Device::cuda());
    expect_close(kernels::log_softmax(xt, 0), want.t(), 1e-6, 1e-6, label("log_softmax", xt, 0));
  }
}

TEST(SoftmaxKernelsCuda, Deterministic) {
  PIT_REQUIRE_CUDA();
  for (const DType dtype : kGpuDtypes)
    for (const Shape& shape : {Shape{64, 1024}, Shape{512, 4097}, Shape{7, 300, 9}}) {
      const Tensor x = randn(shape, dtype, Device::cuda());
      const int64_t d = 1;
      const Tensor y = kernels::softmax(x, d);
      EXPECT_EQ(values(y), values(kernels::softmax(x, d))) << shape_str(shape);
      EXPECT_EQ(values(kernels::log_softmax(x, d)), values(kernels::log_softmax(x, d)))
          << shape_str(shape);
      const Tensor gy = randn(shape, dtype, Device::cuda());
      EXPECT_EQ(values(kernels::softmax_backward(gy, y, d)),
                values(kernels::softmax_backward(gy, y, d)))
          << shape_str(shape);
    }
}

// Empty inputs on the GPU, as the CPU's ZeroDimAndEmpty: each entry point returns an empty CUDA
// tensor of the input's shape and dtype (no kernel may run on, or reject, zero rows or columns),
// along every dim of shapes empty in their first, last and middle dims.
TEST(SoftmaxKernelsCuda, EmptyInputs) {
  PIT_REQUIRE_CUDA();
  for (const DType dtype : kGpuDtypes)
    for (const Shape& shape : {Shape{0, 4}, Shape{4, 0}, Shape{2, 0, 3}})
      for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + shape_str(shape) + " over dim " + std::to_string(d));
        const Tensor x = zeros(shape, dtype, Device::cuda()), host = x.to(Device::cpu());
        const Tensor got[] = {kernels::softmax(x, d), kernels::log_softmax(x, d),
                              kernels::softmax_backward(x, x, d), kernels::log_softmax_backward(x, x, d)};
        const Tensor want[] = {kernels::softmax(host, d), kernels::log_softmax(host, d),
                               kernels::softmax_backward(host, host, d),
                               kernels::log_softmax_backward(host, host, d)};
        for (size_t i = 0; i < 4; ++i) {
          EXPECT_TRUE(got[i].is_cuda()) << "output " << i;
          EXPECT_EQ(got[i].dtype(), want[i].dtype()) << "output " << i;
          EXPECT_EQ(got[i].shape(), want[i].shape()) << "output " << i;
        }
      }
}

}  // namespace
