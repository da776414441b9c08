// LossScaler: overflow skips the step and backs off, growth after the interval, static mode,
// unscaling, state round trip; on CUDA the check runs on the device.
#include "trainer/optim/loss_scaler.h"

#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "ops/functional.h"
#include "tests/core/expect_error.h"
#include "tests/gpu.h"
#include "trainer/optim/sgd.h"

namespace pit::optim {
namespace {

using test::expect_error_contains;

LossScalerOptions small(int64_t interval) {
  LossScalerOptions o;
  o.init_scale = 1024.0;
  o.growth_interval = interval;
  return o;
}

TEST(LossScaler, ScalesTheLossAndUnscalesGradients) {
  LossScaler scaler(small(10));
  Variable w(from_vector(std::vector<float>{2.0f, -1.0f}), true);
  const Variable loss = ops::sum(ops::mul(w, 3.0));  // dloss/dw = 3
  const Variable scaled = scaler.scale_loss(loss);
  EXPECT_FLOAT_EQ(scaled.data().item<float>(), 1024.0f * 3.0f);
  scaled.backward();
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{3072.0f, 3072.0f}));
  EXPECT_FALSE(scaler.unscale_and_check({w}));
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{3.0f, 3.0f}));
}

TEST(LossScaler, OverflowSkipsTheStepAndBacksOff) {
  LossScaler scaler(small(10));
  Variable w(from_vector(std::vector<float>{1.0f, 1.0f}), true);
  SGD sgd({{"w", w, true}});
  for (int i = 0; i < 3; ++i) {  // three good steps
    w.set_grad(from_vector(std::vector<float>{1024.0f, 1024.0f}));
    const bool overflow = scaler.unscale_and_check({w});
    EXPECT_FALSE(overflow);
    if (!overflow) sgd.step(0.5);
    scaler.update(overflow);
  }
  EXPECT_EQ(scaler.good_steps(), 3);
  EXPECT_FLOAT_EQ(w.data().to_vector<float>()[0], 1.0f - 3 * 0.5f);
  for (const float bad : {std::numeric_limits<float>::infinity(), std::nanf("")}) {
    const Tensor before = w.data().clone();
    w.set_grad(from_vector(std::vector<float>{1.0f, bad}));
    const bool overflow = scaler.unscale_and_check({w});
    EXPECT_TRUE(overflow);
    if (!overflow) sgd.step(0.5);
    scaler.update(overflow);
    EXPECT_EQ(w.data().to_vector<float>(), before.to_vector<float>());  // skipped
    EXPECT_EQ(scaler.good_steps(), 0);
  }
  EXPECT_DOUBLE_EQ(scaler.scale(), 1024.0 * 0.25);  // backed off twice
}

TEST(LossScaler, GrowsAfterTheInterval) {
  LossScaler scaler(small(3));
  scaler.update(false);
  scaler.update(false);
  EXPECT_DOUBLE_EQ(scaler.scale(), 1024.0);
  scaler.update(false);
  EXPECT_DOUBLE_EQ(scaler.scale(), 2048.0);
  EXPECT_EQ(scaler.good_steps(), 0);
  scaler.update(false);
  scaler.update(true);  // an overflow restarts the count
  scaler.update(false);
  scaler.update(false);
  EXPECT_DOUBLE_EQ(scaler.scale(), 1024.0);
  scaler.update(false);
  EXPECT_DOUBLE_EQ(scaler.scale(), 2048.0);
}

TEST(LossScaler, StaticScaleNeverChanges) {
  LossScaler scaler = LossScaler::fixed(128.0);
  EXPECT_FALSE(scaler.dynamic());
  scaler.update(true);
  for (int i = 0; i < 5000; ++i) scaler.update(false);
  EXPECT_DOUBLE_EQ(scaler.scale(), 128.0);
  Variable w(zeros({1}), true);
  w.set_grad(full({1}, std::numeric_limits<double>::infinity()));
  EXPECT_TRUE(scaler.unscale_and_check({w}));  // still reported, so the step is skipped
}

TEST(LossScaler, StateRoundTrip) {
  LossScaler a(small(5));
  a.update(true);
  a.update(false);
  a.update(false);
  LossScaler b(small(5));
  b.load_state_dict(a.state_dict());
  EXPECT_DOUBLE_EQ(b.scale(), 512.0);
  EXPECT_EQ(b.good_steps(), 2);
  for (int i = 0; i < 3; ++i) {
    a.update(false);
    b.update(false);
  }
  EXPECT_DOUBLE_EQ(b.scale(), a.scale());
  EXPECT_DOUBLE_EQ(b.scale(), 1024.0);
  expect_error_contains([&] { b.load_state_dict(train::StateDict{}); }, "'scale' is missing");
  // A static scaler keeps its own scale (a resume with another precision.loss_scale), and a
  // count past growth_interval (another interval then) grows at the next good step.
  LossScaler fixed = LossScaler::fixed(256.0);
  fixed.load_state_dict(a.state_dict());
  EXPECT_DOUBLE_EQ(fixed.scale(), 256.0);
  train::StateDict far = a.state_dict();
  far.ints["good_steps"] = 99;
  b.load_state_dict(far);
  EXPECT_EQ(b.good_steps(), 4);
  b.update(false);
  EXPECT_DOUBLE_EQ(b.scale(), 2048.0);
}

TEST(LossScaler, RejectsBadOptions) {
  LossScalerOptions o;
  o.backoff_factor = 1.5;
  expect_error_contains([&] { LossScaler s(o); }, "backoff_factor");
  o = LossScalerOptions{};
  o.growth_interval = 0;
  expect_error_contains([&] { LossScaler s(o); }, "growth_interval");
}

TEST(LossScalerCuda, ChecksOnTheDevice) {
  PIT_REQUIRE_CUDA();
  LossScaler scaler(small(10));
  Variable w(zeros({3}, DType::f32, Device::cuda()), true);
  w.set_grad(from_vector(std::vector<float>{1024.0f, 2048.0f, -512.0f}, Device::cuda()));
  EXPECT_FALSE(scaler.unscale_and_check({w}));
  EXPECT_TRUE(w.grad().is_cuda());
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{1.0f, 2.0f, -0.5f}));
  w.set_grad(from_vector(std::vector<float>{1.0f, std::nanf(""), 0.0f}, Device::cuda()));
  EXPECT_TRUE(scaler.unscale_and_check({w}));
}

}  // namespace
}  // namespace pit::optim
