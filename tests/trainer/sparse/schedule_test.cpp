// The sparsity schedules against their formulas at every step, and their argument checks.
#include "trainer/sparse/schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "tests/core/expect_error.h"

namespace pit::sparse_train {
namespace {

using test::expect_error_contains;

TEST(CubicSchedule, EqualsZhuAndGuptaAtEveryStep) {
  struct Case {
    double initial, final;
    int64_t start, end, every;
  };
  for (const Case c : {Case{0.0, 0.9, 100, 1000, 100}, Case{0.2, 0.95, 0, 700, 100}, Case{0.0, 0.8, 50, 333, 40},
                       Case{0.5, 0.5, 10, 20, 5}, Case{0.0, 0.7, 30, 30, 10}}) {
    const CubicSchedule s({.initial = c.initial, .final = c.final, .start = c.start, .end = c.end, .every = c.every});
    double last = 0.0;  // the target of the last update, as a training loop would keep it
    int updates = 0;
    for (int64_t step = 0; step <= c.end + 50; ++step) {
      const bool update = step >= c.start && step <= c.end && (step == c.end || (step - c.start) % c.every == 0);
      EXPECT_EQ(s.is_update_step(step), update) << step;
      if (update) {
        ++updates;
        const double p = c.end == c.start ? 1.0 : static_cast<double>(step - c.start) / static_cast<double>(c.end - c.start);
        last = c.final + (c.initial - c.final) * std::pow(1.0 - p, 3);
      }
      EXPECT_NEAR(s.sparsity_at(step), step < c.start ? 0.0 : last, 1e-12) << "step " << step;
    }
    EXPECT_NEAR(s.sparsity_at(c.end), c.final, 1e-12);
    EXPECT_EQ(updates, c.end == c.start ? 1 : static_cast<int>((c.end - c.start - 1) / c.every) + 2);
  }
}

TEST(CubicSchedule, ChecksItsArguments) {
  expect_error_contains([] { CubicSchedule({.initial = 0.5, .final = 0.4}); }, "final sparsity must be in [initial");
  expect_error_contains([] { CubicSchedule({.final = 1.0}); }, "final sparsity must be in");
  expect_error_contains([] { CubicSchedule({.start = 10, .end = 5}); }, "need 0 <= start <= end");
  expect_error_contains([] { CubicSchedule({.every = 0}); }, "every");
}

TEST(DropFraction, IsTheCosineDecay) {
  const DropFraction d({.initial = 0.3, .end = 750, .every = 100});
  for (int64_t step = 0; step <= 900; ++step) {
    const double want = step >= 750 ? 0.0 : 0.15 * (1.0 + std::cos(std::numbers::pi * step / 750.0));
    EXPECT_NEAR(d.at(step), want, 1e-12) << step;
    EXPECT_EQ(d.is_update_step(step), step > 0 && step < 750 && step % 100 == 0) << step;
  }
  EXPECT_NEAR(d.at(0), 0.3, 1e-15);
  expect_error_contains([] { DropFraction({.initial = 1.5}); }, "initial fraction must be in [0, 1]");
}

}  // namespace
}  // namespace pit::sparse_train
