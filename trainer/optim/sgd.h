#pragma once
// SGD as torch.optim.SGD: L2 weight decay added to the gradient (parameters flagged for decay
// only), momentum with dampening, Nesterov. One fused kernel per parameter (kernels::sgd_step).
#include "trainer/optim/optimizer.h"

namespace pit::optim {

struct SgdOptions {
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening 0
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Param> params, const SgdOptions& options = {});
  const char* type_name() const override { return "SGD"; }
  const SgdOptions& options() const { return opt_; }

 protected:
  void update(size_t i, double lr) override;

 private:
  SgdOptions opt_;
};

}  // namespace pit::optim
