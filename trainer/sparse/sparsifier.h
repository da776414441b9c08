#pragma once
// Sparsifier: dynamic sparse training of a model's Linear layers (issue #6). It makes the chosen
// layers sparse (nn::Linear::sparsify: compact values on the PIT kernels), sets their first
// masks, and changes the masks during training:
//   - magnitude: one-shot (start == end) or gradual with the cubic schedule (schedule.h); at an
//     update step every layer keeps its units of largest L2 norm, per layer at the budget's
//     density (threshold: layer) or over all layers at once (threshold: global);
//   - set / rigl: from a random mask at the budget's density, every `update_every` steps until
//     `update_end` the layer drops drop_fraction(t) (cosine decay) of its kept units of smallest
//     norm and grows as many: at random (SET) or where the dense gradient's unit norm is largest
//     (RigL; the dense gradient is computed at those steps only).
// New units start at zero, and so does their optimizer state. Budgets: uniform or ERK over the
// sparse layers; first and last chosen layers optionally left dense. Every choice reads only
// the model's values and the step, so data-parallel ranks pick the same masks.
#include <cstdint>
#include <string>
#include <vector>

#include "core/comm.h"
#include "ops/pit/index.h"
#include "trainer/nn/module.h"
#include "trainer/optim/optimizer.h"
#include "trainer/sparse/budget.h"
#include "trainer/sparse/schedule.h"

namespace pit::nn {
class Linear;
}

namespace pit::sparse_train {

enum class Method { magnitude, set, rigl };
Method parse_method(std::string_view name);  // "magnitude", "set", "rigl"
const char* method_name(Method m);

struct SparsifierOptions {
  Method method = Method::magnitude;
  std::vector<std::string> layers = {"*"};  // patterns of Linear paths ('*' any run of characters)
  sparse::MicroTile unit = {32, 1};
  double sparsity = 0.9;  // of the sparse layers' weights, in all (the final one for magnitude)
  Budget budget = Budget::uniform;
  bool dense_first_last = false;  // leave the first and last chosen layers dense
  // magnitude
  double initial_sparsity = 0.0;
  int64_t start = 0, end = 0, every = 100;
  bool global = false;  // one threshold over all layers (the budget then does not apply)
  // set, rigl
  double drop_fraction = 0.3;
  int64_t update_every = 100, update_end = 0;
  uint64_t seed = 0;
};

// What a layer holds now.
struct LayerSparsity {
  std::string name;  // the Linear's path
  int64_t out = 0, in = 0;
  double density = 1.0;     // kept weights / weights
  double computed = 1.0;    // weights the kernels compute (listed micro-tiles; all on the dense path) / weights
  int64_t kept_units = 0, units = 0;
};

struct MaskChanges {
  bool updated = false;  // a mask update ran at this step
  // An update step whose update did not run: RigL's gradients overflowed (the kept ones, or the
  // dense gradient it grows from), as under a loss scale in f16; the masks are left as they were.
  bool skipped = false;
  int64_t changed = 0;   // units that were dropped plus units grown
  // Layers this update left without a unit (a global threshold can: their weights all ranked
  // below the other layers'; a per-layer budget that rounds to no unit of a small layer, too);
  // such a layer passes on its bias alone.
  std::vector<std::string> emptied = {};
};

class Sparsifier {
 public:
  // Makes the matched Linear layers of `model` sparse and sets their first masks. Throws when no
  // layer matches, naming the model's Linear layers. comm (optional): the data-parallel ranks;
  // RigL averages its dense gradients over them, so that every rank grows the same units.
  Sparsifier(nn::Module& model, const SparsifierOptions& options, Communicator* comm = nullptr);

  // Before the forward of `step` (0-based): RigL asks its layers for the dense gradient when
  // `step` updates the masks.
  void before_step(int64_t step);
  // After the optimizer's step `step`: updates the masks when the schedule says so and re-lays
  // out the optimizer's state of every changed layer. RigL skips an update whose gradients are
  // not finite (`gradients_finite` false: a loss scaler's overflow, the step itself skipped; or a
  // dense gradient that overflowed at pruned positions): growing from inf / NaN scores would pick
  // arbitrary units (MaskChanges::skipped).
  MaskChanges after_step(int64_t step, optim::Optimizer& optimizer, bool gradients_finite = true);

  std::vector<LayerSparsity> layers() const;
  double sparsity() const;       // pruned weights / weights over the sparse layers
  double flops_saved() const;    // 1 - computed / dense over the sparse layers' GEMMs
  const SparsifierOptions& options() const { return o_; }
  // "magnitude 32x1 -> 90%, 3 layers (ERK), cubic 0.00 -> 0.90 over steps 100..2000 every 100"
  std::string describe() const;
  // "" when the schedule plays out within a run of `steps` steps; otherwise what the run falls
  // short of: magnitude pruning whose end_step is not before the run's last step ends the run
  // below sparse.sparsity ("sparse.end_step (500) is not before run.steps (200): the run ends at
  // 45% sparsity, not the 80% of sparse.sparsity; ..."); SET / RigL whose update_every leaves
  // no update step in the run.
  std::string shortfall(int64_t steps) const;

 private:
  bool is_update_step(int64_t step) const;
  MaskChanges prune_by_magnitude(int64_t step, optim::Optimizer& optimizer);
  MaskChanges drop_and_grow_all(int64_t step, optim::Optimizer& optimizer);
  std::vector<double> densities(double sparsity) const;  // per layer, by the budget

  SparsifierOptions o_;
  Communicator* comm_ = nullptr;
  std::vector<std::pair<std::string, nn::Linear*>> layers_;
  std::vector<LayerShape> shapes_;
  CubicSchedule cubic_;
  DropFraction drop_;
};

}  // namespace pit::sparse_train
