#pragma once
// Optimizer: the base of SGD and AdamW. It holds the parameters (named by their module paths,
// each with a weight-decay flag), per-parameter state tensors and update counts, and speaks
// StateDict: tensors "<param path>/<slot>" (e.g. "blocks/0/attn/qkv/weight/exp_avg"), ints
// "<param path>/step" and "step". Updates run in place, one fused kernel per parameter
// (kernels::adamw_step / sgd_step); parameters without a gradient are skipped, as in PyTorch.
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.h"
#include "trainer/state.h"

namespace pit::optim {

struct Param {
  std::string name;  // its path in the module ("blocks/0/mlp/fc/weight")
  Variable var;
  bool weight_decay = true;
};

// Parameters named as Module::named_parameters() gives them; those of dim >= 2 (matmul and
// embedding weights) decay, the others (biases, norm weights) do not, as in GPT-2 / nanoGPT.
std::vector<Param> with_default_decay(const std::vector<std::pair<std::string, Variable>>& named);

class Optimizer {
 public:
  // Every Variable must be a leaf that requires grad, with an f32 contiguous tensor; names must
  // be unique.
  explicit Optimizer(std::vector<Param> params);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual const char* type_name() const = 0;
  // One update of every parameter that has a gradient, with learning rate lr.
  void step(double lr);
  void zero_grad();
  const std::vector<Param>& params() const { return params_; }
  int64_t steps() const { return steps_; }  // calls of step()

  // A parameter whose layout changed (a sparse layer's compact values after a mask change,
  // nn/sparse_linear.h): each of its state tensors becomes relayout(old), which must come out
  // shaped like the parameter now is (entries that are new start at 0).
  void relayout_state(const Variable& param, const std::function<Tensor(const Tensor&)>& relayout);

  train::StateDict state_dict() const;  // copies on the host
  int64_t state_bytes() const;          // bytes of the state tensors it holds, on their devices
  // Every state entry of every parameter must be present and shaped like the parameter, and
  // nothing else; otherwise nothing is loaded and the error names the entries.
  void load_state_dict(const train::StateDict& state);

 protected:
  // Slot names of the per-parameter state (each a tensor shaped like the parameter, zero at
  // first), fixed by the subclass's constructor.
  void set_state_slots(std::vector<std::string> slots);
  // Update parameter i (its gradient is defined); its update count is already incremented.
  virtual void update(size_t i, double lr) = 0;
  // State tensor `slot` of parameter i, on the parameter's device.
  const Tensor& state(size_t i, size_t slot);
  int64_t param_steps(size_t i) const { return param_steps_[i]; }

 private:
  std::vector<Param> params_;
  std::vector<std::string> slots_;
  std::vector<std::vector<Tensor>> state_;  // [param][slot]
  std::vector<int64_t> param_steps_;
  int64_t steps_ = 0;
};

}  // namespace pit::optim
