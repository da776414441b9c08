// kernels::layernorm / rmsnorm and their backward: CPU f64 against straightforward references,
// views, errors; gradcheck of ops::layernorm / rmsnorm (with and without affine parameters) and
// of ops::max / ops::var; the CUDA kernels against the CPU on the same inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "autograd/gradcheck.h"
#include "core/random.h"
#include "ops/functional.h"
#include "ops/kernels.h"
#include "tests/gpu.h"
#include "tests/ops/check.h"

#if PIT_WITH_CUDA
#include "ops/cuda/norm_bulk.h"
#endif

using namespace pit;
using namespace pit::test;

namespace {


// ---- references (f64, straight from the definitions) ----------------------------------------

struct RefNorm {
  std::vector<double> y, mean, rstd;
};

// x: rows x d values; w / b empty for none.
RefNorm ref_forward(const std::vector<double>& x, int64_t rows, int64_t d,
                    const std::vector<double>& w, const std::vector<double>& b, double eps, bool rms) {
  RefNorm r;
  r.y.resize(x.size());
  for (int64_t i = 0; i < rows; ++i) {
    const double* xr = &x[static_cast<size_t>(i * d)];
    double mean = 0;
    if (!rms) {
      for (int64_t j = 0; j < d; ++j) mean += xr[j];
      mean /= static_cast<double>(d);
    }
    double var = 0;
    for (int64_t j = 0; j < d; ++j) var += (xr[j] - mean) * (xr[j] - mean);
    var /= static_cast<double>(d);
    const double rstd = 1 / std::sqrt(var + eps);
    r.mean.push_back(mean);
    r.rstd.push_back(rstd);
    for (int64_t j = 0; j < d; ++j) {
      double v = (xr[j] - mean) * rstd;
      if (!w.empty()) v *= w[static_cast<size_t>(j)];
      if (!b.empty()) v += b[static_cast<size_t>(j)];
      r.y[static_cast<size_t>(i * d + j)] = v;
    }
  }
  return r;
}

struct RefGrads {
  std::vector<double> dx, dw, db;
};

// The textbook gradient: for xhat = (x - mean) * rstd, y = xhat * w + b,
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w  (rms: no mean(g) term)
//   dw = sum over rows of dy * xhat, db = sum over rows of dy.
RefGrads ref_backward(const std::vector<double>& dy, const std::vector<double>& x, int64_t rows,
                      int64_t d, const std::vector<double>& w, double eps, bool rms) {
  const RefNorm f = ref_forward(x, rows, d, {}, {}, eps, rms);  // f.y = xhat
  RefGrads r;
  r.dx.resize(x.size());
  r.dw.assign(static_cast<size_t>(d), 0.0);
  r.db.assign(static_cast<size_t>(d), 0.0);
  for (int64_t i = 0; i < rows; ++i) {
    double mg = 0, mgx = 0;
    for (int64_t j = 0; j < d; ++j) {
      const size_t k = static_cast<size_t>(i * d + j);
      const double g = dy[k] * (w.empty() ? 1.0 : w[static_cast<size_t>(j)]);
      mg += g;
      mgx += g * f.y[k];
      r.dw[static_cast<size_t>(j)] += dy[k] * f.y[k];
      r.db[static_cast<size_t>(j)] += dy[k];
    }
    mg /= static_cast<double>(d);
    mgx /= static_cast<double>(d);
    for (int64_t j = 0; j < d; ++j) {
      const size_t k = static_cast<size_t>(i * d + j);
      const double g = dy[k] * (w.empty() ? 1.0 : w[static_cast<size_t>(j)]);
      r.dx[k] = f.rstd[static_cast<size_t>(i)] * (g - (rms ? 0.0 : mg) - f.y[k] * mgx);
    }
  }
  return r;
}

Tensor host(const std::vector<double>& v, const Shape& shape) { return from_vector(v, shape); }

void expect_gradcheck(const std::function<Variable(const std::vector<Variable>&)>& fn,
                      const std::vector<Tensor>& inputs, const std::string& what) {
  const GradcheckResult r = gradcheck(fn, inputs);
  EXPECT_TRUE(r.ok) << what << ": " << r.report;
}

class NormTest : public ::testing::Test {
 protected:
  void SetUp() override { manual_seed(1234); }
};

// ---- CPU kernels ------------------------------------------------------------------------------

TEST_F(NormTest, LayerNormMatchesReference) {
  for (const Shape& shape : {Shape{7, 33}, Shape{3, 4, 64}, Shape{1, 1}, Shape{5}}) {
    const int64_t d = shape.back(), rows = shape_numel(shape) / d;
    const Tensor x = randn(shape, DType::f64), w = randn({d}, DType::f64), b = randn({d}, DType::f64);
    for (const bool affine : {false, true}) {
      SCOPED_TRACE(shape_str(shape) + (affine ? " affine" : ""));
      const kernels::NormResult r = kernels::layernorm(x, affine ? w : Tensor(), affine ? b : Tensor(), 1e-5);
      const RefNorm ref = ref_forward(values(x), rows, d, affine ? values(w) : std::vector<double>{},
                                      affine ? values(b) : std::vector<double>{}, 1e-5, false);
      expect_close(r.y, host(ref.y, shape), 1e-12, 1e-12, "y");
      expect_close(r.mean, host(ref.mean, {rows}), 1e-12, 1e-12, "mean");
      expect_close(r.rstd, host(ref.rstd, {rows}), 1e-12, 1e-12, "rstd");
      EXPECT_EQ(r.mean.dtype(), DType::f64);
    }
  }
}

TEST_F(NormTest, RmsNormMatchesReference) {
  for (const Shape& shape : {Shape{7, 33}, Shape{2, 3, 100}}) {
    const int64_t d = shape.back(), rows = shape_numel(shape) / d;
    const Tensor x = randn(shape, DType::f64), w = randn({d}, DType::f64);
    for (const bool affine : {false, true}) {
      SCOPED_TRACE(shape_str(shape) + (affine ? " affine" : ""));
      const kernels::NormResult r = kernels::rmsnorm(x, affine ? w : Tensor(), 1e-6);
      const RefNorm ref = ref_forward(values(x), rows, d, affine ? values(w) : std::vector<double>{},
                                      {}, 1e-6, true);
      expect_close(r.y, host(ref.y, shape), 1e-12, 1e-12, "y");
      expect_close(r.rstd, host(ref.rstd, {rows}), 1e-12, 1e-12, "rstd");
      EXPECT_FALSE(r.mean.defined());
    }
  }
}

TEST_F(NormTest, BackwardMatchesReference) {
  const Shape shape{6, 45};
  const int64_t d = 45, rows = 6;
  const Tensor x = randn(shape, DType::f64), dy = randn(shape, DType::f64);
  const Tensor w = randn({d}, DType::f64), b = randn({d}, DType::f64);
  for (const bool rms : {false, true})
    for (const bool affine : {false, true}) {
      SCOPED_TRACE(std::string(rms ? "rmsnorm" : "layernorm") + (affine ? " affine" : ""));
      const Tensor wt = affine ? w : Tensor();
      const kernels::NormResult f = rms ? kernels::rmsnorm(x, wt, 1e-5)
                                        : kernels::layernorm(x, wt, affine ? b : Tensor(), 1e-5);
      const kernels::NormGrads g = rms ? kernels::rmsnorm_backward(dy, x, wt, f)
                                       : kernels::layernorm_backward(dy, x, wt, f, affine);
      const RefGrads ref = ref_backward(values(dy), values(x), rows, d,
                                        affine ? values(w) : std::vector<double>{}, 1e-5, rms);
      expect_close(g.dx, host(ref.dx, shape), 1e-10, 1e-12, "dx");
      if (affine) {
        expect_close(g.dweight, host(ref.dw, {d}), 1e-10, 1e-12, "dweight");
        if (!rms) expect_close(g.dbias, host(ref.db, {d}), 1e-10, 1e-12, "dbias");
      } else {
        EXPECT_FALSE(g.dweight.defined());
        EXPECT_FALSE(g.dbias.defined());
      }
    }
}

TEST_F(NormTest, ViewsMatchContiguousCopies) {
  const Tensor base = randn({5, 34}, DType::f64);
  const Tensor w = randn({33}, DType::f64), b = randn({33}, DType::f64);
  const Tensor sliced = base.slice(1, 1, 34);          // rows start one element in
  const Tensor transposed = randn({33, 5}, DType::f64).t();  // not rows: copied
  for (const Tensor& x : {sliced, transposed}) {
    const Tensor xc = x.contiguous();
    const kernels::NormResult a = kernels::layernorm(x, w, b, 1e-5), c = kernels::layernorm(xc, w, b, 1e-5);
    EXPECT_EQ(values(a.y), values(c.y));
    const Tensor dy = randn({x.size(1), x.size(0)}, DType::f64).t();  // a strided gradient
    const kernels::NormGrads ga = kernels::layernorm_backward(dy, x, w, a, true);
    const kernels::NormGrads gc = kernels::layernorm_backward(dy.contiguous(), xc, w, c, true);
    EXPECT_EQ(values(ga.dx), values(gc.dx));
    EXPECT_EQ(values(ga.dweight), values(gc.dweight));
    EXPECT_EQ(values(ga.dbias), values(gc.dbias));
  }
}

TEST_F(NormTest, ReducedPrecisionOnCpu) {
  // f32 / f16 / bf16 against the f64 reference on the same (rounded) values: the errors are
  // those of rounding each output once (f16 2^-11, bf16 2^-8 relative), with margin.
  const struct {
    DType dtype;
    double tol;
  } cases[] = {{DType::f32, 1e-5}, {DType::f16, 2e-3}, {DType::bf16, 1e-2}};
  for (const auto& c : cases) {
    SCOPED_TRACE(dtype_name(c.dtype));
    const Tensor x = randn({9, 70}, c.dtype), w = randn({70}, c.dtype), b = randn({70}, c.dtype);
    const Tensor dy = randn({9, 70}, c.dtype);
    const kernels::NormResult r = kernels::layernorm(x, w, b, 1e-5);
    const Tensor x64 = x.to(DType::f64), w64 = w.to(DType::f64), b64 = b.to(DType::f64);
    const kernels::NormResult r64 = kernels::layernorm(x64, w64, b64, 1e-5);
    expect_close(r.y, r64.y, c.tol, c.tol, "y");
    expect_close(r.rstd, r64.rstd, 1e-6, 1e-6, "rstd");
    const kernels::NormGrads g = kernels::layernorm_backward(dy, x, w, r, true);
    const kernels::NormGrads g64 = kernels::layernorm_backward(dy.to(DType::f64), x64, w64, r64, true);
    expect_close(g.dx, g64.dx, c.tol, c.tol, "dx");
    expect_close(g.dweight, g64.dweight, c.tol, c.tol, "dweight");
    expect_close(g.dbias, g64.dbias, c.tol, c.tol, "dbias");
  }
}

TEST_F(NormTest, EmptyRowsAndErrors) {
  const Tensor x = zeros({0, 8}), w = ones({8}), b = zeros({8});
  const kernels::NormResult r = kernels::layernorm(x, w, b, 1e-5);
  EXPECT_EQ(r.y.shape(), (Shape{0, 8}));
  const kernels::NormGrads g = kernels::layernorm_backward(x, x, w, r, true);
  EXPECT_EQ(values(g.dweight), std::vector<double>(8, 0.0));
  EXPECT_EQ(values(g.dbias), std::vector<double>(8, 0.0));

  const Tensor y = randn({3, 8});
  EXPECT_THROW(kernels::layernorm(y, ones({7}), Tensor(), 1e-5), Error);                 // shape
  EXPECT_THROW(kernels::layernorm(y, ones({8}, DType::f64), Tensor(), 1e-5), Error);     // dtype
  EXPECT_THROW(kernels::rmsnorm(randn({}), Tensor(), 1e-5), Error);                      // 0-d
  EXPECT_THROW(kernels::rmsnorm(zeros({3, 0}), Tensor(), 1e-5), Error);                  // D = 0
  EXPECT_THROW(kernels::rmsnorm(zeros({3, 4}, DType::i64), Tensor(), 1e-5), Error);      // dtype
  try {
    kernels::layernorm(y, Tensor(), ones({5}), 1e-5);
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bias"), std::string::npos) << e.what();
  }
}

// ---- gradcheck ----------------------------------------------------------------------------------

TEST_F(NormTest, LayerNormGradcheck) {
  for (const Shape& shape : {Shape{3, 5}, Shape{2, 3, 4}}) {
    const int64_t d = shape.back();
    const Tensor x = randn(shape, DType::f64), w = randn({d}, DType::f64), b = randn({d}, DType::f64);
    const std::string s = shape_str(shape);
    expect_gradcheck([](const auto& v) { return ops::layernorm(v[0], v[1], v[2]); }, {x, w, b},
                     s + " affine");
    expect_gradcheck([](const auto& v) { return ops::layernorm(v[0], Variable(), Variable()); }, {x},
                     s + " no affine");
    expect_gradcheck([](const auto& v) { return ops::layernorm(v[0], v[1], Variable()); }, {x, w},
                     s + " weight only");
    expect_gradcheck([](const auto& v) { return ops::layernorm(v[0], Variable(), v[1]); }, {x, b},
                     s + " bias only");
  }
}

TEST_F(NormTest, RmsNormGradcheck) {
  for (const Shape& shape : {Shape{3, 5}, Shape{2, 3, 4}}) {
    const Tensor x = randn(shape, DType::f64), w = randn({shape.back()}, DType::f64);
    expect_gradcheck([](const auto& v) { return ops::rmsnorm(v[0], v[1]); }, {x, w},
                     shape_str(shape) + " weight");
    expect_gradcheck([](const auto& v) { return ops::rmsnorm(v[0], Variable()); }, {x},
                     shape_str(shape) + " no weight");
  }
}

TEST_F(NormTest, OnlyRequestedGradients) {
  const Variable x(randn({4, 6}, DType::f64), true);
  const Variable w(randn({6}, DType::f64), false), b(randn({6}, DType::f64), true);
  ops::sum(ops::layernorm(x, w, b)).backward();
  EXPECT_TRUE(x.grad().defined());
  EXPECT_FALSE(w.grad().defined());
  EXPECT_TRUE(b.grad().defined());
  // No input requires grad: nothing is recorded.
  EXPECT_FALSE(ops::rmsnorm(Variable(randn({2, 3})), Variable()).requires_grad());
}

TEST_F(NormTest, MaxGradcheck) {
  // randn values in f64 have no ties, so the maximum is unique and differentiable.
  const Tensor x = randn({3, 4, 5}, DType::f64);
  for (const int64_t dim : {0, 1, 2, -1})
    for (const bool keepdim : {false, true}) {
      const std::string what = "dim " + std::to_string(dim) + (keepdim ? " keepdim" : "");
      expect_gradcheck([&](const auto& v) { return ops::max(v[0], dim, keepdim).values; }, {x}, what);
      const ops::MaxOutput out = ops::max(Variable(x), dim, keepdim);
      const kernels::MaxResult k = kernels::max(x, dim, keepdim);
      EXPECT_EQ(values(out.indices), values(k.indices)) << what;
      EXPECT_EQ(out.indices.dtype(), DType::i64);
    }
  // The gradient lands on the maximum only.
  const Variable v(from_vector(std::vector<double>{1, 5, 2, 7, 3, 0}, {2, 3}), true);
  ops::sum(ops::max(v, 1).values).backward();
  EXPECT_EQ(values(v.grad()), (std::vector<double>{0, 1, 0, 1, 0, 0}));
}

TEST_F(NormTest, VarGradcheck) {
  const Tensor x = randn({2, 3, 4}, DType::f64);
  const std::vector<std::vector<int64_t>> all_dims{{}, {0}, {1}, {-1}, {0, 2}};
  for (const int64_t correction : {0, 1})
    for (const bool keepdim : {false, true})
      for (const std::vector<int64_t>& dims : all_dims) {
        const std::string what = "dims " + shape_str(dims) + " correction " +
                                 std::to_string(correction) + (keepdim ? " keepdim" : "");
        expect_gradcheck([&](const auto& v) { return ops::var(v[0], dims, correction, keepdim); },
                         {x}, what);
      }
}

// ---- CUDA against the CPU ------------------------------------------------------------------------

// Tolerances of the GPU (f32 statistics, outputs rounded once to the dtype) against the CPU f64
// kernels run on the same rounded inputs. `out` bounds y, dx, dweight, dbias: |err| <= out *
// (max(1, max|ref|) + |ref|) — f32 1e-4 (f32 sums of up to 10^4 terms, and the cancellation in
// dx), f16 4e-3 (2^-11 rounding plus f32 error), bf16 1.6e-2 (2^-8 rounding). `stat` bounds the
// f32 mean / rstd, for every dtype (the statistics never round to the input dtype).
struct Tol {
  double out, stat;
};
Tol tol_for(DType dtype) {
  switch (dtype) {
    case DType::f16: return {4e-3, 3e-5};
    case DType::bf16: return {1.6e-2, 3e-5};
    case DType::f64: return {1e-12, 1e-12};
    default: return {1e-4, 3e-5};
  }
}

// Random (rows, d) of `dtype` on the GPU around `offset`, so that the mean matters.
Tensor gpu_input(int64_t rows, int64_t d, DType dtype, double offset) {
  return kernels::unary(UnaryOp::add_scalar, randn({rows, d}, DType::f32, Device::cuda()), offset)
      .to(dtype);
}

// Runs layernorm (or rmsnorm) forward and backward on x (GPU) and on its f64 CPU copy and
// compares everything.
void check_gpu(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& dy, bool rms,
               const std::string& what) {
  const Tol tol = tol_for(x.dtype());
  const auto cpu64 = [](const Tensor& t) { return t.defined() ? t.to(Device::cpu(), DType::f64) : t; };
  const Tensor x64 = cpu64(x), w64 = cpu64(w), b64 = cpu64(b), dy64 = cpu64(dy);
  const double eps = 1e-5;
  const kernels::NormResult g = rms ? kernels::rmsnorm(x, w, eps) : kernels::layernorm(x, w, b, eps);
  const kernels::NormResult c = rms ? kernels::rmsnorm(x64, w64, eps) : kernels::layernorm(x64, w64, b64, eps);
  expect_close(g.y, c.y, tol.out, tol.out, what + " y");
  expect_close(g.rstd, c.rstd, tol.stat, tol.stat, what + " rstd");
  if (!rms) expect_close(g.mean, c.mean, tol.stat, tol.stat, what + " mean");
  const bool has_bias = b.defined();
  const kernels::NormGrads gg = rms ? kernels::rmsnorm_backward(dy, x, w, g)
                                    : kernels::layernorm_backward(dy, x, w, g, has_bias);
  const kernels::NormGrads cg = rms ? kernels::rmsnorm_backward(dy64, x64, w64, c)
                                    : kernels::layernorm_backward(dy64, x64, w64, c, has_bias);
  expect_close(gg.dx, cg.dx, tol.out, tol.out, what + " dx");
  if (w.defined()) expect_close(gg.dweight, cg.dweight, tol.out, tol.out, what + " dweight");
  if (has_bias) expect_close(gg.dbias, cg.dbias, tol.out, tol.out, what + " dbias");
}

const DType kGpuDtypes[] = {DType::f32, DType::bf16, DType::f16};

TEST(NormCuda, MatchesCpu) {
  PIT_REQUIRE_CUDA();
  manual_seed(7);
  const Device gpu = Device::cuda();
  // 1, 33, 768, 1024: a warp per row (1 to 8 packs per lane); 4097: a block per row in
  // registers; 10000: a streamed block per row. Rows: 1, 7 and 1000 (several dweight chunks).
  for (const DType dtype : kGpuDtypes)
    for (const int64_t d : {1, 33, 768, 1024, 4097, 10000})
      for (const int64_t rows : {1, 7, 1000}) {
        if (d == 10000 && rows == 1000) continue;  // keeps the f64 reference quick
        const std::string what = std::string(dtype_name(dtype)) + " " + std::to_string(rows) +
                                 " x " + std::to_string(d);
        SCOPED_TRACE(what);
        const Tensor x = gpu_input(rows, d, dtype, 3.0), dy = randn({rows, d}, dtype, gpu);
        const Tensor w = randn({d}, dtype, gpu), b = randn({d}, dtype, gpu);
        check_gpu(x, w, b, dy, false, "layernorm affine");
        check_gpu(x, w, Tensor(), dy, true, "rmsnorm weight");
        if (rows == 7) {
          check_gpu(x, Tensor(), Tensor(), dy, false, "layernorm plain");
          check_gpu(x, Tensor(), Tensor(), dy, true, "rmsnorm plain");
          check_gpu(x, Tensor(), b, dy, false, "layernorm bias only");
        }
      }
}

TEST(NormCuda, F64MatchesCpu) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  for (const int64_t d : {33, 1024, 4097, 10000}) {
    SCOPED_TRACE(d);
    const Tensor x = gpu_input(5, d, DType::f64, 1.0), dy = randn({5, d}, DType::f64, gpu);
    check_gpu(x, randn({d}, DType::f64, gpu), randn({d}, DType::f64, gpu), dy, false, "f64 layernorm");
  }
}

TEST(NormCuda, MisalignedViews) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  for (const DType dtype : kGpuDtypes)
    for (const int64_t d : {33, 768, 4097, 10000}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " d " + std::to_string(d));
      // Rows of d + 1 sliced from element 1: every row start is off by one element.
      const Tensor x = gpu_input(37, d + 1, dtype, -2.0).slice(1, 1, d + 1);
      const Tensor dy = randn({37, d + 1}, dtype, gpu).slice(1, 1, d + 1);
      // The parameters sliced too: misaligned weight / bias pointers.
      const Tensor w = randn({d + 1}, dtype, gpu).slice(0, 1, d + 1);
      const Tensor b = randn({d + 1}, dtype, gpu).slice(0, 1, d + 1);
      check_gpu(x, w, b, dy, false, "layernorm misaligned");
      check_gpu(x, w, Tensor(), dy, true, "rmsnorm misaligned");
    }
}

TEST(NormCuda, DeterministicParameterGradients) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  for (const DType dtype : kGpuDtypes)
    for (const auto& [rows, d] : {std::pair<int64_t, int64_t>{4096, 768}, {1000, 4097}, {3000, 33}}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + std::to_string(rows) + " x " + std::to_string(d));
      const Tensor x = gpu_input(rows, d, dtype, 0.5), dy = randn({rows, d}, dtype, gpu);
      const Tensor w = randn({d}, dtype, gpu), b = randn({d}, dtype, gpu);
      const kernels::NormResult f = kernels::layernorm(x, w, b, 1e-5);
      const kernels::NormGrads g1 = kernels::layernorm_backward(dy, x, w, f, true);
      const kernels::NormGrads g2 = kernels::layernorm_backward(dy, x, w, f, true);
      EXPECT_EQ(values(g1.dweight), values(g2.dweight));  // bit-identical (exact f64 widening)
      EXPECT_EQ(values(g1.dbias), values(g2.dbias));
      EXPECT_EQ(values(g1.dx), values(g2.dx));
      const kernels::NormResult r = kernels::rmsnorm(x, w, 1e-5);
      EXPECT_EQ(values(kernels::rmsnorm_backward(dy, x, w, r).dweight),
                values(kernels::rmsnorm_backward(dy, x, w, r).dweight));
    }
}

// check_gpu on random (rows, d) inputs of each dtype: layernorm and rmsnorm with their affine
// parameters, and (bias_only) layernorm with a bias alone.
void check_shapes(std::initializer_list<DType> dtypes, std::initializer_list<std::pair<int64_t, int64_t>> shapes,
                  bool bias_only) {
  const Device gpu = Device::cuda();
  for (const DType dtype : dtypes)
    for (const auto& [rows, d] : shapes) {
      const std::string what = std::string(dtype_name(dtype)) + " " + std::to_string(rows) + " x " +
                               std::to_string(d);
      SCOPED_TRACE(what);
      const Tensor x = gpu_input(rows, d, dtype, 1.0), dy = randn({rows, d}, dtype, gpu);
      const Tensor w = randn({d}, dtype, gpu), b = randn({d}, dtype, gpu);
      check_gpu(x, w, b, dy, false, "layernorm " + what);
      check_gpu(x, w, Tensor(), dy, true, "rmsnorm " + what);
      if (bias_only) check_gpu(x, Tensor(), b, dy, false, "layernorm bias only " + what);
    }
}

TEST(NormCuda, FusedParameterGradientsOverManyRows) {
  PIT_REQUIRE_CUDA();
  // More rows than the fused backward's blocks hold at once: each warp (d <= 1024) or block
  // (d <= 8192) adds several rows into its dweight / dbias partials.
  check_shapes({DType::f32, DType::bf16}, {{20000, 256}, {4099, 1000}, {700, 3000}}, false);
}

// The fused backward (d <= 1024 in whole 16-byte packs) adds its blocks' dweight / dbias partials
// in the same kernel after a grid synchronisation where the device allows a cooperative launch,
// else in a second kernel; PIT_NORM_NO_GRID_SYNC=1 forces the second way.
TEST(NormCuda, FusedBackwardWithoutGridSync) {
  PIT_REQUIRE_CUDA();
  ASSERT_EQ(setenv("PIT_NORM_NO_GRID_SYNC", "1", 1), 0);
  check_shapes({DType::f32, DType::bf16, DType::f16}, {{4099, 1024}, {37, 256}, {1, 64}}, true);
  ASSERT_EQ(unsetenv("PIT_NORM_NO_GRID_SYNC"), 0);
}

// Sets an environment variable for its lifetime.
struct EnvSet {
  const char* name;
  EnvSet(const char* n, const char* v) : name(n) { EXPECT_EQ(setenv(n, v, 1), 0); }
  ~EnvSet() { unsetenv(name); }
  EnvSet(const EnvSet&) = delete;
  EnvSet& operator=(const EnvSet&) = delete;
};

// On sm_90 the backward takes the bulk-copy kernel (ops/cuda/norm_bulk.cu) first, else (and with
// PIT_NORM_BULK=0) the cp.async one (norm_fused.cu). Both against the CPU on shapes whose blocks
// wrap their ring of row slots several times (48 / 96 / 192 slots for 4 / 2 / 1 packs a lane, one
// block an SM) and whose warps load more than one batch of 32 rows' statistics (40000 rows);
// ragged rows (packs not a multiple of 32), no weight. The two compute dx by the same expressions:
// bit for bit the same; dweight / dbias add their rows in other orders.
TEST(NormCuda, BulkAndCpAsyncBackwards) {
  PIT_REQUIRE_CUDA();
  manual_seed(11);
  const Device gpu = Device::cuda();
  for (const DType dtype : {DType::f32, DType::bf16}) {
    const int64_t unit = dtype == DType::f32 ? 1 : 2;  // f32 rows of half the elements, as many packs
    for (const auto& [rows, d] : {std::pair<int64_t, int64_t>{16384, 512 * unit},
                                  {20000, 200 * unit}, {30000, 100 * unit}, {40000, 32 * unit}}) {
      const std::string what = std::string(dtype_name(dtype)) + " " + std::to_string(rows) + " x " +
                               std::to_string(d);
      SCOPED_TRACE(what);
      const Tensor x = gpu_input(rows, d, dtype, 1.0), dy = randn({rows, d}, dtype, gpu);
      const Tensor w = randn({d}, dtype, gpu), b = randn({d}, dtype, gpu);
      const kernels::NormResult f = kernels::layernorm(x, w, b, 1e-5);
      check_gpu(x, w, b, dy, false, "layernorm " + what);
      check_gpu(x, w, Tensor(), dy, true, "rmsnorm " + what);
      check_gpu(x, Tensor(), b, dy, false, "layernorm bias only " + what);
#if PIT_WITH_CUDA
      const int64_t launches = cuda::norm_backward_bulk_launches();
#endif
      const kernels::NormGrads bulk = kernels::layernorm_backward(dy, x, w, f, true);
#if PIT_WITH_CUDA
      // On sm_90 these rows take the bulk kernel: the comparison below compares two kernels.
      if (cuda_compute_capability(gpu) == 90) {
        EXPECT_EQ(cuda::norm_backward_bulk_launches(), launches + 1) << "the bulk-copy backward declined these rows";
      }
#endif
      const EnvSet cp_async("PIT_NORM_BULK", "0");
      check_gpu(x, w, b, dy, false, "layernorm, cp.async " + what);
      check_gpu(x, w, Tensor(), dy, true, "rmsnorm, cp.async " + what);
      const kernels::NormGrads cp = kernels::layernorm_backward(dy, x, w, f, true);
      EXPECT_EQ(values(bulk.dx), values(cp.dx));
      const double t = dtype == DType::f32 ? 1e-5 : 1e-2;  // bf16: one rounding of either sum
      expect_close(bulk.dweight, cp.dweight, t, t, what + " dweight");
      expect_close(bulk.dbias, cp.dbias, t, t, what + " dbias");
    }
  }
  // The cp.async kernel's second way (no grid synchronisation).
  const EnvSet cp_async("PIT_NORM_BULK", "0"), no_sync("PIT_NORM_NO_GRID_SYNC", "1");
  check_shapes({DType::f32, DType::bf16}, {{4099, 512}, {37, 256}, {1, 64}}, true);
}

TEST(NormCuda, OpsBackwardMatchesCpu) {
  PIT_REQUIRE_CUDA();
  const Tensor x = randn({6, 300}, DType::f32), w = randn({300}), b = randn({300});
  const auto grads = [&](Device dev) {
    Variable xv(x.to(dev), true), wv(w.to(dev), true), bv(b.to(dev), true);
    ops::sum(ops::mul(ops::layernorm(xv, wv, bv), ops::rmsnorm(xv, wv))).backward();
    return std::vector<Tensor>{xv.grad(), wv.grad(), bv.grad()};
  };
  const std::vector<Tensor> g = grads(Device::cuda()), c = grads(Device::cpu());
  for (size_t i = 0; i < g.size(); ++i) expect_close(g[i], c[i], 1e-4, 1e-4, "grad " + std::to_string(i));
}

// Zero rows on the GPU, as the CPU's EmptyRowsAndErrors: an empty y and dx, statistics of no rows,
// and dweight / dbias the sums over no rows: zeros of [D], as on the CPU (the CUDA backward must
// fill them itself; its bulk and fused kernels decline zero rows). D 8: whole 16-byte packs;
// 4097: ragged, the general kernels.
TEST(NormCuda, ZeroRowsMatchCpu) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  const auto cpu = [](const Tensor& t) { return t.to(Device::cpu()); };
  for (const DType dtype : kGpuDtypes)
    for (const Shape& shape : {Shape{0, 8}, Shape{2, 0, 4097}})
      for (const bool rms : {false, true}) {
        SCOPED_TRACE(std::string(rms ? "rmsnorm " : "layernorm ") + dtype_name(dtype) + " " + shape_str(shape));
        const int64_t d = shape.back();
        const Tensor x = zeros(shape, dtype, gpu), w = randn({d}, dtype, gpu), b = randn({d}, dtype, gpu);
        const kernels::NormResult g = rms ? kernels::rmsnorm(x, w, 1e-5) : kernels::layernorm(x, w, b, 1e-5);
        const kernels::NormResult c =
            rms ? kernels::rmsnorm(cpu(x), cpu(w), 1e-5) : kernels::layernorm(cpu(x), cpu(w), cpu(b), 1e-5);
        const kernels::NormGrads gg =
            rms ? kernels::rmsnorm_backward(x, x, w, g) : kernels::layernorm_backward(x, x, w, g, true);
        const kernels::NormGrads cg = rms ? kernels::rmsnorm_backward(cpu(x), cpu(x), cpu(w), c)
                                          : kernels::layernorm_backward(cpu(x), cpu(x), cpu(w), c, true);
        std::vector<std::tuple<const char*, Tensor, Tensor>> outs{
            {"y", g.y, c.y}, {"rstd", g.rstd, c.rstd}, {"dx", gg.dx, cg.dx}, {"dweight", gg.dweight, cg.dweight}};
        if (!rms) {
          outs.emplace_back("mean", g.mean, c.mean);
          outs.emplace_back("dbias", gg.dbias, cg.dbias);
        }
        for (const auto& [name, got, want] : outs) {
          ASSERT_TRUE(got.defined() && want.defined()) << name;
          EXPECT_TRUE(got.is_cuda()) << name;
          EXPECT_EQ(got.dtype(), want.dtype()) << name;
          expect_close(got, want, 0.0, 0.0, name);  // dweight / dbias: exactly zero
        }
        EXPECT_EQ(values(gg.dweight), std::vector<double>(static_cast<size_t>(d), 0.0));
      }
}

}  // namespace
