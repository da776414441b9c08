// kernels::causal_attention, its backward and ops::causal_attention: the CPU kernels in f64
// against a naive reference (full T x T scores from kernels::matmul, masking, kernels::softmax),
// finite differences, edge cases and strided inputs; then the CUDA kernels (tensor-core and
// CUDA-core paths) against the same reference on fresh random inputs.
//
// GPU tolerances, per dtype, relative to the scale of the tensor compared (its largest
// magnitude, at least kScaleFloor): an element passes when
// |got - want| <= tol * (scale + |want|).
//   f32  1e-4: f32 math throughout; only summation order and expf/logf rounding differ.
//   f16  5e-3: P and dS are rounded to f16 (2^-11 relative) before the tensor-core products,
//              and the results are rounded to f16 once.
//   bf16 2e-2: the same with bf16's 2^-8 relative rounding.
// The lse is f32 on every path: 1e-4 absolute plus relative.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "autograd/gradcheck.h"
#include "core/random.h"
#include "core/thread_pool.h"
#include "ops/functional.h"
#include "ops/kernels.h"
#include "tests/gpu.h"

using namespace pit;

namespace {

std::vector<double> values(const Tensor& t) {
  return t.to(Device::cpu(), DType::f64).contiguous().to_vector<double>();
}

Tensor f64_cpu(const Tensor& t) { return t.to(Device::cpu(), DType::f64).contiguous(); }

struct Reference {
  Tensor out, lse, dq, dk, dv;
};

// Naive causal attention and its gradients in f64 on the CPU, with every T x T matrix built in
// full: S = q k^T * scale (kernels::matmul), masked above the diagonal, P = kernels::softmax(S),
// out = P v; dv = P^T dout, dP = dout v^T, dS = P (dP - rowsum(P dP)), dq = dS k * scale,
// dk = dS^T q * scale.
Reference naive(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const Tensor& dout_in) {
  const Tensor q = f64_cpu(q_in), k = f64_cpu(k_in), v = f64_cpu(v_in), dout = f64_cpu(dout_in);
  const int64_t b = q.size(0), h = q.size(1), t = q.size(2), dh = q.size(3), bh = b * h;
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  const Shape tt{b, h, t, t};
  std::vector<double> s = values(kernels::matmul(q, k.transpose(-1, -2)));
  std::vector<double> lse(static_cast<size_t>(bh * t));
  for (int64_t r = 0; r < bh * t; ++r) {
    const int64_t i = r % t;
    double* row = s.data() + r * t;
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < t; ++j) {
      row[j] = j > i ? -std::numeric_limits<double>::infinity() : row[j] * scale;
      m = std::max(m, row[j]);
    }
    double l = 0;
    for (int64_t j = 0; j <= i; ++j) l += std::exp(row[j] - m);
    lse[static_cast<size_t>(r)] = m + std::log(l);
  }
  const Tensor p = kernels::softmax(from_vector(s, tt), -1);
  Reference ref;
  ref.out = kernels::matmul(p, v);
  ref.lse = from_vector(lse, Shape{b, h, t});
  ref.dv = kernels::matmul(p.transpose(-1, -2), dout);
  const std::vector<double> pv = values(p), dp = values(kernels::matmul(dout, v.transpose(-1, -2)));
  std::vector<double> ds(pv.size());
  for (int64_t r = 0; r < bh * t; ++r) {
    double dot = 0;
    for (int64_t j = 0; j < t; ++j) dot += pv[static_cast<size_t>(r * t + j)] * dp[static_cast<size_t>(r * t + j)];
    for (int64_t j = 0; j < t; ++j) {
      const size_t e = static_cast<size_t>(r * t + j);
      ds[e] = pv[e] * (dp[e] - dot) * scale;  // the scale of dq and dk folded in
    }
  }
  const Tensor dst = from_vector(ds, tt);
  ref.dq = kernels::matmul(dst, k);
  ref.dk = kernels::matmul(dst.transpose(-1, -2), q);
  return ref;
}

// |got - want| <= atol + rtol * |want| everywhere; on failure the count, the worst absolute and
// relative errors and where they are.
void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol,
                  const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const std::vector<double> g = values(got), w = values(want);
  double worst_abs = 0, worst_rel = 0;
  size_t at_abs = 0, at_rel = 0;
  int64_t bad = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double err = std::abs(g[i] - w[i]), rel = err / std::max(std::abs(w[i]), 1e-300);
    if (err > worst_abs || std::isnan(err)) worst_abs = err, at_abs = i;
    if (rel > worst_rel || std::isnan(rel)) worst_rel = rel, at_rel = i;
    if (!(err <= atol + rtol * std::abs(w[i]))) ++bad;
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << g.size() << " outside tolerance (rtol "
                    << rtol << ", atol " << atol << "); worst abs error " << worst_abs
                    << " at flat index " << at_abs << " (got " << g[at_abs] << ", want "
                    << w[at_abs] << "), worst rel error " << worst_rel << " at flat index "
                    << at_rel << " (got " << g[at_rel] << ", want " << w[at_rel] << ")";
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double x : values(t)) m = std::max(m, std::abs(x));
  return m;
}

// Tolerance relative to the compared tensor's scale (see the top of the file).
constexpr double kScaleFloor = 0.1;
void expect_close_scaled(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  expect_close(got, want, tol, tol * std::max(max_abs(want), kScaleFloor), what);
}

void expect_equal(const Tensor& got, const Tensor& want, const std::string& what) {
  expect_close(got, want, 0.0, 0.0, what);
}

std::string label(const Shape& shape, DType dtype, const char* what) {
  return std::string(what) + " for " + shape_str(shape) + " " + dtype_name(dtype);
}

// ---- CPU ----------------------------------------------------------------------------------

class AttentionCpu : public ::testing::Test {
 protected:
  void SetUp() override { manual_seed(7); }
};

// {1, 2, 300, 4}: t > 256, several blocks of query rows with dK and dV accumulated across them.
TEST_F(AttentionCpu, MatchesNaiveReferenceF64) {
  for (const Shape& shape :
       std::vector<Shape>{{2, 3, 17, 8}, {1, 2, 1, 4}, {1, 1, 70, 16}, {2, 1, 33, 5}, {1, 2, 300, 4}}) {
    const Tensor q = randn(shape, DType::f64), k = randn(shape, DType::f64),
                 v = randn(shape, DType::f64), dout = randn(shape, DType::f64);
    const kernels::AttentionResult r = kernels::causal_attention(q, k, v);
    const kernels::AttentionGrads g = kernels::causal_attention_backward(dout, q, k, v, r);
    const Reference want = naive(q, k, v, dout);
    EXPECT_EQ(r.out.dtype(), DType::f64);
    EXPECT_EQ(r.lse.dtype(), DType::f32);
    expect_close(r.out, want.out, 1e-12, 1e-12, label(shape, DType::f64, "out"));
    expect_close(r.lse, want.lse, 1e-6, 1e-6, label(shape, DType::f64, "lse (f32)"));
    expect_close(g.dq, want.dq, 1e-10, 1e-11, label(shape, DType::f64, "dq"));
    expect_close(g.dk, want.dk, 1e-10, 1e-11, label(shape, DType::f64, "dk"));
    expect_close(g.dv, want.dv, 1e-10, 1e-11, label(shape, DType::f64, "dv"));
  }
}

// One thread (heads in turn) and several (heads in parallel, OpenBLAS single-threaded) give the
// same bits.
TEST_F(AttentionCpu, ResultsDoNotDependOnTheThreadCount) {
  const Shape shape{2, 3, 40, 8};
  const Tensor q = randn(shape, DType::f32), k = randn(shape, DType::f32), v = randn(shape, DType::f32),
               dout = randn(shape, DType::f32);
  const int saved = num_threads();
  std::vector<Tensor> runs[2];
  for (int i = 0; i < 2; ++i) {
    set_num_threads(i == 0 ? 1 : 4);
    const kernels::AttentionResult r = kernels::causal_attention(q, k, v);
    const kernels::AttentionGrads g = kernels::causal_attention_backward(dout, q, k, v, r);
    runs[i] = {r.out, r.lse, g.dq, g.dk, g.dv};
  }
  set_num_threads(saved);
  const char* names[] = {"out", "lse", "dq", "dk", "dv"};
  for (int j = 0; j < 5; ++j) expect_equal(runs[1][j], runs[0][j], std::string(names[j]) + ": 4 threads vs 1");
}

TEST_F(AttentionCpu, ReducedPrecisionDtypesRoundOnce) {
  const Shape shape{1, 2, 20, 12};
  for (const auto& [dtype, tol] : std::vector<std::pair<DType, double>>{
           {DType::f32, 1e-5}, {DType::f16, 2e-3}, {DType::bf16, 1e-2}}) {
    const Tensor q = randn(shape, dtype), k = randn(shape, dtype), v = randn(shape, dtype),
                 dout = randn(shape, dtype);
    const kernels::AttentionResult r = kernels::causal_attention(q, k, v);
    const kernels::AttentionGrads g = kernels::causal_attention_backward(dout, q, k, v, r);
    EXPECT_EQ(r.out.dtype(), dtype);
    EXPECT_EQ(g.dq.dtype(), dtype);
    const Reference want = naive(q, k, v, dout);
    expect_close_scaled(r.out, want.out, tol, label(shape, dtype, "out"));
    expect_close(r.lse, want.lse, 1e-5, 1e-5, label(shape, dtype, "lse"));
    expect_close_scaled(g.dq, want.dq, tol, label(shape, dtype, "dq"));
    expect_close_scaled(g.dk, want.dk, tol, label(shape, dtype, "dk"));
    expect_close_scaled(g.dv, want.dv, tol, label(shape, dtype, "dv"));
  }
}

TEST_F(AttentionCpu, SingleTokenAttendsToItself) {
  const Shape shape{2, 3, 1, 6};
  const Tensor q = randn(shape, DType::f64), k = randn(shape, DType::f64),
               v = randn(shape, DType::f64), dout = randn(shape, DType::f64);
  const kernels::AttentionResult r = kernels::causal_attention(q, k, v);
  expect_equal(r.out, v, "out of one token");
  // lse = q . k * scale: the one score.
  const std::vector<double> qv = values(q), kv = values(k);
  std::vector<double> want_lse;
  for (size_t row = 0; row < 6; ++row) {
    double s = 0;
    for (size_t d = 0; d < 6; ++d) s += qv[row * 6 + d] * kv[row * 6 + d];
    want_lse.push_back(s / std::sqrt(6.0));
  }
  expect_close(r.lse, from_vector(want_lse, Shape{2, 3, 1}), 1e-6, 1e-6, "lse of one token");
  const kernels::AttentionGrads g = kernels::causal_attention_backward(dout, q, k, v, r);
  expect_equal(g.dv, dout, "dv of one token");
  expect_close(g.dq, zeros(shape, DType::f64), 0, 1e-14, "dq of one token");
  expect_close(g.dk, zeros(shape, DType::f64), 0, 1e-14, "dk of one token");
}

TEST_F(AttentionCpu, StridedInputsGiveTheSameResults) {
  // (B, T, H, Dh) projections viewed as (B, H, T, Dh), as a transformer block produces them.
  const Shape bthd{2, 9, 3, 8};
  const Tensor q = randn(bthd, DType::f64).transpose(1, 2), k = randn(bthd, DType::f64).transpose(1, 2),
               v = randn(bthd, DType::f64).transpose(1, 2), dout = randn(bthd, DType::f64).transpose(1, 2);
  ASSERT_FALSE(q.is_contiguous());
  const kernels::AttentionResult r = kernels::causal_attention(q, k, v);
  const kernels::AttentionGrads g = kernels::causal_attention_backward(dout, q, k, v, r);
  const kernels::AttentionResult rc =
      kernels::causal_attention(q.contiguous(), k.contiguous(), v.contiguous());
  const kernels::AttentionGrads gc = kernels::causal_attention_backward(
      dout.contiguous(), q.contiguous(), k.contiguous(), v.contiguous(), rc);
  EXPECT_EQ(r.out.shape(), (Shape{2, 3, 9, 8}));
  EXPECT_TRUE(r.out.is_contiguous());
  expect_equal(r.out, rc.out, "out of strided inputs");
  expect_equal(r.lse, rc.lse, "lse of strided inputs");
  expect_equal(g.dq, gc.dq, "dq of strided inputs");
  expect_equal(g.dk, gc.dk, "dk of strided inputs");
  expect_equal(g.dv, gc.dv, "dv of strided inputs");
  const Reference want = naive(q, k, v, dout);
  expect_close(r.out, want.out, 1e-12, 1e-12, "out of strided inputs vs naive");
  expect_close(g.dq, want.dq, 1e-10, 1e-11, "dq of strided inputs vs naive");
}

TEST_F(AttentionCpu, EmptyBatch) {
  const Tensor x = randn({0, 2, 5, 4}, DType::f32);
  const kernels::AttentionResult r = kernels::causal_attention(x, x, x);
  EXPECT_EQ(r.out.shape(), (Shape{0, 2, 5, 4}));
  EXPECT_EQ(r.lse.shape(), (Shape{0, 2, 5}));
  const kernels::AttentionGrads g = kernels::causal_attention_backward(x, x, x, x, r);
  EXPECT_EQ(g.dq.shape(), (Shape{0, 2, 5, 4}));
}

TEST_F(AttentionCpu, RejectsBadInputs) {
  const Tensor x = randn({1, 2, 5, 4}, DType::f32);
  EXPECT_THROW(kernels::causal_attention(randn({2, 5, 4}), randn({2, 5, 4}), randn({2, 5, 4})), Error);
  EXPECT_THROW(kernels::causal_attention(x, randn({1, 2, 6, 4}), x), Error);
  EXPECT_THROW(kernels::causal_attention(x, x, randn({1, 2, 5, 4}, DType::f64)), Error);
  const Tensor ints = zeros({1, 2, 5, 4}, DType::i32);
  EXPECT_THROW(kernels::causal_attention(ints, ints, ints), Error);
  EXPECT_THROW(kernels::causal_attention(Tensor(), x, x), Error);
  try {
    kernels::causal_attention(x, randn({1, 2, 5, 8}), x);
    ADD_FAILURE() << "a head-dim mismatch was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[1, 2, 5, 8]"), std::string::npos) << e.what();
  }
  const kernels::AttentionResult r = kernels::causal_attention(x, x, x);
  EXPECT_THROW(kernels::causal_attention_backward(randn({1, 2, 5, 3}), x, x, x, r), Error);
  EXPECT_THROW(kernels::causal_attention_backward(x, x, x, x, {r.out, r.lse.to(DType::f64)}), Error);
  EXPECT_THROW(kernels::causal_attention_backward(x, x, x, x, {r.out, zeros({1, 2, 4})}), Error);
}

// ---- autograd -----------------------------------------------------------------------------

TEST(AttentionGradcheck, F64Small) {
  manual_seed(11);
  const Shape shape{1, 2, 5, 4};
  const GradcheckResult r = gradcheck(
      [](const std::vector<Variable>& x) { return ops::causal_attention(x[0], x[1], x[2]); },
      {randn(shape, DType::f64), randn(shape, DType::f64), randn(shape, DType::f64)});
  EXPECT_TRUE(r.ok) << r.report;
}

TEST(AttentionGradcheck, F64StridedViews) {
  manual_seed(12);
  const Shape bthd{1, 4, 2, 3};  // transposed to (1, 2, 4, 3) inside
  const GradcheckResult r = gradcheck(
      [](const std::vector<Variable>& x) {
        return ops::causal_attention(ops::transpose(x[0], 1, 2), ops::transpose(x[1], 1, 2),
                                     ops::transpose(x[2], 1, 2));
      },
      {randn(bthd, DType::f64), randn(bthd, DType::f64), randn(bthd, DType::f64)});
  EXPECT_TRUE(r.ok) << r.report;
}

TEST(AttentionAutograd, GradientsOnlyWhereRequired) {
  manual_seed(13);
  const Shape shape{1, 2, 6, 4};
  const Tensor qt = randn(shape, DType::f64), kt = randn(shape, DType::f64),
               vt = randn(shape, DType::f64), dout = randn(shape, DType::f64);
  Variable q(qt, true), k(kt, false), v(vt, true);
  const Variable out = ops::causal_attention(q, k, v);
  ASSERT_TRUE(out.requires_grad());
  out.backward(dout);
  const Reference want = naive(qt, kt, vt, dout);
  expect_close(q.grad(), want.dq, 1e-10, 1e-11, "q.grad");
  expect_close(v.grad(), want.dv, 1e-10, 1e-11, "v.grad");
  EXPECT_FALSE(k.grad().defined());
  const Variable plain = ops::causal_attention(Variable(qt), Variable(kt), Variable(vt));
  EXPECT_FALSE(plain.requires_grad());
}

// ---- CUDA ---------------------------------------------------------------------------------

double gpu_tol(DType dtype) {
  switch (dtype) {
    case DType::f32: return 1e-4;
    case DType::f16: return 5e-3;
    default: return 2e-2;  // bf16
  }
}

// Forward and backward on the GPU against the naive f64 reference on the same (rounded) inputs.
void check_gpu(const Shape& shape, DType dtype) {
  const Device gpu = Device::cuda();
  const Tensor q = randn(shape, dtype, gpu), k = randn(shape, dtype, gpu),
               v = randn(shape, dtype, gpu), dout = randn(shape, dtype, gpu);
  const kernels::AttentionResult r = kernels::causal_attention(q, k, v);
  const kernels::AttentionGrads g = kernels::causal_attention_backward(dout, q, k, v, r);
  ASSERT_TRUE(r.out.is_cuda());
  ASSERT_EQ(r.lse.dtype(), DType::f32);
  const Reference want = naive(q, k, v, dout);
  const double tol = gpu_tol(dtype);
  expect_close_scaled(r.out, want.out, tol, label(shape, dtype, "cuda out"));
  expect_close(r.lse, want.lse, 1e-4, 1e-4, label(shape, dtype, "cuda lse"));
  expect_close_scaled(g.dq, want.dq, tol, label(shape, dtype, "cuda dq"));
  expect_close_scaled(g.dk, want.dk, tol, label(shape, dtype, "cuda dk"));
  expect_close_scaled(g.dv, want.dv, tol, label(shape, dtype, "cuda dv"));
}

// B x H chosen so that the naive reference stays small for long sequences.
Shape gpu_shape(int64_t t, int64_t dh) {
  return t >= 1024 ? Shape{1, 2, t, dh} : Shape{2, 3, t, dh};
}

class AttentionCuda : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override { manual_seed(21); }
};

// f16/bf16 at dh 64 and 128 take the tensor-core kernels; f32 the CUDA-core ones.
TEST_P(AttentionCuda, MatchesReferenceAtHeadDims64And128) {
  PIT_REQUIRE_CUDA();
  const DType dtype = GetParam();
  for (int64_t dh : {64, 128})
    for (int64_t t : {1, 7, 63, 65, 200, 1024}) {
      SCOPED_TRACE("dh " + std::to_string(dh) + ", t " + std::to_string(t));
      check_gpu(gpu_shape(t, dh), dtype);
    }
}

// Other head dims take the CUDA-core kernels whatever the dtype.
TEST_P(AttentionCuda, MatchesReferenceAtOtherHeadDims) {
  PIT_REQUIRE_CUDA();
  const DType dtype = GetParam();
  for (int64_t dh : {8, 32, 80, 256})
    for (int64_t t : {1, 31, 65, 130}) {
      SCOPED_TRACE("dh " + std::to_string(dh) + ", t " + std::to_string(t));
      check_gpu(Shape{1, 3, t, dh}, dtype);
    }
}

TEST_P(AttentionCuda, StridedAndMisalignedInputs) {
  PIT_REQUIRE_CUDA();
  const DType dtype = GetParam();
  const Device gpu = Device::cuda();
  const Shape bthd{2, 70, 3, 64};
  const Tensor q = randn(bthd, dtype, gpu).transpose(1, 2), k = randn(bthd, dtype, gpu).transpose(1, 2),
               v = randn(bthd, dtype, gpu).transpose(1, 2), dout = randn(bthd, dtype, gpu).transpose(1, 2);
  const kernels::AttentionResult r = kernels::causal_attention(q, k, v);
  const kernels::AttentionGrads g = kernels::causal_attention_backward(dout, q, k, v, r);
  const kernels::AttentionResult rc =
      kernels::causal_attention(q.contiguous(), k.contiguous(), v.contiguous());
  const kernels::AttentionGrads gc = kernels::causal_attention_backward(
      dout.contiguous(), q.contiguous(), k.contiguous(), v.contiguous(), rc);
  expect_equal(r.out, rc.out, "cuda out of strided inputs");
  expect_equal(r.lse, rc.lse, "cuda lse of strided inputs");
  expect_equal(g.dq, gc.dq, "cuda dq of strided inputs");
  expect_equal(g.dk, gc.dk, "cuda dk of strided inputs");
  expect_equal(g.dv, gc.dv, "cuda dv of strided inputs");

  // Contiguous views starting one element into their storage: not 16-byte aligned, so f16/bf16
  // fall back from the tensor-core kernels to the CUDA-core ones.
  const Shape shape{1, 2, 40, 64};
  const int64_t n = shape_numel(shape);
  const auto shifted = [&] { return randn({n + 1}, dtype, gpu).slice(0, 1, n + 1).view(shape); };
  const Tensor qs = shifted(), ks = shifted(), vs = shifted(), gs = shifted();
  ASSERT_TRUE(qs.is_contiguous());
  const kernels::AttentionResult rs = kernels::causal_attention(qs, ks, vs);
  const kernels::AttentionGrads gr = kernels::causal_attention_backward(gs, qs, ks, vs, rs);
  const Reference want = naive(qs, ks, vs, gs);
  const double tol = gpu_tol(dtype);
  expect_close_scaled(rs.out, want.out, tol, "cuda out of misaligned inputs");
  expect_close_scaled(gr.dq, want.dq, tol, "cuda dq of misaligned inputs");
  expect_close_scaled(gr.dk, want.dk, tol, "cuda dk of misaligned inputs");
  expect_close_scaled(gr.dv, want.dv, tol, "cuda dv of misaligned inputs");
}

// No atomics: two runs give bitwise identical results.
TEST_P(AttentionCuda, Deterministic) {
  PIT_REQUIRE_CUDA();
  const DType dtype = GetParam();
  const Device gpu = Device::cuda();
  const Shape shape{2, 2, 300, 64};
  const Tensor q = randn(shape, dtype, gpu), k = randn(shape, dtype, gpu),
               v = randn(shape, dtype, gpu), dout = randn(shape, dtype, gpu);
  const kernels::AttentionResult r1 = kernels::causal_attention(q, k, v);
  const kernels::AttentionGrads g1 = kernels::causal_attention_backward(dout, q, k, v, r1);
  const kernels::AttentionResult r2 = kernels::causal_attention(q, k, v);
  const kernels::AttentionGrads g2 = kernels::causal_attention_backward(dout, q, k, v, r2);
  expect_equal(r1.out, r2.out, "out, run 2");
  expect_equal(g1.dq, g2.dq, "dq, run 2");
  expect_equal(g1.dk, g2.dk, "dk, run 2");
  expect_equal(g1.dv, g2.dv, "dv, run 2");
}

// The differentiable op on the GPU gives the kernels' gradients.
TEST_P(AttentionCuda, AutogradMatchesKernels) {
  PIT_REQUIRE_CUDA();
  const DType dtype = GetParam();
  const Device gpu = Device::cuda();
  const Shape shape{1, 2, 50, 64};
  const Tensor qt = randn(shape, dtype, gpu), kt = randn(shape, dtype, gpu),
               vt = randn(shape, dtype, gpu), dout = randn(shape, dtype, gpu);
  Variable q(qt, true), k(kt, true), v(vt, true);
  const Variable out = ops::causal_attention(q, k, v);
  out.backward(dout);
  const kernels::AttentionResult r = kernels::causal_attention(qt, kt, vt);
  const kernels::AttentionGrads g = kernels::causal_attention_backward(dout, qt, kt, vt, r);
  expect_equal(out.data(), r.out, "autograd out");
  expect_equal(q.grad(), g.dq, "autograd dq");
  expect_equal(k.grad(), g.dk, "autograd dk");
  expect_equal(v.grad(), g.dv, "autograd dv");
}

// Empty batches and sequences on the GPU, as the CPU's EmptyBatch: B = 0, H = 0 and T = 0 give
// empty out / dq / dk / dv in the inputs' dtype and an empty f32 lse, like the CPU's, at head dims
// of the tensor-core (64) and CUDA-core (8) kernels; none of them may launch on zero rows.
TEST_P(AttentionCuda, EmptyBatchHeadsAndSequence) {
  PIT_REQUIRE_CUDA();
  const DType dtype = GetParam();
  for (const Shape& shape : {Shape{0, 2, 5, 64}, Shape{2, 0, 5, 8}, Shape{2, 3, 0, 64}, Shape{1, 2, 0, 8}}) {
    SCOPED_TRACE(label(shape, dtype, "empty attention"));
    const Tensor x = zeros(shape, dtype, Device::cuda()), xc = x.to(Device::cpu());
    const kernels::AttentionResult r = kernels::causal_attention(x, x, x);
    const kernels::AttentionResult rc = kernels::causal_attention(xc, xc, xc);
    const kernels::AttentionGrads g = kernels::causal_attention_backward(x, x, x, x, r);
    const kernels::AttentionGrads gc = kernels::causal_attention_backward(xc, xc, xc, xc, rc);
    const std::pair<Tensor, Tensor> outs[] = {
        {r.out, rc.out}, {r.lse, rc.lse}, {g.dq, gc.dq}, {g.dk, gc.dk}, {g.dv, gc.dv}};
    for (const auto& [got, want] : outs) {
      EXPECT_TRUE(got.is_cuda());
      EXPECT_EQ(got.dtype(), want.dtype());
      EXPECT_EQ(got.shape(), want.shape());
    }
    EXPECT_EQ(r.lse.shape(), (Shape{shape[0], shape[1], shape[2]}));
  }
}

TEST(AttentionCudaChecks, RejectsUnsupported) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  const Tensor x64 = randn({1, 1, 4, 8}, DType::f64, gpu);
  EXPECT_THROW(kernels::causal_attention(x64, x64, x64), Error);
  const Tensor wide = randn({1, 1, 4, 264}, DType::f32, gpu);
  EXPECT_THROW(kernels::causal_attention(wide, wide, wide), Error);
  const Tensor cpu = randn({1, 1, 4, 8});
  const Tensor x = randn({1, 1, 4, 8}, DType::f32, gpu);
  EXPECT_THROW(kernels::causal_attention(x, cpu, x), Error);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, AttentionCuda,
                         ::testing::Values(DType::f32, DType::bf16, DType::f16),
                         [](const ::testing::TestParamInfo<DType>& p) {
                           return std::string(dtype_name(p.param));
                         });

}  // namespace
