#include "trainer/optim/sgd.h"

#include "ops/kernels.h"

namespace pit::optim {

SGD::SGD(std::vector<Param> params, const SgdOptions& options)
    : Optimizer(std::move(params)), opt_(options) {
  PIT_CHECK(opt_.momentum >= 0.0, "SGD: momentum must be >= 0, got ", opt_.momentum);
  PIT_CHECK(opt_.weight_decay >= 0.0, "SGD: weight_decay must be >= 0, got ", opt_.weight_decay);
  PIT_CHECK(!opt_.nesterov || (opt_.momentum > 0.0 && opt_.dampening == 0.0),
            "SGD: Nesterov momentum needs momentum > 0 and dampening 0, got momentum ",
            opt_.momentum, " and dampening ", opt_.dampening);
  if (opt_.momentum != 0.0) set_state_slots({"momentum_buffer"});
}

void SGD::update(size_t i, double lr) {
  const Param& p = params()[i];
  kernels::SgdHyper h;
  h.lr = lr;
  h.momentum = opt_.momentum;
  h.dampening = opt_.dampening;
  h.weight_decay = p.weight_decay ? opt_.weight_decay : 0.0;
  h.nesterov = opt_.nesterov;
  h.first_step = param_steps(i) == 1;
  kernels::sgd_step(p.var.data(), p.var.grad(), opt_.momentum != 0.0 ? state(i, 0) : Tensor(), h);
}

}  // namespace pit::optim
