#include "trainer/optim/loss_scaler.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "ops/functional.h"
#include "ops/kernels.h"
#include "trainer/optim/grads.h"

namespace pit::optim {

LossScaler::LossScaler(const LossScalerOptions& options) : opt_(options), scale_(options.init_scale) {
  PIT_CHECK(opt_.init_scale > 0.0, "LossScaler: init_scale must be > 0, got ", opt_.init_scale);
  PIT_CHECK(opt_.growth_factor >= 1.0, "LossScaler: growth_factor must be >= 1, got ",
            opt_.growth_factor);
  PIT_CHECK(opt_.backoff_factor > 0.0 && opt_.backoff_factor < 1.0,
            "LossScaler: backoff_factor must be in (0, 1), got ", opt_.backoff_factor);
  PIT_CHECK(opt_.growth_interval >= 1, "LossScaler: growth_interval must be >= 1, got ",
            opt_.growth_interval);
}

LossScaler LossScaler::fixed(double scale) {
  LossScalerOptions o;
  o.dynamic = false;
  o.init_scale = scale;
  return LossScaler(o);
}

Variable LossScaler::scale_loss(const Variable& loss) const { return ops::mul(loss, scale_); }

bool LossScaler::unscale_and_check(const std::vector<Variable>& params) const {
  NoGradGuard no_grad;
  const std::vector<Tensor> grads = f32_grads(params);
  if (grads.empty()) return false;
  // One list per device (one in practice); one host read each.
  bool found = false;
  std::vector<Tensor> rest = grads;
  while (!rest.empty()) {
    const Device d = rest.front().device();
    std::vector<Tensor> here, other;
    for (Tensor& g : rest) (g.device() == d ? here : other).push_back(g);
    found |= kernels::unscale_and_check_(here, 1.0 / scale_).item<float>() != 0.0f;
    rest = std::move(other);
  }
  return found;
}

void LossScaler::update(bool found_inf) {
  if (!opt_.dynamic) return;
  if (found_inf) {
    scale_ *= opt_.backoff_factor;
    good_steps_ = 0;
    return;
  }
  if (++good_steps_ >= opt_.growth_interval) {
    scale_ *= opt_.growth_factor;
    good_steps_ = 0;
  }
}

train::StateDict LossScaler::state_dict() const {
  train::StateDict sd;
  sd.reals["scale"] = scale_;
  sd.ints["good_steps"] = good_steps_;
  return sd;
}

void LossScaler::load_state_dict(const train::StateDict& state) {
  const auto s = state.reals.find("scale");
  const auto g = state.ints.find("good_steps");
  PIT_CHECK(s != state.reals.end() && g != state.ints.end(), "LossScaler.load_state_dict: the "
            "state needs reals 'scale' and ints 'good_steps'", s == state.reals.end() ? "; 'scale' is missing" : "",
            g == state.ints.end() ? "; 'good_steps' is missing" : "");
  PIT_CHECK(s->second > 0.0, "LossScaler.load_state_dict: scale must be > 0, got ", s->second);
  // A static scale is the config's: a resume that sets another one (precision.loss_scale) takes
  // it, rather than the checkpoint's, which it could never back off from.
  if (!opt_.dynamic) return;
  scale_ = s->second;
  good_steps_ = std::clamp<int64_t>(g->second, 0, opt_.growth_interval - 1);
}

}  // namespace pit::optim
