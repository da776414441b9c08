// Learning-rate schedules against their formulas at chosen steps.
#include "trainer/optim/schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "tests/core/expect_error.h"

namespace pit::optim {
namespace {

using test::expect_error_contains;

ScheduleOptions opts(ScheduleKind kind, int64_t warmup) {
  ScheduleOptions o;
  o.kind = kind;
  o.lr = 0.1;
  o.warmup_steps = warmup;
  return o;
}

TEST(Schedule, ConstantWithAndWithoutWarmup) {
  const LrSchedule plain(opts(ScheduleKind::constant, 0));
  for (const int64_t s : {0, 1, 1000}) EXPECT_DOUBLE_EQ(plain.lr_at(s), 0.1);
  const LrSchedule warm(opts(ScheduleKind::constant, 4));
  EXPECT_DOUBLE_EQ(warm.lr_at(0), 0.1 * 1 / 4);
  EXPECT_DOUBLE_EQ(warm.lr_at(1), 0.1 * 2 / 4);
  EXPECT_DOUBLE_EQ(warm.lr_at(3), 0.1);
  EXPECT_DOUBLE_EQ(warm.lr_at(4), 0.1);
  EXPECT_DOUBLE_EQ(warm.lr_at(99), 0.1);
}

TEST(Schedule, CosineFollowsTheFormula) {
  ScheduleOptions o = opts(ScheduleKind::cosine, 10);
  o.min_lr = 0.01;
  o.total_steps = 110;
  const LrSchedule s(o);
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.1 / 10);
  EXPECT_DOUBLE_EQ(s.lr_at(9), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(10), 0.1);                  // progress 0
  EXPECT_NEAR(s.lr_at(60), 0.01 + 0.09 * 0.5, 1e-15);  // halfway: cos(pi/2) = 0
  const double p = 25.0 / 100.0;                       // step 35
  EXPECT_NEAR(s.lr_at(35), 0.01 + 0.09 * 0.5 * (1 + std::cos(std::numbers::pi * p)), 1e-15);
  EXPECT_NEAR(s.lr_at(110), 0.01, 1e-15);
  EXPECT_NEAR(s.lr_at(5000), 0.01, 1e-15);  // stays at the floor
  // Non-increasing after the warm-up.
  for (int64_t i = 10; i < 120; ++i) EXPECT_LE(s.lr_at(i + 1), s.lr_at(i) + 1e-15) << i;
}

TEST(Schedule, StepDecay) {
  ScheduleOptions o = opts(ScheduleKind::step, 0);
  o.step_every = 30;
  o.gamma = 0.5;
  const LrSchedule s(o);
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(29), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(30), 0.05);
  EXPECT_DOUBLE_EQ(s.lr_at(95), 0.1 * 0.125);
  o.warmup_steps = 5;  // the periods count from the end of the warm-up
  const LrSchedule w(o);
  EXPECT_DOUBLE_EQ(w.lr_at(2), 0.1 * 3 / 5);
  EXPECT_DOUBLE_EQ(w.lr_at(34), 0.1);
  EXPECT_DOUBLE_EQ(w.lr_at(35), 0.05);
}

TEST(Schedule, RejectsBadOptions) {
  ScheduleOptions o = opts(ScheduleKind::cosine, 10);
  o.total_steps = 10;
  expect_error_contains([&] { LrSchedule s(o); }, "total_steps > warmup_steps");
  o.total_steps = 100;
  o.min_lr = 0.5;
  expect_error_contains([&] { LrSchedule s(o); }, "min_lr");
  ScheduleOptions st = opts(ScheduleKind::step, 0);
  st.step_every = 0;
  expect_error_contains([&] { LrSchedule s(st); }, "step_every");
  expect_error_contains([] { parse_schedule("linear"); }, "allowed: constant, cosine, step");
  EXPECT_EQ(parse_schedule("cosine"), ScheduleKind::cosine);
  expect_error_contains([] { LrSchedule(opts(ScheduleKind::constant, 0)).lr_at(-1); }, ">= 0");
}

}  // namespace
}  // namespace pit::optim
