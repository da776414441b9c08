// Mixed precision: ops::cast (values, gradient dtype, finite differences), modules refusing
// bf16/f16 on the CPU, and on CUDA: bf16/f16 compute with the gradients on the f32 master
// weights, close to the f32 computation; f16 training with a LossScaler.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "autograd/gradcheck.h"
#include "core/random.h"
#include "ops/functional.h"
#include "tests/core/expect_error.h"
#include "tests/gpu.h"
#include "tests/ops/check.h"
#include "trainer/nn/layers.h"
#include "trainer/nn/model.h"
#include "trainer/optim/adamw.h"
#include "trainer/optim/loss_scaler.h"

namespace pit::nn {
namespace {

using test::expect_error_contains_all;

TEST(Cast, IdentityWhenTheDtypeMatches) {
  const Variable x(randn({3}), true);
  EXPECT_TRUE(ops::cast(x, DType::f32).same(x));
}

TEST(Cast, RoundsForwardAndReturnsTheGradientInTheInputDtype) {
  manual_seed(1);
  const Variable x(randn({4, 3}), true);
  for (const DType d : {DType::bf16, DType::f16, DType::f64}) {
    SCOPED_TRACE(dtype_name(d));
    x.state()->grad = Tensor();
    const Variable y = ops::cast(x, d);
    EXPECT_EQ(y.dtype(), d);
    EXPECT_TRUE(y.requires_grad());
    EXPECT_EQ(y.data().to(DType::f64).to_vector<double>(),
              x.data().to(d).to(DType::f64).to_vector<double>());
    const Tensor g = randn({4, 3}).to(d);
    y.backward(g);
    ASSERT_TRUE(x.grad().defined());
    EXPECT_EQ(x.grad().dtype(), DType::f32);
    EXPECT_EQ(x.grad().to_vector<float>(), g.to(DType::f32).to_vector<float>());
  }
}

TEST(Cast, FiniteDifferencesThroughF32) {
  // f64 -> f32 -> (x 3) -> f64: the derivative is 3. The f32 rounding (6e-8 relative) over a
  // step of 1e-2 leaves errors near 1e-5, under the 1e-4 tolerance.
  GradcheckOptions opt;
  opt.eps = 1e-2;
  opt.atol = 1e-4;
  opt.rtol = 1e-4;
  const GradcheckResult r = gradcheck(
      [](const std::vector<Variable>& v) {
        return ops::cast(ops::mul(ops::cast(v[0], DType::f32), 3.0), DType::f64);
      },
      {randn({5}, DType::f64)}, opt);
  EXPECT_TRUE(r.ok) << r.report;
}

TEST(MixedPrecision, ModulesRefuseReducedPrecisionOnTheCpu) {
  for (const DType d : {DType::bf16, DType::f16}) {
    SCOPED_TRACE(dtype_name(d));
    ModelOptions o;
    o.compute_dtype = d;
    const auto mlp = make_model(o);
    EXPECT_EQ(mlp->compute_dtype(), d);
    expect_error_contains_all([&] { mlp->forward(Variable(zeros({2, 1, 28, 28}))); },
                              {"runs on CUDA only", "use compute dtype f32 on the CPU"});
    o.kind = ModelKind::transformer;
    o.vocab_size = 5;
    o.block_size = 4;
    o.n_layer = 1;
    o.n_head = 1;
    o.n_embd = 4;
    const auto lm = make_model(o);
    expect_error_contains_all([&] { lm->forward(Variable(zeros({1, 3}, DType::i64))); },
                              {"Linear: compute dtype ", "runs on CUDA only"});
  }
}

// ---- CUDA ----------------------------------------------------------------------------------------

ModelOptions lm_options(DType compute) {
  ModelOptions o;
  o.kind = ModelKind::transformer;
  o.seed = 5;
  o.compute_dtype = compute;
  o.vocab_size = 64;
  o.block_size = 32;
  o.n_layer = 2;
  o.n_head = 2;
  o.n_embd = 128;  // head dim 64: the tensor-core attention kernels for bf16 / f16
  o.activation = Activation::gelu_tanh;
  return o;
}

Tensor tokens(int64_t b, int64_t t, int64_t vocab, uint64_t salt) {
  std::vector<int64_t> v(static_cast<size_t>(b * t));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>((i * 31 + salt * 7 + i / 5) % vocab);
  return from_vector(v, {b, t});
}

Variable lm_loss(Module& lm, const Tensor& ids, const Tensor& targets) {
  const Variable logits = lm.forward(Variable(ids));
  const int64_t v = logits.size(-1);
  return ops::cross_entropy(ops::reshape(logits, {-1, v}), targets.reshape({-1}));
}

TEST(MixedPrecisionCuda, GradientsLandOnTheF32MasterWeights) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  const Tensor ids = tokens(4, 32, 64, 1).to(gpu), targets = tokens(4, 32, 64, 2).to(gpu);
  const auto ref = make_model(lm_options(DType::f32));
  ref->to(gpu);
  const Variable ref_loss = lm_loss(*ref, ids, targets);
  ref_loss.backward();
  for (const DType d : {DType::bf16, DType::f16}) {
    SCOPED_TRACE(dtype_name(d));
    const auto lm = make_model(lm_options(d));
    lm->to(gpu);
    const Variable logits = lm->forward(Variable(ids));
    EXPECT_EQ(logits.dtype(), d);
    const Variable loss = lm_loss(*lm, ids, targets);
    EXPECT_EQ(loss.dtype(), DType::f32);
    // bf16 keeps 8 bits of mantissa (f16 11): the loss within 1%; each gradient points the same
    // way as the f32 one (cosine > 0.95) with a norm within 10%.
    EXPECT_NEAR(loss.data().item<float>(), ref_loss.data().item<float>(),
                0.01 * ref_loss.data().item<float>());
    // A static loss scale keeps the small f16 gradients out of the subnormal range.
    const optim::LossScaler scaler = optim::LossScaler::fixed(1024.0);
    scaler.scale_loss(loss).backward();
    EXPECT_FALSE(scaler.unscale_and_check(lm->parameters()));
    const NamedParameters got = lm->named_parameters(), want = ref->named_parameters();
    for (size_t i = 0; i < got.size(); ++i) {
      SCOPED_TRACE(got[i].first);
      ASSERT_TRUE(got[i].second.grad().defined());
      EXPECT_EQ(got[i].second.dtype(), DType::f32);
      EXPECT_EQ(got[i].second.grad().dtype(), DType::f32);
      const std::vector<double> a = test::values(got[i].second.grad()),
                                b = test::values(want[i].second.grad());
      double dot = 0, na = 0, nb = 0;
      for (size_t k = 0; k < a.size(); ++k) {
        dot += a[k] * b[k];
        na += a[k] * a[k];
        nb += b[k] * b[k];
      }
      if (nb == 0) continue;
      EXPECT_GT(dot / std::sqrt(na * nb), 0.95);
      EXPECT_NEAR(std::sqrt(na / nb), 1.0, 0.1);
    }
  }
}

TEST(MixedPrecisionCuda, F16TrainsWithALossScaler) {
  PIT_REQUIRE_CUDA();
  const Device gpu = Device::cuda();
  const Tensor ids = tokens(4, 32, 64, 3).to(gpu), targets = tokens(4, 32, 64, 4).to(gpu);
  const auto lm = make_model(lm_options(DType::f16));
  lm->to(gpu);
  optim::AdamW opt(optim::with_default_decay(lm->named_parameters()));
  optim::LossScaler scaler;  // 2^16 at first
  const std::vector<Variable> params = lm->parameters();
  double first = 0, last = 0;
  int skipped = 0;
  for (int step = 0; step < 30; ++step) {
    const Variable loss = lm_loss(*lm, ids, targets);
    if (step == 0) first = loss.data().item<float>();
    last = loss.data().item<float>();
    scaler.scale_loss(loss).backward();
    const bool overflow = scaler.unscale_and_check(params);
    if (!overflow) opt.step(3e-3);
    skipped += overflow ? 1 : 0;
    scaler.update(overflow);
    opt.zero_grad();
  }
  EXPECT_LT(skipped, 10);
  EXPECT_LT(last, 0.5 * first) << "loss " << first << " -> " << last;
}

}  // namespace
}  // namespace pit::nn
