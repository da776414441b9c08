#pragma once
// Sparsity schedules of dynamic sparse training (issue #6), pure functions of the step (0-based):
// - gradual magnitude pruning's cubic schedule (Zhu & Gupta, "To prune, or not to prune", 2017):
//   the mask is updated at steps start, start + every, ... and at end; at an update step u the
//   target sparsity is
//       s(u) = final + (initial - final) * (1 - (u - start) / (end - start))^3,
//   and between updates the last target holds; before start the layer is dense (sparsity 0),
//   from end on it is `final`;
// - the cosine decay of SET / RigL's drop fraction (Evci et al., "Rigging the Lottery", 2020):
//       f(t) = f0 / 2 * (1 + cos(pi * t / end)) for t < end, 0 from end on (no more updates).
#include <cstdint>

namespace pit::sparse_train {

struct CubicScheduleOptions {
  double initial = 0.0;  // sparsity at the first update (start)
  double final = 0.9;    // sparsity from `end` on
  int64_t start = 0, end = 0;
  int64_t every = 100;   // steps between mask updates
};

class CubicSchedule {
 public:
  explicit CubicSchedule(const CubicScheduleOptions& options);  // validates, naming the bad field
  // Whether the mask changes at `step`: start, start + every, ... below end, and end.
  bool is_update_step(int64_t step) const;
  // The target sparsity in force at `step` (that of the last update step <= step).
  double sparsity_at(int64_t step) const;
  const CubicScheduleOptions& options() const { return o_; }

 private:
  double at_update(int64_t u) const;
  CubicScheduleOptions o_;
};

struct DropFractionOptions {
  double initial = 0.3;  // f0: the fraction of a layer's non-zeros dropped (and regrown) at step 0
  int64_t end = 0;       // no update from this step on (RigL: 75% of training)
  int64_t every = 100;   // steps between mask updates
};

class DropFraction {
 public:
  explicit DropFraction(const DropFractionOptions& options);
  bool is_update_step(int64_t step) const;  // 0 < step < end, step % every == 0
  double at(int64_t step) const;            // the cosine decay above
  const DropFractionOptions& options() const { return o_; }

 private:
  DropFractionOptions o_;
};

}  // namespace pit::sparse_train
