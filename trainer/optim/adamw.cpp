#include "trainer/optim/adamw.h"

#include "ops/kernels.h"

namespace pit::optim {

AdamW::AdamW(std::vector<Param> params, const AdamWOptions& options)
    : Optimizer(std::move(params)), opt_(options) {
  PIT_CHECK(opt_.beta1 >= 0.0 && opt_.beta1 < 1.0 && opt_.beta2 >= 0.0 && opt_.beta2 < 1.0,
            "AdamW: betas must be in [0, 1), got (", opt_.beta1, ", ", opt_.beta2, ")");
  PIT_CHECK(opt_.eps >= 0.0, "AdamW: eps must be >= 0, got ", opt_.eps);
  PIT_CHECK(opt_.weight_decay >= 0.0, "AdamW: weight_decay must be >= 0, got ", opt_.weight_decay);
  set_state_slots({"exp_avg", "exp_avg_sq"});
}

void AdamW::update(size_t i, double lr) {
  const Param& p = params()[i];
  kernels::AdamWHyper h;
  h.lr = lr;
  h.beta1 = opt_.beta1;
  h.beta2 = opt_.beta2;
  h.eps = opt_.eps;
  h.weight_decay = p.weight_decay ? opt_.weight_decay : 0.0;
  h.step = param_steps(i);
  h.bias_correction = opt_.bias_correction;
  const Tensor m = state(i, 0), v = state(i, 1);
  kernels::adamw_step(p.var.data(), p.var.grad(), m, v, h);
}

}  // namespace pit::optim
