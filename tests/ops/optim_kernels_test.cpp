// The optimizer kernels: AdamW and SGD steps against values worked out by hand and against a
// straightforward f64 reference over a few steps; global_norm, clip_by_norm_ and
// unscale_and_check_ on the CPU; the CUDA kernels against the CPU on fresh random data (aligned
// and misaligned tensors, more tensors than one launch takes).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/random.h"
#include "ops/kernels.h"
#include "tests/core/expect_error.h"
#include "tests/gpu.h"
#include "tests/ops/check.h"

using namespace pit;
using namespace pit::test;

namespace {

Tensor f32v(const std::vector<float>& v) { return from_vector(v); }

// ---- f64 references, line by line from the torch.optim documentation ---------------------------

struct AdamRef {
  std::vector<double> p, m, v;
  void step(const std::vector<double>& g, const kernels::AdamWHyper& h) {
    const double bc1 = h.bias_correction ? 1 - std::pow(h.beta1, static_cast<double>(h.step)) : 1;
    const double bc2 = h.bias_correction ? 1 - std::pow(h.beta2, static_cast<double>(h.step)) : 1;
    for (size_t i = 0; i < p.size(); ++i) {
      p[i] *= 1 - h.lr * h.weight_decay;
      m[i] = h.beta1 * m[i] + (1 - h.beta1) * g[i];
      v[i] = h.beta2 * v[i] + (1 - h.beta2) * g[i] * g[i];
      p[i] -= h.lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + h.eps);
    }
  }
};

struct SgdRef {
  std::vector<double> p, buf;
  void step(const std::vector<double>& g, const kernels::SgdHyper& h) {
    for (size_t i = 0; i < p.size(); ++i) {
      double d = g[i] + h.weight_decay * p[i];
      if (h.momentum != 0) {
        buf[i] = h.first_step ? d : h.momentum * buf[i] + (1 - h.dampening) * d;
        d = h.nesterov ? d + h.momentum * buf[i] : buf[i];
      }
      p[i] -= h.lr * d;
    }
  }
};

std::vector<double> as_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// f32 kernels against f64 references: a few ulps of the f32 values.
constexpr double kRtol = 1e-5, kAtol = 1e-6;

void expect_near_all(const Tensor& got, const std::vector<double>& want, const char* what) {
  expect_close(got, from_vector(want), kRtol, kAtol, what);
}

}  // namespace

// ---- by hand ------------------------------------------------------------------------------------

TEST(OptimKernels, AdamWFirstStepsByHand) {
  // p = 1, g = 0.5, lr 0.1: m = 0.05, v = 2.5e-4, m^ = 0.5, v^ = 0.25: p -= 0.1 * 0.5 / 0.5.
  const Tensor p = f32v({1.0f}), g = f32v({0.5f}), m = zeros({1}), v = zeros({1});
  kernels::AdamWHyper h;
  h.lr = 0.1;
  kernels::adamw_step(p, g, m, v, h);
  EXPECT_NEAR(p.item<float>(), 0.9f, 1e-6);
  EXPECT_NEAR(m.item<float>(), 0.05f, 1e-8);
  EXPECT_NEAR(v.item<float>(), 2.5e-4f, 1e-10);
  // Step 2, g = 0.25: m = 0.07, v = 3.1225e-4, m^ = 0.07 / 0.19, v^ = 3.1225e-4 / 0.001999:
  // p = 0.9 - 0.1 * 0.368421 / 0.395225 = 0.806782.
  h.step = 2;
  kernels::adamw_step(p, f32v({0.25f}), m, v, h);
  EXPECT_NEAR(p.item<float>(), 0.806782f, 2e-6);
  EXPECT_NEAR(m.item<float>(), 0.07f, 1e-7);

  // Decoupled weight decay 0.1: p = 1 * (1 - 0.01) - 0.1 = 0.89 (the decay does not enter m, v).
  const Tensor p2 = f32v({1.0f}), m2 = zeros({1}), v2 = zeros({1});
  h.step = 1;
  h.weight_decay = 0.1;
  kernels::adamw_step(p2, g, m2, v2, h);
  EXPECT_NEAR(p2.item<float>(), 0.89f, 1e-6);
  EXPECT_NEAR(m2.item<float>(), 0.05f, 1e-8);

  // No bias correction: p -= 0.1 * 0.05 / (sqrt(2.5e-4) + 1e-8) = 0.1 * 0.05 / 0.0158114.
  const Tensor p3 = f32v({1.0f}), m3 = zeros({1}), v3 = zeros({1});
  h.weight_decay = 0.0;
  h.bias_correction = false;
  kernels::adamw_step(p3, g, m3, v3, h);
  EXPECT_NEAR(p3.item<float>(), 1.0f - 0.316228f, 2e-6);
}

TEST(OptimKernels, SgdStepsByHand) {
  kernels::SgdHyper h;
  h.lr = 0.1;
  {  // plain: p -= 0.1 * 0.5
    const Tensor p = f32v({1.0f});
    kernels::sgd_step(p, f32v({0.5f}), Tensor(), h);
    EXPECT_NEAR(p.item<float>(), 0.95f, 1e-6);
  }
  {  // L2 weight decay 0.1: d = 0.5 + 0.1 * 1
    const Tensor p = f32v({1.0f});
    h.weight_decay = 0.1;
    kernels::sgd_step(p, f32v({0.5f}), Tensor(), h);
    EXPECT_NEAR(p.item<float>(), 0.94f, 1e-6);
    h.weight_decay = 0.0;
  }
  {  // momentum 0.9: buf = 0.5 -> p = 0.95; buf = 0.9 * 0.5 + 0.5 = 0.95 -> p = 0.855
    const Tensor p = f32v({1.0f}), buf = zeros({1});
    h.momentum = 0.9;
    h.first_step = true;
    kernels::sgd_step(p, f32v({0.5f}), buf, h);
    EXPECT_NEAR(p.item<float>(), 0.95f, 1e-6);
    h.first_step = false;
    kernels::sgd_step(p, f32v({0.5f}), buf, h);
    EXPECT_NEAR(buf.item<float>(), 0.95f, 1e-6);
    EXPECT_NEAR(p.item<float>(), 0.855f, 1e-6);
  }
  {  // dampening 0.5: buf = 0.5 (first), then 0.9 * 0.5 + 0.5 * 0.5 = 0.7 -> p = 0.95 - 0.07
    const Tensor p = f32v({1.0f}), buf = zeros({1});
    h.dampening = 0.5;
    h.first_step = true;
    kernels::sgd_step(p, f32v({0.5f}), buf, h);
    h.first_step = false;
    kernels::sgd_step(p, f32v({0.5f}), buf, h);
    EXPECT_NEAR(buf.item<float>(), 0.7f, 1e-6);
    EXPECT_NEAR(p.item<float>(), 0.88f, 1e-6);
    h.dampening = 0.0;
  }
  {  // Nesterov: buf = 0.5, d = 0.5 + 0.9 * 0.5 = 0.95 -> p = 0.905; then buf = 0.95,
     // d = 0.5 + 0.855 = 1.355 -> p = 0.7695
    const Tensor p = f32v({1.0f}), buf = zeros({1});
    h.nesterov = true;
    h.first_step = true;
    kernels::sgd_step(p, f32v({0.5f}), buf, h);
    EXPECT_NEAR(p.item<float>(), 0.905f, 1e-6);
    h.first_step = false;
    kernels::sgd_step(p, f32v({0.5f}), buf, h);
    EXPECT_NEAR(p.item<float>(), 0.7695f, 1e-6);
  }
}

// ---- against the f64 reference over a few steps --------------------------------------------------

TEST(OptimKernels, AdamWMatchesReferenceOverSteps) {
  manual_seed(3);
  for (const bool wd : {false, true})
    for (const bool bc : {false, true}) {
      SCOPED_TRACE(std::string(wd ? "weight decay" : "no decay") + (bc ? ", bias correction" : ""));
      const int64_t n = 37;
      const Tensor p = randn({n}), m = zeros({n}), v = zeros({n});
      AdamRef ref{as_double(p.to_vector<float>()), std::vector<double>(n), std::vector<double>(n)};
      kernels::AdamWHyper h;
      h.lr = 0.01;
      h.beta1 = 0.8;
      h.beta2 = 0.95;
      h.weight_decay = wd ? 0.1 : 0.0;
      h.bias_correction = bc;
      for (int s = 1; s <= 3; ++s) {
        const Tensor g = randn({n});
        h.step = s;
        kernels::adamw_step(p, g, m, v, h);
        ref.step(as_double(g.to_vector<float>()), h);
      }
      expect_near_all(p, ref.p, "param");
      expect_near_all(m, ref.m, "exp_avg");
      expect_near_all(v, ref.v, "exp_avg_sq");
    }
}

TEST(OptimKernels, SgdMatchesReferenceOverSteps) {
  manual_seed(4);
  struct Case {
    double momentum, dampening, weight_decay;
    bool nesterov;
  };
  for (const Case c : {Case{0, 0, 0, false}, Case{0, 0, 0.01, false}, Case{0.9, 0, 0, false},
                       Case{0.9, 0.1, 0.01, false}, Case{0.9, 0, 0.01, true}}) {
    SCOPED_TRACE("momentum " + std::to_string(c.momentum) + (c.nesterov ? " nesterov" : ""));
    const int64_t n = 29;
    const Tensor p = randn({n}), buf = zeros({n});
    SgdRef ref{as_double(p.to_vector<float>()), std::vector<double>(n)};
    kernels::SgdHyper h;
    h.lr = 0.05;
    h.momentum = c.momentum;
    h.dampening = c.dampening;
    h.weight_decay = c.weight_decay;
    h.nesterov = c.nesterov;
    for (int s = 1; s <= 3; ++s) {
      const Tensor g = randn({n});
      h.first_step = s == 1;
      kernels::sgd_step(p, g, buf, h);
      ref.step(as_double(g.to_vector<float>()), h);
    }
    expect_near_all(p, ref.p, "param");
    if (c.momentum != 0) expect_near_all(buf, ref.buf, "momentum buffer");
  }
}

TEST(OptimKernels, ChecksArguments) {
  const Tensor p = zeros({4}), g = zeros({4}), m = zeros({4}), v = zeros({4});
  kernels::AdamWHyper h;
  expect_error_contains([&] { kernels::adamw_step(p, zeros({5}), m, v, h); }, "the gradient of shape [5]");
  expect_error_contains([&] { kernels::adamw_step(p, g.to(DType::f64), m, v, h); }, "dtype f64");
  h.step = 0;
  expect_error_contains([&] { kernels::adamw_step(p, g, m, v, h); }, "from 1");
  kernels::SgdHyper s;
  s.nesterov = true;
  expect_error_contains([&] { kernels::sgd_step(p, g, m, s); }, "Nesterov");
  expect_error_contains([&] { kernels::global_norm({p, zeros({2, 2}).t()}); }, "not contiguous");
}

// ---- gradient utilities ---------------------------------------------------------------------------

TEST(OptimKernels, GlobalNormAndClip) {
  // sqrt(3^2 + 4^2 + 12^2) = 13.
  const Tensor a = f32v({3.0f, 4.0f}), b = f32v({12.0f}), empty = zeros({0});
  const Tensor norm = kernels::global_norm({a, empty, b});
  EXPECT_EQ(norm.dim(), 0);
  EXPECT_NEAR(norm.item<float>(), 13.0f, 1e-6);
  // max_norm above the norm: untouched.
  kernels::clip_by_norm_({a, b}, norm, 20.0);
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{3.0f, 4.0f}));
  // max_norm 6.5: every element halved (up to the 1e-6 in the denominator).
  kernels::clip_by_norm_({a, b}, norm, 6.5);
  EXPECT_NEAR(a.to_vector<float>()[1], 2.0f, 1e-6);
  EXPECT_NEAR(b.item<float>(), 6.0f, 1e-6);
  EXPECT_NEAR(kernels::global_norm({a, b}).item<float>(), 6.5f, 1e-5);
}

TEST(OptimKernels, UnscaleAndCheck) {
  const Tensor a = f32v({2.0f, -4.0f}), b = f32v({8.0f});
  EXPECT_EQ(kernels::unscale_and_check_({a, b}, 0.5).item<float>(), 0.0f);
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(b.item<float>(), 4.0f);
  for (const float bad : {std::numeric_limits<float>::infinity(), std::nanf("")}) {
    const Tensor c = f32v({1.0f, bad, 3.0f});
    EXPECT_EQ(kernels::unscale_and_check_({a, c}, 0.5).item<float>(), 1.0f);
  }
}

// ---- CUDA against the CPU ----------------------------------------------------------------------------

namespace {

// Tensors of the given sizes, each a view at an element offset of 0 or 1 into its storage (so
// some are 16-byte aligned and some not), drawn from the default generator.
std::vector<Tensor> random_tensors(const std::vector<int64_t>& sizes, bool misalign) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const int64_t off = misalign && i % 2 ? 1 : 0;
    out.push_back(randn({sizes[i] + off}).slice(0, off, sizes[i] + off));
  }
  return out;
}

std::vector<Tensor> to_cuda(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) {
    // Keep the alignment: copy the whole storage extent, then take the same view.
    const Tensor base = Tensor(t.storage(), {static_cast<int64_t>(t.storage()->nbytes() / 4)}, {1},
                               0, DType::f32);
    out.push_back(base.to(Device::cuda()).slice(0, t.offset(), t.offset() + t.numel()));
  }
  return out;
}

}  // namespace

TEST(OptimKernelsCuda, AdamWAndSgdMatchCpu) {
  PIT_REQUIRE_CUDA();
  manual_seed(11);
  for (const int64_t n : {1, 7, 4096, 100003}) {
    for (const bool misalign : {false, true}) {
      SCOPED_TRACE("n " + std::to_string(n) + (misalign ? " misaligned" : ""));
      std::vector<Tensor> cpu = random_tensors({n, n, n, n}, misalign);
      cpu[3] = kernels::unary(UnaryOp::abs, cpu[3]);  // v >= 0
      std::vector<Tensor> gpu = to_cuda(cpu);
      kernels::AdamWHyper h;
      h.lr = 1e-2;
      h.weight_decay = 0.1;
      h.step = 3;
      kernels::adamw_step(cpu[0], cpu[1], cpu[2], cpu[3], h);
      kernels::adamw_step(gpu[0], gpu[1], gpu[2], gpu[3], h);
      for (size_t i : {0, 2, 3}) expect_close(gpu[i], cpu[i], 1e-5, 1e-6, "adamw");

      kernels::SgdHyper s;
      s.lr = 0.1;
      s.momentum = 0.9;
      s.weight_decay = 0.01;
      s.nesterov = true;
      kernels::sgd_step(cpu[0], cpu[1], cpu[2], s);
      kernels::sgd_step(gpu[0], gpu[1], gpu[2], s);
      for (size_t i : {0, 2}) expect_close(gpu[i], cpu[i], 1e-5, 1e-6, "sgd");
      s.momentum = 0;
      s.nesterov = false;
      kernels::sgd_step(cpu[0], cpu[1], Tensor(), s);
      kernels::sgd_step(gpu[0], gpu[1], Tensor(), s);
      expect_close(gpu[0], cpu[0], 1e-5, 1e-6, "sgd without momentum");
    }
  }
}

TEST(OptimKernelsCuda, NormClipAndUnscaleMatchCpu) {
  PIT_REQUIRE_CUDA();
  manual_seed(12);
  // 60 tensors: more than one launch takes (48); sizes from 1 to past one block's 4096 elements
  // and past the cap of 512 blocks per tensor.
  std::vector<int64_t> sizes;
  for (int i = 0; i < 60; ++i) sizes.push_back(i % 7 == 0 ? 3'000'000 / (i + 1) : 1 + 97 * i);
  for (const bool misalign : {false, true}) {
    SCOPED_TRACE(misalign ? "misaligned" : "aligned");
    std::vector<Tensor> cpu = random_tensors(sizes, misalign);
    std::vector<Tensor> gpu = to_cuda(cpu);
    const Tensor n_cpu = kernels::global_norm(cpu), n_gpu = kernels::global_norm(gpu);
    EXPECT_TRUE(n_gpu.is_cuda());
    expect_close(n_gpu, n_cpu, 1e-5, 0, "global norm");
    // Bit-identical from run to run.
    EXPECT_EQ(kernels::global_norm(gpu).item<float>(), n_gpu.item<float>());

    const double max_norm = 0.25 * n_cpu.item<float>();
    kernels::clip_by_norm_(cpu, n_cpu, max_norm);
    kernels::clip_by_norm_(gpu, n_gpu, max_norm);
    for (size_t i = 0; i < cpu.size(); ++i) expect_close(gpu[i], cpu[i], 1e-5, 1e-6, "clipped");
    expect_close(kernels::global_norm(gpu).to(Device::cpu()), full({}, max_norm), 1e-4, 0, "after clip");

    EXPECT_EQ(kernels::unscale_and_check_(gpu, 0.125).item<float>(), 0.0f);
    kernels::unscale_and_check_(cpu, 0.125);
    for (size_t i = 0; i < cpu.size(); ++i) expect_close(gpu[i], cpu[i], 1e-6, 1e-7, "unscaled");
    Tensor last = gpu.back();
    last.slice(0, last.numel() - 1, last.numel()).fill_(std::numeric_limits<double>::infinity());
    EXPECT_EQ(kernels::unscale_and_check_(gpu, 1.0).item<float>(), 1.0f);
  }
}

TEST(OptimKernelsCuda, NoTensorWorkWhenBelowMaxNorm) {
  PIT_REQUIRE_CUDA();
  const Tensor a = from_vector(std::vector<float>{3.0f, 4.0f}, Device::cuda());
  const Tensor norm = kernels::global_norm({a});
  kernels::clip_by_norm_({a}, norm, 100.0);
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{3.0f, 4.0f}));
  EXPECT_NEAR(norm.item<float>(), 5.0f, 1e-6);
}

// Empty parameters on the GPU, as on the CPU: the steps leave them empty (and launch nothing);
// the norm of empty tensors is 0, alone or beside a non-empty one (the lists skip empty spans),
// and clipping / unscaling them changes nothing and finds no inf.
TEST(OptimKernelsCuda, EmptyParametersMatchCpu) {
  PIT_REQUIRE_CUDA();
  for (const Shape& shape : {Shape{0}, Shape{3, 0}}) {
    SCOPED_TRACE(shape_str(shape));
    std::vector<Tensor> gpu, cpu;
    for (int i = 0; i < 4; ++i) gpu.push_back(zeros(shape, DType::f32, Device::cuda()));
    for (const Tensor& t : gpu) cpu.push_back(t.to(Device::cpu()));
    kernels::AdamWHyper h;
    h.weight_decay = 0.1;
    kernels::SgdHyper s;
    s.momentum = 0.9;
    for (std::vector<Tensor>* ts : {&gpu, &cpu}) {
      std::vector<Tensor>& t = *ts;
      kernels::adamw_step(t[0], t[1], t[2], t[3], h);
      kernels::sgd_step(t[0], t[1], t[2], s);
      kernels::sgd_step(t[0], t[1], Tensor(), kernels::SgdHyper{});
    }
    for (size_t i = 0; i < gpu.size(); ++i) {
      EXPECT_TRUE(gpu[i].is_cuda());
      expect_close(gpu[i], cpu[i], 0.0, 0.0, "state " + std::to_string(i));  // still empty
    }
    const Tensor n_gpu = kernels::global_norm(gpu), n_cpu = kernels::global_norm(cpu);
    EXPECT_TRUE(n_gpu.is_cuda());
    expect_close(n_gpu, n_cpu, 0.0, 0.0, "norm of empty tensors");
    EXPECT_EQ(n_gpu.item<float>(), 0.0f);
    const Tensor a = from_vector(std::vector<float>{3.0f, 4.0f}, Device::cuda());
    EXPECT_EQ(kernels::global_norm({gpu[0], a, gpu[1]}).item<float>(), 5.0f);
    kernels::clip_by_norm_(gpu, n_gpu, 1.0);
    EXPECT_EQ(kernels::unscale_and_check_(gpu, 0.5).item<float>(), kernels::unscale_and_check_(cpu, 0.5).item<float>());
    for (const Tensor& t : gpu) EXPECT_EQ(t.shape(), shape);
  }
}
