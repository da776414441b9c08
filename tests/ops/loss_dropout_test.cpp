// kernels::cross_entropy / dropout and their backward: CPU f64 against straightforward
// references, target validation, reductions; gradcheck of ops::cross_entropy (ignored rows,
// label smoothing, every reduction) and ops::dropout; the CUDA kernels against the CPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "core/random.h"
#include "ops/functional.h"
#include "ops/kernels.h"
#include "tests/core/expect_error.h"
#include "tests/gpu.h"
#include "tests/ops/check.h"

using namespace pit;
using namespace pit::test;

namespace {


void expect_gradcheck(const std::function<Variable(const std::vector<Variable>&)>& fn,
                      const std::vector<Tensor>& inputs, const std::string& what) {
  const GradcheckResult r = gradcheck(fn, inputs);
  EXPECT_TRUE(r.ok) << what << ": " << r.report;
}

constexpr int64_t kIgnore = -100;

// Random targets in [0, classes) with every `ignore_every`-th row (from row 1) ignored.
Tensor make_targets(int64_t rows, int64_t classes, int64_t ignore_every = 3) {
  const std::vector<double> u = values(rand({rows}, DType::f64));
  std::vector<int64_t> t(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r)
    t[static_cast<size_t>(r)] = (ignore_every > 0 && r % ignore_every == 1)
                                    ? kIgnore
                                    : std::min<int64_t>(classes - 1, static_cast<int64_t>(u[static_cast<size_t>(r)] * static_cast<double>(classes)));
  return from_vector(t);
}

// ---- references ---------------------------------------------------------------------------------

struct RefCe {
  std::vector<double> loss, lse, dx;
};

// Per-row loss and lse from log-softmax written out, and the gradient of sum_r g_r loss_r.
RefCe ref_ce(const std::vector<double>& x, const std::vector<int64_t>& t, int64_t classes,
             double eps, const std::vector<double>& g) {
  RefCe r;
  const int64_t rows = static_cast<int64_t>(t.size());
  r.dx.assign(x.size(), 0.0);
  for (int64_t i = 0; i < rows; ++i) {
    const double* xr = &x[static_cast<size_t>(i * classes)];
    const int64_t ti = t[static_cast<size_t>(i)];
    if (ti == kIgnore) {
      r.loss.push_back(0);
      r.lse.push_back(0);
      continue;
    }
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t c = 0; c < classes; ++c) mx = std::max(mx, xr[c]);
    double s = 0;
    for (int64_t c = 0; c < classes; ++c) s += std::exp(xr[c] - mx);
    const double lse = mx + std::log(s);
    double smooth = 0;  // mean over classes of -log p_c
    for (int64_t c = 0; c < classes; ++c) smooth += (lse - xr[c]) / static_cast<double>(classes);
    r.loss.push_back((1 - eps) * (lse - xr[ti]) + eps * smooth);
    r.lse.push_back(lse);
    for (int64_t c = 0; c < classes; ++c) {
      const double p = std::exp(xr[c] - lse);
      const double target = (c == ti ? 1 - eps : 0.0) + eps / static_cast<double>(classes);
      r.dx[static_cast<size_t>(i * classes + c)] = g[static_cast<size_t>(i)] * (p - target);
    }
  }
  return r;
}

class LossTest : public ::testing::Test {
 protected:
  void SetUp() override { manual_seed(99); }
};

// ---- cross-entropy on the CPU -----------------------------------------------------------------

TEST_F(LossTest, CrossEntropyMatchesReference) {
  for (const auto& [rows, classes] : {std::pair<int64_t, int64_t>{7, 10}, {5, 1}, {3, 300}}) {
    for (const double eps : {0.0, 0.1, 1.0}) {
      SCOPED_TRACE(std::to_string(rows) + " x " + std::to_string(classes) + " eps " + std::to_string(eps));
      const Tensor x = randn({rows, classes}, DType::f64);
      const Tensor t = make_targets(rows, classes);
      const Tensor g = randn({rows}, DType::f64);
      const RefCe ref = ref_ce(values(x), t.to_vector<int64_t>(), classes, eps, values(g));
      const kernels::CrossEntropyResult r = kernels::cross_entropy(x, t, kIgnore, eps);
      EXPECT_EQ(r.loss.dtype(), DType::f64);
      expect_close(r.loss, from_vector(ref.loss), 1e-12, 1e-12, "loss");
      expect_close(r.lse, from_vector(ref.lse), 1e-12, 1e-12, "lse");
      const Tensor dx = kernels::cross_entropy_backward(g, x, t, r, kIgnore, eps);
      expect_close(dx, from_vector(ref.dx, {rows, classes}), 1e-12, 1e-12, "dlogits");
    }
  }
}

TEST_F(LossTest, CrossEntropyTargetsAndLayouts) {
  const Tensor x = randn({6, 9}, DType::f64);
  const Tensor t = make_targets(6, 9);
  const kernels::CrossEntropyResult r = kernels::cross_entropy(x, t, kIgnore, 0.05);
  // i32 targets give the same bits.
  const kernels::CrossEntropyResult r32 = kernels::cross_entropy(x, t.to(DType::i32), kIgnore, 0.05);
  EXPECT_EQ(values(r.loss), values(r32.loss));
  // A misaligned view and a transposed (copied) view of the same logits.
  const Tensor wide = randn({6, 10}, DType::f64);
  const Tensor sliced = wide.slice(1, 1, 10);
  EXPECT_EQ(values(kernels::cross_entropy(sliced, t, kIgnore, 0.0).loss),
            values(kernels::cross_entropy(sliced.contiguous(), t, kIgnore, 0.0).loss));
  const Tensor tr = randn({9, 6}, DType::f64).t();
  const Tensor g = randn({6}, DType::f64);
  const kernels::CrossEntropyResult rt = kernels::cross_entropy(tr, t, kIgnore, 0.0);
  EXPECT_EQ(values(kernels::cross_entropy_backward(g, tr, t, rt, kIgnore, 0.0)),
            values(kernels::cross_entropy_backward(g, tr.contiguous(), t, rt, kIgnore, 0.0)));
  // Logits (2, 3, C) with targets (2, 3): per-row losses shaped (2, 3).
  const Tensor x3 = randn({2, 3, 5}, DType::f64);
  const Tensor t3 = from_vector(std::vector<int64_t>{0, 4, kIgnore, 2, 1, 3}, {2, 3});
  const kernels::CrossEntropyResult r3 = kernels::cross_entropy(x3, t3, kIgnore, 0.0);
  EXPECT_EQ(r3.loss.shape(), (Shape{2, 3}));
  EXPECT_EQ(values(r3.loss), values(kernels::cross_entropy(x3.reshape({6, 5}), t3.reshape({6}), kIgnore, 0.0).loss));
  // A custom ignore_index inside the class range is ignored too.
  const Tensor tc = from_vector(std::vector<int64_t>{3, 3, 0, 1, 3, 2});
  const std::vector<double> lc = values(kernels::cross_entropy(x, tc, 3, 0.0).loss);
  EXPECT_EQ(lc[0], 0.0);
  EXPECT_NE(lc[2], 0.0);
}

TEST_F(LossTest, CrossEntropyRejectsOutOfRangeTargets) {
  const Tensor x = randn({3, 10});
  for (const int64_t bad : {10, 11, -1, -99}) {
    const Tensor t = from_vector(std::vector<int64_t>{0, bad, 9});
    try {
      kernels::cross_entropy(x, t, kIgnore, 0.0);
      ADD_FAILURE() << "target " << bad << " did not throw";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("out of range"), std::string::npos) << msg;
      EXPECT_NE(msg.find("row 1"), std::string::npos) << msg;
    }
    EXPECT_THROW(ops::cross_entropy(Variable(x, true), t), Error);
  }
  EXPECT_THROW(kernels::cross_entropy(x, from_vector(std::vector<double>{0, 1, 2}), kIgnore, 0.0), Error);
  EXPECT_THROW(kernels::cross_entropy(x, from_vector(std::vector<int64_t>{0, 1}), kIgnore, 0.0), Error);
  EXPECT_THROW(kernels::cross_entropy(x, from_vector(std::vector<int64_t>{0, 1, 2}), kIgnore, 1.5), Error);
}

TEST_F(LossTest, CrossEntropyMaskedLogits) {
  // -inf logits (masked classes): finite loss without smoothing, zero gradient there.
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor x = from_vector(std::vector<double>{1, -inf, 2, -inf, -inf, 0.5}, {2, 3});
  const Tensor t = from_vector(std::vector<int64_t>{2, 2});
  const kernels::CrossEntropyResult r = kernels::cross_entropy(x, t, kIgnore, 0.0);
  const std::vector<double> l = values(r.loss);
  EXPECT_NEAR(l[0], std::log(std::exp(1.0) + std::exp(2.0)) - 2.0, 1e-12);
  EXPECT_NEAR(l[1], 0.0, 1e-12);
  const std::vector<double> dx = values(kernels::cross_entropy_backward(ones({2}, DType::f64), x, t, r, kIgnore, 0.0));
  EXPECT_EQ(dx[1], 0.0);
  EXPECT_EQ(dx[3], 0.0);
  EXPECT_EQ(dx[4], 0.0);
}

TEST_F(LossTest, CrossEntropyReductions) {
  const Tensor x = randn({8, 6}, DType::f64);
  const Tensor t = make_targets(8, 6);  // rows 1, 4, 7 ignored
  const std::vector<double> per_row = values(kernels::cross_entropy(x, t, kIgnore, 0.1).loss);
  double sum = 0;
  for (const double v : per_row) sum += v;
  const Variable xv(x, true);
  EXPECT_NEAR(ops::cross_entropy(xv, t, kIgnore, 0.1, ops::Reduction::sum).data().item<double>(), sum, 1e-12);
  EXPECT_NEAR(ops::cross_entropy(xv, t, kIgnore, 0.1).data().item<double>(), sum / 5, 1e-12);
  EXPECT_EQ(values(ops::cross_entropy(xv, t, kIgnore, 0.1, ops::Reduction::none).data()), per_row);
  // Every row ignored: the mean is 0 and so is the gradient.
  const Tensor none = full({8}, static_cast<double>(kIgnore), DType::i64);
  const Variable xa(x, true);
  const Variable loss = ops::cross_entropy(xa, none);
  EXPECT_EQ(loss.data().item<double>(), 0.0);
  loss.backward();
  EXPECT_EQ(values(xa.grad()), std::vector<double>(48, 0.0));
  // f32 logits give an f32 loss; bf16 logits an f32 loss too.
  EXPECT_EQ(ops::cross_entropy(Variable(randn({2, 3})), from_vector(std::vector<int64_t>{0, 1})).dtype(), DType::f32);
  EXPECT_EQ(ops::cross_entropy(Variable(randn({2, 3}, DType::bf16)), from_vector(std::vector<int64_t>{0, 1})).dtype(),
            DType::f32);
}

TEST_F(LossTest, CrossEntropyGradcheck) {
  const Tensor t = make_targets(6, 5);  // rows 1 and 4 ignored
  for (const double eps : {0.0, 0.1}) {
    for (const ops::Reduction red : {ops::Reduction::mean, ops::Reduction::sum, ops::Reduction::none}) {
      const std::string what = "eps " + std::to_string(eps) + " reduction " + std::to_string(static_cast<int>(red));
      expect_gradcheck([&](const auto& v) { return ops::cross_entropy(v[0], t, kIgnore, eps, red); },
                       {randn({6, 5}, DType::f64)}, what);
    }
  }
  // (B, T, C) logits, and the loss composed with other ops.
  const Tensor t3 = from_vector(std::vector<int64_t>{0, 4, kIgnore, 2, 1, 3}, {2, 3});
  expect_gradcheck([&](const auto& v) { return ops::cross_entropy(ops::tanh(v[0]), t3, kIgnore, 0.2); },
                   {randn({2, 3, 5}, DType::f64)}, "3-d logits");
}

// ---- dropout on the CPU -------------------------------------------------------------------------

TEST_F(LossTest, DropoutMaskFollowsPhilox) {
  const uint64_t seed = 1234, offset = 77;
  for (const double p : {0.1, 0.5, 0.9}) {
    const Tensor x = randn({37, 29}, DType::f32);  // 1073 elements: a partial last group of four
    const kernels::DropoutResult r = kernels::dropout(x, p, seed, offset);
    ASSERT_EQ(r.mask.dtype(), DType::u8);
    const std::vector<uint8_t> m = r.mask.to_vector<uint8_t>();
    const std::vector<float> xv = x.to_vector<float>(), yv = r.y.to_vector<float>();
    const float scale = static_cast<float>(1.0 / (1.0 - p));
    int64_t kept = 0;
    for (size_t i = 0; i < m.size(); ++i) {
      const bool keep = philox_uniform(seed, offset, i) >= static_cast<float>(p);
      ASSERT_EQ(m[i], keep ? 1 : 0) << "element " << i;
      ASSERT_EQ(yv[i], keep ? xv[i] * scale : 0.0f) << "element " << i;
      kept += keep;
    }
    // 1073 draws: the keep rate is within 5 standard deviations of 1 - p.
    const double n = static_cast<double>(m.size()), sd = std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(static_cast<double>(kept) / n, 1 - p, 5 * sd) << "p " << p;
    // Backward: the same mask and scale.
    const Tensor dy = randn({37, 29});
    const std::vector<float> dx = kernels::dropout_backward(dy, r.mask, p).to_vector<float>();
    const std::vector<float> dyv = dy.to_vector<float>();
    for (size_t i = 0; i < m.size(); ++i) ASSERT_EQ(dx[i], m[i] ? dyv[i] * scale : 0.0f);
  }
  // A strided input: element i is the i-th in row-major order.
  const Tensor xt = randn({8, 5}, DType::f64).t();
  EXPECT_EQ(values(kernels::dropout(xt, 0.4, seed, offset).y),
            values(kernels::dropout(xt.contiguous(), 0.4, seed, offset).y));
  EXPECT_THROW(kernels::dropout(xt, 1.0, seed, offset), Error);
  EXPECT_THROW(kernels::dropout(xt, -0.5, seed, offset), Error);
}

TEST_F(LossTest, DropoutOps) {
  const Variable x(randn({4, 50}), true);
  // Identity when not training or p == 0: the same Variable.
  EXPECT_TRUE(ops::dropout(x, 0.5, false).same(x));
  EXPECT_TRUE(ops::dropout(x, 0.0).same(x));
  EXPECT_THROW(ops::dropout(x, 1.0), Error);
  EXPECT_THROW(ops::dropout(x, -0.1), Error);
  EXPECT_THROW(ops::dropout(x, 1.0, false), Error);
  // Successive calls draw fresh masks; reseeding repeats them.
  manual_seed(5);
  const std::vector<double> a = values(ops::dropout(x, 0.5).data());
  const std::vector<double> b = values(ops::dropout(x, 0.5).data());
  EXPECT_NE(a, b);
  manual_seed(5);
  EXPECT_EQ(values(ops::dropout(x, 0.5).data()), a);
  // The draw reserved the tensor's elements from the generator.
  manual_seed(5);
  (void)ops::dropout(x, 0.5);
  EXPECT_EQ(default_generator().offset(), 50u);  // 200 elements / 4 per block
  // Backward routes the gradient through the mask.
  const Variable y = ops::dropout(x, 0.25);
  ops::sum(y).backward();
  const std::vector<double> gy = values(x.grad()), yv = values(y.data());
  const double scale = static_cast<float>(1.0 / 0.75);  // f32 scaling of an f32 gradient
  for (size_t i = 0; i < gy.size(); ++i) EXPECT_EQ(gy[i], yv[i] != 0.0 ? scale : 0.0) << i;
}

TEST_F(LossTest, DropoutGradcheck) {
  for (const double p : {0.2, 0.5}) {
    // Reseeding inside fn gives every evaluation the same mask.
    expect_gradcheck(
        [p](const auto& v) {
          manual_seed(2024);
          return ops::dropout(ops::tanh(v[0]), p);
        },
        {randn({5, 7}, DType::f64)}, "p " + std::to_string(p));
  }
}

// ---- CUDA against the CPU ------------------------------------------------------------------------

const DType kGpuDtypes[] = {DType::f32, DType::bf16, DType::f16};

// Tolerance of the CUDA dlogits (f32 math, rounded once to the dtype) against the CPU f64
// kernels on the same rounded logits, as in expect_close: f32 2e-5, f16 2e-3 (2^-11
// rounding), bf16 1e-2 (2^-8 rounding). The losses and lse are f32 for every dtype (never
// rounded to it) and computed in f32 over up to 50257 classes: 2e-5 relative to the row's
// scale.
double grad_tol(DType dtype) {
  switch (dtype) {
    case DType::f16: return 2e-3;
    case DType::bf16: return 1e-2;
    default: return 2e-5;
  }
}
constexpr double kLossTol = 2e-5;

void check_ce_gpu(const Tensor& logits, const Tensor& targets, double eps, const std::string& what) {
  const Tensor cpu_logits = logits.to(Device::cpu(), DType::f64);
  const Tensor cpu_targets = targets.to(Device::cpu());
  const kernels::CrossEntropyResult g = kernels::cross_entropy(logits, targets, kIgnore, eps);
  const kernels::CrossEntropyResult c = kernels::cross_entropy(cpu_logits, cpu_targets, kIgnore, eps);
  EXPECT_EQ(g.loss.dtype(), DType::f32);
  expect_close(g.loss, c.loss, kLossTol, kLossTol, what + " loss");
  expect_close(g.lse, c.lse, kLossTol, kLossTol, what + " lse");
  const Tensor gl = randn({targets.numel()}, DType::f32);
  const Tensor dg = kernels::cross_entropy_backward(gl.to(Device::cuda()), logits, targets, g, kIgnore, eps);
  const Tensor dc = kernels::cross_entropy_backward(gl.to(DType::f64), cpu_logits, cpu_targets, c, kIgnore, eps);
  expect_close(dg, dc, grad_tol(logits.dtype()), grad_tol(logits.dtype()), what + " dlogits");
}

TEST(LossCuda, CrossEntropyMatchesCpu) {
  PIT_REQUIRE_CUDA();
  manual_seed(11);
  const Device gpu = Device::cuda();
  // 10, 1000: a warp per row; 1025, 4097: a 256-thread block; 50257: a 512-thread block with
  // misaligned rows (50257 is odd) walked as head + packs + tail.
  const std::pair<int64_t, int64_t> shapes[] = {{1, 10},   {7, 10},   {1000, 10}, {33, 1000},
                                                {9, 1025}, {5, 4097}, {1, 50257}, {7, 50257},
                                                {64, 50257}};
  for (const DType dtype : kGpuDtypes)
    for (const auto& [rows, classes] : shapes)
      for (const double eps : {0.0, 0.1}) {
        const std::string what = std::string(dtype_name(dtype)) + " " + std::to_string(rows) + " x " +
                                 std::to_string(classes) + " eps " + std::to_string(eps);
        SCOPED_TRACE(what);
        const Tensor logits = (randn({rows, classes}, DType::f32, gpu)).to(dtype);
        const Tensor targets = make_targets(rows, classes);
        check_ce_gpu(logits, targets.to(gpu), eps, "gpu targets");
        check_ce_gpu(logits, targets.to(DType::i32), eps, "cpu i32 targets");
      }
}

TEST(LossCuda, CrossEntropyMisalignedViews) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  for (const DType dtype : kGpuDtypes)
    for (const int64_t classes : {10, 1024, 50257}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + std::to_string(classes));
      const Tensor logits = randn({6, classes + 1}, DType::f32, gpu).to(dtype).slice(1, 1, classes + 1);
      check_ce_gpu(logits, make_targets(6, classes).to(gpu), 0.1, "sliced from element 1");
    }
}

TEST(LossCuda, CrossEntropyBadTargets) {
  PIT_REQUIRE_CUDA();
  const Tensor logits = randn({3, 10}, DType::f32, Device::cuda());
  const Tensor bad = from_vector(std::vector<int64_t>{1, 10, 2});
  // CPU targets are validated on the host.
  EXPECT_THROW(kernels::cross_entropy(logits, bad, kIgnore, 0.0), Error);
  // GPU targets are checked by the kernel without a synchronisation: the call returns, and the
  // next host read throws, naming the target, its row and the class count.
  kernels::CrossEntropyResult r;
  ASSERT_NO_THROW(r = kernels::cross_entropy(logits, bad.to(Device::cuda()), kIgnore, 0.0));
  expect_error_contains_all(
      [&] { values(r.loss); },
      {"target 10 is out of range for cross_entropy along the class dim of size 10",
       "valid: [0, 10) or ignore_index", "at row 1;", "detected on cuda:0", "fix the targets"});
  // The error is taken: the same data reads again. The bad row's loss and gradient are NaN
  // (backward does not report again), the others exact.
  std::vector<double> l;
  ASSERT_NO_THROW(l = values(r.loss));
  EXPECT_TRUE(std::isnan(l[1]));
  EXPECT_TRUE(std::isfinite(l[0]) && std::isfinite(l[2]));
  std::vector<double> dx;
  ASSERT_NO_THROW(dx = values(kernels::cross_entropy_backward(ones({3}, DType::f32, Device::cuda()), logits,
                                                              bad.to(Device::cuda()), r, kIgnore, 0.0)));
  for (int c = 0; c < 10; ++c) {
    EXPECT_TRUE(std::isnan(dx[static_cast<size_t>(10 + c)]));
    EXPECT_TRUE(std::isfinite(dx[static_cast<size_t>(c)]));
  }
}

// CPU logits with GPU targets: the targets are checked on the host once copied there (the CPU
// kernel has no error slot, so a bad target would give a NaN row without a word).
TEST(LossCuda, CrossEntropyBadGpuTargetsForCpuLogits) {
  PIT_REQUIRE_CUDA();
  const Tensor logits = randn({3, 10}, DType::f32);
  const Tensor bad = from_vector(std::vector<int64_t>{0, 10, 2}).to(Device::cuda());
  expect_error_contains_all([&] { (void)kernels::cross_entropy(logits, bad, kIgnore, 0.0); },
                            {"target 10 (row 1) is out of range for 10 classes"});
  const Tensor good = from_vector(std::vector<int64_t>{0, kIgnore, 2}).to(Device::cuda());
  const kernels::CrossEntropyResult r = kernels::cross_entropy(logits, good, kIgnore, 0.0);
  for (const double l : values(r.loss)) EXPECT_TRUE(std::isfinite(l));
}

TEST(LossCuda, CrossEntropyBadTargetsEveryKernel) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  // A negative target that is not ignore_index, i32 targets, the block-per-row kernel
  // (C > 1024), and a reduced dtype; the first bad row is the one reported.
  for (const int64_t classes : {10, 3000}) {
    for (const DType dtype : {DType::f32, DType::bf16}) {
      SCOPED_TRACE(std::to_string(classes) + " " + dtype_name(dtype));
      const Tensor logits = randn({4, classes}, DType::f32, gpu).to(dtype);
      const Tensor bad = from_vector(std::vector<int32_t>{0, static_cast<int32_t>(kIgnore), -5, 0}).to(gpu);
      const kernels::CrossEntropyResult r = kernels::cross_entropy(logits, bad, kIgnore, 0.1);
      expect_error_contains_all(
          [&] { current_stream(gpu).synchronize(); },
          {"target -5 is out of range for cross_entropy along the class dim of size " +
               std::to_string(classes),
           "at row 2;"});
      const std::vector<double> l = values(r.loss);
      EXPECT_TRUE(std::isfinite(l[0]) && l[1] == 0.0 && std::isnan(l[2]) && std::isfinite(l[3]));
    }
  }
  // Two bad calls in a row: the first is reported, the second dropped while it was pending.
  const Tensor logits = randn({2, 10}, DType::f32, gpu);
  const auto first = kernels::cross_entropy(logits, from_vector(std::vector<int64_t>{11, 0}).to(gpu), kIgnore, 0.0);
  const auto second = kernels::cross_entropy(logits, from_vector(std::vector<int64_t>{0, 12}).to(gpu), kIgnore, 0.0);
  expect_error_contains_all([&] { values(second.loss); }, {"target 11 ", "at row 0;"});
  EXPECT_NO_THROW(values(second.loss));
  // Valid targets and ignored rows never trigger.
  const Tensor targets = make_targets(64, 10, 3).to(gpu);
  EXPECT_NO_THROW(values(kernels::cross_entropy(randn({64, 10}, DType::f32, gpu), targets, kIgnore, 0.0).loss));
  EXPECT_NO_THROW(check_device_errors(gpu));
}

TEST(LossCuda, CrossEntropyMaskedAndLargeLogits) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  // -inf entries (masked classes) in the middle of 16-byte packs, whole packs of -inf before the
  // first finite value (the running max starts at -inf), a row masked except for its target,
  // and large logits (the per-pack rescale must not overflow).
  for (const DType dtype : kGpuDtypes)
    for (const int64_t classes : {1000, 4097, 50257}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + std::to_string(classes));
      const int64_t rows = 5;
      const Tensor x = randn({rows, classes}, DType::f32);
      float* p = x.data<float>();
      for (int64_t i = 0; i < rows * classes; ++i) p[i] *= 4.0f;
      const Tensor targets = make_targets(rows, classes, 0);
      const int64_t* t = targets.data<int64_t>();
      const float inf = std::numeric_limits<float>::infinity();
      for (int64_t c = 0; c < classes; ++c) {
        if (c % 3 == 1 && c != t[0]) p[c] = -inf;                            // row 0: scattered
        if (c < classes / 2 && c != t[1]) p[classes + c] = -inf;             // row 1: leading half
        if (c != t[2]) p[2 * classes + c] = -inf;                            // row 2: all but target
        p[3 * classes + c] += 80.0f;                                         // row 3: large
      }
      check_ce_gpu(x.to(gpu).to(dtype), targets.to(gpu), 0.0, "masked");
    }
}

TEST(LossCuda, CrossEntropyNaNLogitsGiveNaN) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  // A NaN logit makes the row's loss NaN, as on the CPU, wherever it sits: in the first pack (all
  // NaN, or NaN beside -inf, seen while the running max is still -inf), in the middle, last.
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (const DType dtype : kGpuDtypes)
    for (const int64_t classes : {64, 1000, 4097}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + std::to_string(classes));
      const int64_t rows = 5;
      const Tensor x = randn({rows, classes}, DType::f32);
      float* p = x.data<float>();
      for (int c = 0; c < 8; ++c) p[c] = nan;                                   // row 0: a NaN pack
      for (int c = 0; c < 8; ++c) p[classes + c] = c % 2 ? nan : -inf;          // row 1: NaN and -inf
      p[2 * classes + classes / 2] = nan;                                       // row 2: middle
      p[3 * classes + classes - 1] = nan;                                       // row 3: last
      Tensor targets = full({rows}, 10.0, DType::i64);                          // row 4: no NaN
      for (const double eps : {0.0, 0.1}) {
        const auto l = kernels::cross_entropy(x.to(gpu).to(dtype), targets.to(gpu), kIgnore, eps)
                           .loss.to(Device::cpu()).to_vector<float>();
        for (int r = 0; r < 4; ++r) EXPECT_TRUE(std::isnan(l[static_cast<size_t>(r)])) << "row " << r << " eps " << eps;
        EXPECT_TRUE(std::isfinite(l[4])) << "eps " << eps;
      }
    }
}

TEST(LossCuda, CrossEntropyOpsMatchCpu) {
  PIT_REQUIRE_CUDA();
  const Tensor x = randn({40, 300});
  const Tensor t = make_targets(40, 300);
  for (const ops::Reduction red : {ops::Reduction::mean, ops::Reduction::sum, ops::Reduction::none})
    for (const bool gpu_targets : {false, true}) {
      SCOPED_TRACE(std::to_string(static_cast<int>(red)) + (gpu_targets ? " gpu targets" : " cpu targets"));
      const Variable xg(x.to(Device::cuda()), true), xc(x, true);
      const Variable lg = ops::cross_entropy(xg, gpu_targets ? t.to(Device::cuda()) : t, kIgnore, 0.1, red);
      const Variable lc = ops::cross_entropy(xc, t, kIgnore, 0.1, red);
      expect_close(lg.data(), lc.data(), 1e-5, 1e-5, "loss");
      const Tensor seed = randn(lc.shape());
      lg.backward(seed.to(Device::cuda()));
      lc.backward(seed);
      expect_close(xg.grad(), xc.grad(), 1e-5, 1e-5, "dlogits");
    }
  // All rows ignored with GPU targets: 0, not NaN.
  const Tensor none = full({4}, static_cast<double>(kIgnore), DType::i64, Device::cuda());
  EXPECT_EQ(ops::cross_entropy(Variable(randn({4, 3}, DType::f32, Device::cuda())), none).data().item<float>(), 0.0f);
}

TEST(DropoutCuda, MaskAndOutputMatchCpuBitExact) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  const uint64_t seed = 42, offset = 1000;
  for (const DType dtype : {DType::f32, DType::bf16, DType::f16, DType::f64})
    for (const int64_t n : {1, 3, 4, 1001, (1 << 20) + 3}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " n " + std::to_string(n));
      const Tensor base = randn({n + 1}, DType::f32, gpu).to(dtype);
      for (const Tensor& x : {base.slice(0, 0, n), base.slice(0, 1, n + 1)}) {  // aligned, misaligned
        const double p = 0.3;
        const kernels::DropoutResult g = kernels::dropout(x, p, seed, offset);
        const kernels::DropoutResult c = kernels::dropout(x.to(Device::cpu()), p, seed, offset);
        const std::vector<uint8_t> mg = g.mask.to_vector<uint8_t>(), mc = c.mask.to_vector<uint8_t>();
        ASSERT_EQ(mg, mc);
        EXPECT_EQ(values(g.y), values(c.y));  // exact: f64 holds every value of these dtypes
        const Tensor dy = randn({n}, DType::f32, gpu).to(dtype);
        EXPECT_EQ(values(kernels::dropout_backward(dy, g.mask, p)),
                  values(kernels::dropout_backward(dy.to(Device::cpu()), c.mask, p)));
        if (n > 1000000) {
          int64_t kept = 0;
          for (const uint8_t v : mg) kept += v;
          const double rate = static_cast<double>(kept) / static_cast<double>(n);
          EXPECT_NEAR(rate, 1 - p, 5 * std::sqrt(p * (1 - p) / static_cast<double>(n)));
        }
      }
    }
}

TEST(DropoutCuda, OpsBackwardOnGpu) {
  PIT_REQUIRE_CUDA();
  manual_seed(3);
  const Variable x(randn({64, 33}, DType::f32, Device::cuda()), true);
  const Variable y = ops::dropout(x, 0.4);
  ops::sum(y).backward();
  const std::vector<double> g = values(x.grad()), yv = values(y.data()), xv = values(x.data());
  const float scale = static_cast<float>(1.0 / 0.6);
  for (size_t i = 0; i < g.size(); ++i) {
    if (yv[i] != 0.0) {
      EXPECT_EQ(g[i], static_cast<double>(scale)) << i;  // kept
    } else if (xv[i] != 0.0) {
      EXPECT_EQ(g[i], 0.0) << i;  // dropped
    }
  }
  // The same draw on the CPU gives the same mask: replay the generator to the same offset.
  manual_seed(3);
  (void)randn({64, 33}, DType::f32);
  const Variable yc = ops::dropout(Variable(x.data().to(Device::cpu())), 0.4);
  EXPECT_EQ(values(y.data()), values(yc.data()));
}

// Zero rows on the GPU, as on the CPU: cross_entropy gives empty f32 losses and lse and its
// backward empty dlogits (the kernels never launch); the op's mean over no rows is 0 (the count of
// valid rows floors at 1), with the count taken on the host (CPU targets) or on the device (GPU
// targets). Dropout of an empty tensor: an empty output and u8 mask, and an empty gradient.
TEST(LossCuda, CrossEntropyAndDropoutOfEmptyInputs) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda(), cpu = Device::cpu();
  const auto expect_like = [](const Tensor& got, const Tensor& want, const std::string& what) {
    EXPECT_TRUE(got.is_cuda()) << what;
    EXPECT_EQ(got.dtype(), want.dtype()) << what;
    expect_close(got, want, 0.0, 0.0, what);  // shapes, and values where there are any
  };
  for (const DType dtype : kGpuDtypes)
    for (const int64_t classes : {10, 50257}) {  // a warp per row; a 512-thread block
      const std::string what = std::string(dtype_name(dtype)) + " 0 x " + std::to_string(classes);
      const Tensor logits = zeros({0, classes}, dtype, gpu), targets = zeros({0}, DType::i64, gpu);
      const kernels::CrossEntropyResult g = kernels::cross_entropy(logits, targets, kIgnore, 0.1);
      const kernels::CrossEntropyResult c = kernels::cross_entropy(logits.to(cpu), targets.to(cpu), kIgnore, 0.1);
      expect_like(g.loss, c.loss, what + " loss");
      expect_like(g.lse, c.lse, what + " lse");
      expect_like(kernels::cross_entropy_backward(zeros({0}, DType::f32, gpu), logits, targets, g, kIgnore, 0.1),
                  kernels::cross_entropy_backward(zeros({0}), logits.to(cpu), targets.to(cpu), c, kIgnore, 0.1),
                  what + " dlogits");
      for (const bool gpu_targets : {false, true}) {
        const Variable xg(logits, true), xc(logits.to(cpu), true);
        const Variable lg = ops::cross_entropy(xg, gpu_targets ? targets : targets.to(cpu), kIgnore, 0.1);
        const Variable lc = ops::cross_entropy(xc, targets.to(cpu), kIgnore, 0.1);
        expect_like(lg.data(), lc.data(), what + (gpu_targets ? " mean, gpu targets" : " mean, cpu targets"));
        lg.backward();
        lc.backward();
        expect_like(xg.grad(), xc.grad(), what + " op's dlogits");
      }
    }
  for (const DType dtype : {DType::f32, DType::bf16, DType::f16, DType::f64})
    for (const Shape& shape : {Shape{0}, Shape{3, 0, 5}}) {
      const std::string what = std::string(dtype_name(dtype)) + " dropout of " + shape_str(shape);
      const Tensor x = zeros(shape, dtype, gpu);
      const kernels::DropoutResult g = kernels::dropout(x, 0.3, 42, 1000);
      const kernels::DropoutResult c = kernels::dropout(x.to(cpu), 0.3, 42, 1000);
      expect_like(g.y, c.y, what + " y");
      expect_like(g.mask, c.mask, what + " mask");
      expect_like(kernels::dropout_backward(x, g.mask, 0.3), kernels::dropout_backward(x.to(cpu), c.mask, 0.3),
                  what + " dx");
    }
}

}  // namespace
