#pragma once
// Node: one recorded op on the tape: its differentiable inputs, a backward closure holding only
// what backward needs (saved tensors, a PIT index), and slots where its outputs' gradients
// accumulate during backward().
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/variable.h"
#include "core/tensor.h"

namespace pit {

// Maps the gradients of a node's outputs (an undefined Tensor where an output got none) to the
// gradients of its inputs, in input order (an undefined Tensor: no gradient for that input).
using BackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& grad_outputs)>;

class Node {
 public:
  Node(std::string name, std::vector<Variable> inputs, size_t num_outputs, BackwardFn backward);
  // Frees the graph upstream of it with a loop, not a recursion: a chain of a million ops that
  // never ran backward (or kept its graph) would otherwise overflow the stack as each node's
  // inputs destroyed the node before them.
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const std::string& name() const { return name_; }
  uint64_t sequence() const { return sequence_; }  // position on the tape: later ops are larger
  const std::vector<Variable>& inputs() const { return inputs_; }
  size_t num_outputs() const { return grad_outputs_.size(); }
  bool released() const { return !backward_; }

  // Used by the engine.
  void accumulate_grad_output(size_t index, const Tensor& grad);
  std::vector<Tensor> take_grad_outputs();
  std::vector<Tensor> apply(const std::vector<Tensor>& grad_outputs) const;
  void release();  // frees the closure and everything it saved
  // After a backward without retain_graph: drops the input Variables, so that a Variable kept
  // past it (a loss kept for logging, a layer's last routing) no longer pins the data of every
  // intermediate upstream of it. Only once the whole backward is done (the engine's nodes stay
  // alive through it).
  void drop_inputs();

 private:
  std::string name_;
  uint64_t sequence_;
  std::vector<Variable> inputs_;  // undefined where an input needs no gradient
  std::vector<Tensor> grad_outputs_;
  std::vector<bool> owned_;  // whether grad_outputs_[i] is a private copy (safe to add into)
  BackwardFn backward_;
};

// Records an op: when grad mode is on and some input requires grad, makes a Node for `backward`
// and returns the outputs as Variables that require grad and point at it; otherwise returns
// plain Variables and drops `backward` (and what it captured) at once. Index, mask and routing
// inputs are passed to ops as Tensors, not Variables: non-differentiable by declaration.
std::vector<Variable> record(const char* name, const std::vector<Variable>& inputs,
                             std::vector<Tensor> outputs, BackwardFn backward);
Variable record(const char* name, const std::vector<Variable>& inputs, Tensor output,
                std::function<std::vector<Tensor>(const Tensor& grad_output)> backward);

// True when an op on these inputs will be recorded (ops use it to skip saving tensors).
bool needs_grad(const std::vector<Variable>& inputs);

}  // namespace pit
