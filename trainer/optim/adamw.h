#pragma once
// AdamW as torch.optim.AdamW: decoupled weight decay (parameters flagged for decay only), bias
// correction per parameter update count. State "exp_avg" and "exp_avg_sq" per parameter. One
// fused kernel per parameter (kernels::adamw_step).
#include "trainer/optim/optimizer.h"

namespace pit::optim {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;  // PyTorch's default
  bool bias_correction = true;
};

class AdamW : public Optimizer {
 public:
  AdamW(std::vector<Param> params, const AdamWOptions& options = {});
  const char* type_name() const override { return "AdamW"; }
  const AdamWOptions& options() const { return opt_; }

 protected:
  void update(size_t i, double lr) override;

 private:
  AdamWOptions opt_;
};

}  // namespace pit::optim
