#pragma once
// Learning-rate schedules: pure functions of the step (0-based), each with an optional linear
// warm-up. With warmup_steps = W > 0, steps s < W use lr * (s + 1) / W (the last warm-up step
// reaches lr); from step W on the schedule proper runs on s' = s - W:
// - constant: lr;
// - cosine:   min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2, p = min(1, s' / (total_steps - W)),
//             so min_lr from step total_steps on;
// - step:     lr * gamma^floor(s' / step_every).
#include <cstdint>
#include <string_view>

namespace pit::optim {

enum class ScheduleKind { constant, cosine, step };
ScheduleKind parse_schedule(std::string_view name);  // "constant", "cosine", "step"
const char* schedule_name(ScheduleKind kind);

struct ScheduleOptions {
  ScheduleKind kind = ScheduleKind::constant;
  double lr = 1e-3;       // peak (after warm-up)
  int64_t warmup_steps = 0;
  double min_lr = 0.0;    // cosine: the floor
  int64_t total_steps = 0;  // cosine: the step where the decay reaches min_lr (> warmup_steps)
  int64_t step_every = 1;   // step: decay period
  double gamma = 0.1;       // step: factor per period
};

class LrSchedule {
 public:
  explicit LrSchedule(const ScheduleOptions& options);  // validates, naming the bad field
  double lr_at(int64_t step) const;
  const ScheduleOptions& options() const { return opt_; }

 private:
  ScheduleOptions opt_;
};

}  // namespace pit::optim
