#include "trainer/optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace pit::optim {

const char* schedule_name(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::constant: return "constant";
    case ScheduleKind::cosine: return "cosine";
    case ScheduleKind::step: return "step";
  }
  return "?";
}

ScheduleKind parse_schedule(std::string_view name) {
  for (const ScheduleKind k : {ScheduleKind::constant, ScheduleKind::cosine, ScheduleKind::step})
    if (name == schedule_name(k)) return k;
  PIT_THROW("unknown lr schedule '", name, "'; allowed: constant, cosine, step");
}

LrSchedule::LrSchedule(const ScheduleOptions& o) : opt_(o) {
  PIT_CHECK(o.lr >= 0.0, "lr schedule: lr must be >= 0, got ", o.lr);
  PIT_CHECK(o.warmup_steps >= 0, "lr schedule: warmup_steps must be >= 0, got ", o.warmup_steps);
  if (o.kind == ScheduleKind::cosine) {
    PIT_CHECK(o.min_lr >= 0.0 && o.min_lr <= o.lr, "lr schedule: min_lr must be in [0, lr = ",
              o.lr, "], got ", o.min_lr);
    PIT_CHECK(o.total_steps > o.warmup_steps, "lr schedule: cosine needs total_steps > "
              "warmup_steps, got total_steps ", o.total_steps, " and warmup_steps ", o.warmup_steps);
  }
  if (o.kind == ScheduleKind::step) {
    PIT_CHECK(o.step_every >= 1, "lr schedule: step_every must be >= 1, got ", o.step_every);
    PIT_CHECK(o.gamma > 0.0, "lr schedule: gamma must be > 0, got ", o.gamma);
  }
}

double LrSchedule::lr_at(int64_t step) const {
  PIT_CHECK(step >= 0, "lr schedule: the step must be >= 0, got ", step);
  const ScheduleOptions& o = opt_;
  if (step < o.warmup_steps)
    return o.lr * static_cast<double>(step + 1) / static_cast<double>(o.warmup_steps);
  const int64_t s = step - o.warmup_steps;
  switch (o.kind) {
    case ScheduleKind::constant: return o.lr;
    case ScheduleKind::cosine: {
      const double span = static_cast<double>(o.total_steps - o.warmup_steps);
      const double p = std::min(1.0, static_cast<double>(s) / span);
      return o.min_lr + (o.lr - o.min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
    }
    case ScheduleKind::step:
      return o.lr * std::pow(o.gamma, static_cast<double>(s / o.step_every));
  }
  return o.lr;
}

}  // namespace pit::optim
