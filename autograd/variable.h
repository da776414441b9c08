#pragma once
// Variable: a Tensor plus what autograd needs (requires_grad, the accumulated gradient, the Node
// that produced it). Copies of a Variable share one state, like shared_ptr.
//
// Autograd keeps no version counter. Ops save the tensors their backward reads without copying
// them, so an in-place write into one between forward and backward (an optimizer step before a
// second backward through a retained graph, or t = p.data(); t.copy_(...)) is not detected:
// backward silently uses the new values. set_data() installs another tensor and leaves a saved
// one as it was.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pit {

class Node;

struct VariableState {
  Tensor data;
  Tensor grad;  // accumulated by backward() for leaves that require grad
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // null for leaves
  int output_index = 0;           // which output of grad_fn this is
  std::vector<std::function<void(Tensor&)>> hooks;  // leaves: run once the grad is final
  std::string name;
  // Set when a module replaced this parameter by others (Linear::sparsify): what replaced it. An
  // optimizer made before that refuses to step rather than update a Variable the model no longer
  // reads (and never update its replacement).
  std::string replaced_by;
};

class Variable {
 public:
  Variable() = default;  // undefined
  explicit Variable(Tensor data, bool requires_grad = false, std::string name = {});
  explicit Variable(std::shared_ptr<VariableState> state) : state_(std::move(state)) {}

  bool defined() const { return state_ && state_->data.defined(); }
  const Tensor& data() const;
  // Replaces the values (an optimizer step, loading a checkpoint); the graph is untouched.
  void set_data(Tensor data);
  const Tensor& grad() const { return state()->grad; }
  void set_grad(Tensor grad) { state()->grad = std::move(grad); }
  void zero_grad() { state()->grad = Tensor(); }
  bool requires_grad() const { return state_ && state_->requires_grad; }
  // Only leaves may change it: a computed Variable requires grad iff an input does.
  Variable& set_requires_grad(bool requires_grad);
  bool is_leaf() const { return !state_ || !state_->grad_fn; }
  const std::shared_ptr<Node>& grad_fn() const { return state()->grad_fn; }
  int output_index() const { return state()->output_index; }
  const std::string& name() const { return state()->name; }

  // Tensor metadata, for convenience.
  const Shape& shape() const { return data().shape(); }
  int64_t dim() const { return data().dim(); }
  int64_t size(int64_t d) const { return data().size(d); }
  int64_t numel() const { return data().numel(); }
  DType dtype() const { return data().dtype(); }
  Device device() const { return data().device(); }

  // Back-propagates from this Variable. `grad` defaults to ones for a one-element Variable;
  // otherwise it must be given, shaped like this one. Saved tensors are freed afterwards unless
  // retain_graph, and a second backward through freed nodes throws.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

  // The same data, cut from the graph, requires_grad false.
  Variable detach() const;

  // Leaf only: fn(grad) runs once per backward() when this leaf's gradient for that backward is
  // complete, before it is added into grad(); fn may modify it (data-parallel all-reduce hooks
  // here).
  void register_hook(std::function<void(Tensor&)> fn);

  const std::shared_ptr<VariableState>& state() const;
  bool same(const Variable& other) const { return state_ == other.state_; }

 private:
  std::shared_ptr<VariableState> state_;
};

}  // namespace pit
