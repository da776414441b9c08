#pragma once
// The MoE layers of a transformer LM in the training loop: their auxiliary losses added to the
// objective, and their metrics over a logging window (read from the device only when logging).
#include <memory>
#include <string>
#include <vector>

#include "core/comm.h"
#include "trainer/nn/module.h"
#include "trainer/nn/moe.h"
#include "trainer/train/metrics.h"

namespace pit::train {

class MoeStats {
 public:
  // No MoE layers (or not a transformer): inactive. With `comm` (several ranks) every rank must
  // flush at the same steps: the metrics are those of the global batch (losses averaged over the
  // ranks, tokens per expert and drops summed).
  explicit MoeStats(const nn::Module& model, Communicator* comm = nullptr);
  bool active() const { return !layers_.empty(); }
  // loss + aux_coef * (sum over layers of the load-balancing loss) + z_coef * (sum of the router
  // z-losses), all of the last forward; keeps the two sums for the window.
  Variable objective(const Variable& loss, double aux_coef, double z_coef);
  // At a log step: the window's mean aux and z losses, and the last step's tokens per expert
  // (smallest and largest over every MoE layer) and assignments dropped by a capacity (summed over
  // the layers; 0 when dropless) into `rec`; returns " | aux A | z Z | tokens/expert MIN-MAX"
  // (and " | dropped N" when N > 0) for the progress line. Starts a new window.
  std::string flush(MetricsRecord& rec, int64_t window);

 private:
  std::vector<std::shared_ptr<nn::MoE>> layers_;
  Communicator* comm_;
  Tensor aux_sum_, z_sum_;  // f32 scalars on the device
};

}  // namespace pit::train
