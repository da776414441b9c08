#include "trainer/sparse/schedule.h"

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace pit::sparse_train {

CubicSchedule::CubicSchedule(const CubicScheduleOptions& o) : o_(o) {
  PIT_CHECK(o.initial >= 0.0 && o.initial < 1.0, "cubic schedule: initial sparsity must be in [0, 1), got ", o.initial);
  PIT_CHECK(o.final >= o.initial && o.final < 1.0, "cubic schedule: final sparsity must be in [initial (", o.initial,
            "), 1), got ", o.final);
  PIT_CHECK(o.start >= 0 && o.end >= o.start, "cubic schedule: need 0 <= start <= end, got start ", o.start, ", end ",
            o.end);
  PIT_CHECK(o.every >= 1, "cubic schedule: every (steps between mask updates) must be >= 1, got ", o.every);
}

bool CubicSchedule::is_update_step(int64_t step) const {
  if (step < o_.start || step > o_.end) return false;
  return step == o_.end || (step - o_.start) % o_.every == 0;
}

double CubicSchedule::at_update(int64_t u) const {
  if (o_.end == o_.start) return o_.final;
  const double p = static_cast<double>(u - o_.start) / static_cast<double>(o_.end - o_.start);
  const double r = 1.0 - p;
  return o_.final + (o_.initial - o_.final) * r * r * r;
}

double CubicSchedule::sparsity_at(int64_t step) const {
  if (step < o_.start) return 0.0;
  if (step >= o_.end) return o_.final;
  return at_update(o_.start + (step - o_.start) / o_.every * o_.every);
}

DropFraction::DropFraction(const DropFractionOptions& o) : o_(o) {
  PIT_CHECK(o.initial >= 0.0 && o.initial <= 1.0, "drop fraction: the initial fraction must be in [0, 1], got ",
            o.initial);
  PIT_CHECK(o.end >= 0, "drop fraction: end must be >= 0, got ", o.end);
  PIT_CHECK(o.every >= 1, "drop fraction: every (steps between mask updates) must be >= 1, got ", o.every);
}

bool DropFraction::is_update_step(int64_t step) const { return step > 0 && step < o_.end && step % o_.every == 0; }

double DropFraction::at(int64_t step) const {
  if (step >= o_.end) return 0.0;
  return o_.initial / 2.0 * (1.0 + std::cos(std::numbers::pi * static_cast<double>(step) / static_cast<double>(o_.end)));
}

}  // namespace pit::sparse_train
