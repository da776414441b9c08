// A tiny MLP trained with plain SGD on the CPU must learn: the loss falls at least 10x.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/grad_mode.h"
#include "core/random.h"
#include "ops/functional.h"
#include "ops/operators.h"

using namespace pit;

TEST(MlpTraining, SgdLearnsASmoothFunction) {
  manual_seed(7);
  // Task: y = sin(2 x0) + x1 * x2 on 256 random points in [-1, 1)^3.
  const int64_t n = 256, hidden = 32;
  const std::vector<float> u = rand({n, 3}).to_vector<float>();
  std::vector<float> xs(u.size()), ys(n);
  for (size_t i = 0; i < u.size(); ++i) xs[i] = 2.0f * u[i] - 1.0f;
  for (int64_t i = 0; i < n; ++i)
    ys[i] = std::sin(2.0f * xs[3 * i]) + xs[3 * i + 1] * xs[3 * i + 2];
  const Variable x(from_vector(xs, {n, 3}));
  const Variable y(from_vector(ys, {n, 1}));

  // He-style init scaled by fan-in.
  Variable w1(randn({hidden, 3}).to(DType::f32), true), b1(zeros({hidden}), true);
  Variable w2(randn({1, hidden}).to(DType::f32), true), b2(zeros({1}), true);
  {
    NoGradGuard g;
    w1.set_data(ops::mul(w1, std::sqrt(2.0 / 3)).data());
    w2.set_data(ops::mul(w2, std::sqrt(1.0 / hidden)).data());
  }
  std::vector<Variable> params{w1, b1, w2, b2};

  auto loss_fn = [&] {
    const Variable h = ops::tanh(ops::linear(x, w1, b1));
    const Variable d = ops::linear(h, w2, b2) - y;
    return ops::mean(d * d);
  };
  const double first = loss_fn().data().item<float>();
  double last = first;
  const double lr = 0.1;
  for (int step = 0; step < 1500; ++step) {
    for (Variable& p : params) p.zero_grad();
    const Variable loss = loss_fn();
    loss.backward();
    last = loss.data().item<float>();
    for (Variable& p : params) {
      Tensor updated = p.data().clone();
      updated.add_(p.grad(), -lr);
      p.set_data(updated);
    }
  }
  EXPECT_LT(last, first / 10.0) << "loss went from " << first << " to " << last;
}
