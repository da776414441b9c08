#pragma once
// LossScaler: loss scaling for f16 training. The loss is multiplied by the scale before
// backward; unscale_and_check() divides the gradients by it on the device and reports whether
// any is inf or NaN (one host read per step); a step with overflow is skipped by the caller and
// update() adjusts the scale. Dynamic mode (as torch.cuda.amp.GradScaler): backoff (x0.5) on
// overflow, growth (x2) after growth_interval steps without one. Static mode: the scale never
// changes (overflowing steps are still reported, hence skipped).
//
// Gradients accumulate across backward() calls, so clear them before each backward: after an
// overflow the inf / NaN gradients would otherwise stay, and every later step would overflow too.
//
//   optimizer.zero_grad();
//   Variable loss = ...;
//   scaler.scale_loss(loss).backward();
//   const bool overflow = scaler.unscale_and_check(params);
//   if (!overflow) { clip_grad_norm(params, 1.0); optimizer.step(lr); }
//   scaler.update(overflow);
#include <cstdint>
#include <vector>

#include "autograd/variable.h"
#include "trainer/state.h"

namespace pit::optim {

struct LossScalerOptions {
  bool dynamic = true;
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;  // steps without overflow before the scale grows
};

class LossScaler {
 public:
  explicit LossScaler(const LossScalerOptions& options = {});
  static LossScaler fixed(double scale);  // static mode

  double scale() const { return scale_; }
  bool dynamic() const { return opt_.dynamic; }
  int64_t good_steps() const { return good_steps_; }  // since the last change of the scale

  Variable scale_loss(const Variable& loss) const;
  // Gradients (those defined) *= 1 / scale in place; true when one of them holds inf or NaN.
  bool unscale_and_check(const std::vector<Variable>& params) const;
  void update(bool found_inf);

  train::StateDict state_dict() const;  // reals "scale", ints "good_steps"
  // Dynamic mode takes the saved scale and count (a count outside [0, growth_interval) clamped to
  // it); static mode keeps its own scale.
  void load_state_dict(const train::StateDict& state);

 private:
  LossScalerOptions opt_;
  double scale_;
  int64_t good_steps_ = 0;
};

}  // namespace pit::optim
