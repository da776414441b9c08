// clip_grad_norm: the global norm, the scaling, parameters without gradients; CUDA against CPU.
#include "trainer/optim/clip.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/random.h"
#include "tests/core/expect_error.h"
#include "tests/gpu.h"
#include "tests/ops/check.h"

namespace pit::optim {
namespace {

using test::expect_close;

Variable with_grad(const std::vector<float>& g) {
  Variable v(zeros({static_cast<int64_t>(g.size())}), true);
  v.set_grad(from_vector(g));
  return v;
}

TEST(ClipGradNorm, ScalesToMaxNorm) {
  // Global norm sqrt(9 + 16 + 144) = 13; a parameter without a gradient is ignored.
  Variable a = with_grad({3.0f, 4.0f}), b = with_grad({12.0f});
  Variable none(zeros({5}), true);
  const Tensor norm = clip_grad_norm({a, none, b}, 1.3);
  EXPECT_EQ(norm.numel(), 1);
  EXPECT_FLOAT_EQ(norm.item<float>(), 13.0f);  // before clipping
  const double f = 1.3 / (13.0 + 1e-6);
  EXPECT_NEAR(a.grad().to_vector<float>()[0], 3.0 * f, 1e-6);
  EXPECT_NEAR(b.grad().item<float>(), 12.0 * f, 1e-6);
  EXPECT_NEAR(grad_norm({a, b}).item<float>(), 1.3f, 1e-5);
  EXPECT_FALSE(none.grad().defined());
}

// With a norm computed elsewhere (e.g. over every rank's expert shards): scaled by that norm.
TEST(ClipGradNorm, ToAGivenNorm) {
  Variable a = with_grad({3.0f, 4.0f});
  clip_grads_to_norm({a}, full({}, 10.0), 2.0);  // factor 2 / (10 + 1e-6)
  EXPECT_NEAR(a.grad().to_vector<float>()[1], 4.0 * 2.0 / (10.0 + 1e-6), 1e-6);
  clip_grads_to_norm({a}, full({}, 1.0), 2.0);  // below max_norm: unchanged
  EXPECT_NEAR(a.grad().to_vector<float>()[1], 0.8, 1e-6);
  test::expect_error_contains([&] { clip_grads_to_norm({a}, full({}, 1.0), 0.0); }, "max_norm must be > 0");
}

TEST(ClipGradNorm, LeavesSmallGradientsAlone) {
  Variable a = with_grad({0.3f, 0.4f});
  const Tensor norm = clip_grad_norm({a}, 1.0);
  EXPECT_FLOAT_EQ(norm.item<float>(), 0.5f);
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{0.3f, 0.4f}));
}

TEST(ClipGradNorm, NoGradientsGiveZero) {
  Variable none(zeros({2}), true);
  EXPECT_EQ(clip_grad_norm({none}, 1.0).item<float>(), 0.0f);
  EXPECT_EQ(clip_grad_norm({}, 1.0).item<float>(), 0.0f);
}

TEST(ClipGradNormCuda, MatchesCpuAndStaysOnDevice) {
  PIT_REQUIRE_CUDA();
  manual_seed(21);
  std::vector<Variable> cpu, gpu;
  for (const int64_t n : {1000, 17, 70000}) {
    const Tensor g = randn({n});
    cpu.push_back(Variable(zeros({n}), true));
    cpu.back().set_grad(g.clone());
    gpu.push_back(Variable(zeros({n}, DType::f32, Device::cuda()), true));
    gpu.back().set_grad(g.to(Device::cuda()));
  }
  const Tensor nc = clip_grad_norm(cpu, 2.0), ng = clip_grad_norm(gpu, 2.0);
  EXPECT_TRUE(ng.is_cuda());
  expect_close(ng.to(Device::cpu()), nc, 1e-5, 0, "norm");
  for (size_t i = 0; i < cpu.size(); ++i)
    expect_close(gpu[i].grad().to(Device::cpu()), cpu[i].grad(), 1e-5, 1e-6, "clipped gradient");
}

}  // namespace
}  // namespace pit::optim
