// Recording ops on the tape, and backward(): the reverse walk of the tape.
//
// The tape is the order of creation: every Node takes the next sequence number when it is
// recorded (one counter for all threads, so that a graph built partly on another thread keeps its
// order), and consumers are always recorded after their producers. backward()
// collects the nodes reachable from the root and runs them from the newest to the oldest, which
// is the tape read in reverse. Nodes are owned by the Variables they produced, so a graph that is
// never differentiated is freed with its Variables rather than growing a global tape.
#include <algorithm>
#include <atomic>
#include <unordered_map>
#include <unordered_set>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "core/error.h"

namespace pit {
namespace {

std::atomic<uint64_t> g_tape_position{0};

// g accumulated into slot: the first gradient is kept as is (no copy); later ones are added
// into a private copy so that no tensor a closure returned is modified in place.
void accumulate(Tensor& slot, Tensor grad, bool& owned) {
  if (!slot.defined()) {
    slot = std::move(grad);
    owned = false;
    return;
  }
  if (!owned) {
    slot = slot.clone();
    owned = true;
  }
  slot.add_(grad);
}

void check_grad(const Tensor& grad, const Variable& target, const std::string& from) {
  PIT_CHECK(grad.shape() == target.shape(), "backward of '", from, "' returned a gradient of shape ",
            shape_str(grad.shape()), " for an input of shape ", shape_str(target.shape()));
  PIT_CHECK(grad.device() == target.device(), "backward of '", from, "' returned a gradient on ",
            grad.device(), " for an input on ", target.device());
  // A gradient in another dtype would be added into the input's (accumulate, leaf grads) in the
  // wrong precision or refused there with a message naming no op.
  PIT_CHECK(grad.dtype() == target.dtype(), "backward of '", from, "' returned a ", dtype_name(grad.dtype()),
            " gradient for a ", dtype_name(target.dtype()), " input");
}

}  // namespace

// ---- Node -------------------------------------------------------------------------------------

Node::Node(std::string name, std::vector<Variable> inputs, size_t num_outputs, BackwardFn backward)
    : name_(std::move(name)), sequence_(g_tape_position.fetch_add(1, std::memory_order_relaxed)),
      inputs_(std::move(inputs)), grad_outputs_(num_outputs), owned_(num_outputs, false), backward_(std::move(backward)) {}

Node::~Node() {
  // The nodes that only this teardown still holds: taken out of their Variables and freed one at a
  // time, each after its own inputs were taken out the same way.
  std::vector<std::shared_ptr<Node>> last_holders;
  const auto take_inputs = [&](std::vector<Variable>& inputs) {
    for (Variable& v : inputs) {
      if (!v.defined() || v.state().use_count() != 1) continue;
      std::shared_ptr<Node>& fn = v.state()->grad_fn;
      if (fn && fn.use_count() == 1) last_holders.push_back(std::move(fn));
    }
    inputs.clear();
  };
  take_inputs(inputs_);
  while (!last_holders.empty()) {
    std::shared_ptr<Node> node = std::move(last_holders.back());
    last_holders.pop_back();
    take_inputs(node->inputs_);  // then `node` dies here, holding no inputs
  }
}

void Node::accumulate_grad_output(size_t index, const Tensor& grad) {
  bool owned = owned_[index];
  accumulate(grad_outputs_[index], grad, owned);
  owned_[index] = owned;
}

std::vector<Tensor> Node::take_grad_outputs() {
  std::vector<Tensor> out(grad_outputs_.size());
  out.swap(grad_outputs_);
  grad_outputs_.resize(out.size());
  owned_.assign(out.size(), false);
  return out;
}

std::vector<Tensor> Node::apply(const std::vector<Tensor>& grad_outputs) const {
  PIT_CHECK(backward_, "backward through '", name_, "' a second time: its saved tensors were "
            "freed by the first backward(); pass retain_graph=true to the first one");
  return backward_(grad_outputs);
}

void Node::release() { backward_ = nullptr; }

void Node::drop_inputs() { std::vector<Variable>().swap(inputs_); }

// ---- recording --------------------------------------------------------------------------------

bool needs_grad(const std::vector<Variable>& inputs) {
  if (!grad_enabled()) return false;
  return std::any_of(inputs.begin(), inputs.end(),
                     [](const Variable& v) { return v.defined() && v.requires_grad(); });
}

std::vector<Variable> record(const char* name, const std::vector<Variable>& inputs,
                             std::vector<Tensor> outputs, BackwardFn backward) {
  std::vector<Variable> result;
  result.reserve(outputs.size());
  if (!needs_grad(inputs)) {
    for (Tensor& t : outputs) result.emplace_back(std::move(t));
    return result;
  }
  std::vector<Variable> edges;
  edges.reserve(inputs.size());
  for (const Variable& v : inputs) edges.push_back(v.defined() && v.requires_grad() ? v : Variable());
  auto node = std::make_shared<Node>(name, std::move(edges), outputs.size(), std::move(backward));
  for (size_t i = 0; i < outputs.size(); ++i) {
    auto state = std::make_shared<VariableState>();
    state->data = std::move(outputs[i]);
    state->requires_grad = is_floating(state->data.dtype());
    state->grad_fn = state->requires_grad ? node : nullptr;
    state->output_index = static_cast<int>(i);
    result.emplace_back(std::move(state));
  }
  return result;
}

Variable record(const char* name, const std::vector<Variable>& inputs, Tensor output,
                std::function<std::vector<Tensor>(const Tensor& grad_output)> backward) {
  std::vector<Tensor> outs;
  outs.push_back(std::move(output));
  BackwardFn fn;
  if (needs_grad(inputs))
    fn = [b = std::move(backward)](const std::vector<Tensor>& g) { return b(g[0]); };
  return record(name, inputs, std::move(outs), std::move(fn))[0];
}

// ---- backward ---------------------------------------------------------------------------------

void Variable::backward(const Tensor& grad_in, bool retain_graph) const {
  PIT_CHECK(defined(), "backward() of an undefined Variable");
  PIT_CHECK(requires_grad(), "backward() of a Variable that does not require grad: no input of "
            "the computation requires grad (or it ran under NoGradGuard)");
  Tensor grad = grad_in;
  if (!grad.defined()) {
    PIT_CHECK(numel() == 1, "backward() without a gradient needs a one-element Variable; this "
              "one has shape ", shape_str(shape()), ": pass the gradient explicitly");
    grad = ones(shape(), dtype(), device());
  }
  PIT_CHECK(grad.shape() == shape(), "backward(): the gradient has shape ", shape_str(grad.shape()),
            " but the Variable has shape ", shape_str(shape()));
  grad = grad.to(device(), dtype());

  NoGradGuard no_grad;  // backward closures compute with tensors; nothing is recorded

  if (is_leaf()) {  // the root is a leaf: its gradient is the seed itself
    // Hooks may modify the gradient: not the caller's own tensor.
    if (!state()->hooks.empty() && grad.shares_storage(grad_in)) grad = grad.clone();
    for (auto& hook : state()->hooks) hook(grad);
    Tensor& g = state()->grad;
    if (g.defined()) {
      g.add_(grad);
    } else {
      g = grad.clone();
    }
    return;
  }

  // Nodes reachable from the root, and how many gradient contributions each leaf will receive
  // (its hooks run when the last one arrives).
  // `order` owns its nodes: dropping a node's inputs below must not free a node still listed.
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<Node*> seen;
  std::unordered_map<VariableState*, int> leaf_uses;
  std::vector<std::shared_ptr<Node>> stack{grad_fn()};
  seen.insert(stack.back().get());
  while (!stack.empty()) {
    std::shared_ptr<Node> n = std::move(stack.back());
    stack.pop_back();
    for (const Variable& in : n->inputs()) {
      if (!in.defined()) continue;
      if (in.is_leaf()) {
        ++leaf_uses[in.state().get()];
      } else if (seen.insert(in.grad_fn().get()).second) {
        stack.push_back(in.grad_fn());
      }
    }
    order.push_back(std::move(n));
  }
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a->sequence() > b->sequence(); });

  // Gradients of leaves for this backward, accumulated privately, then hooks (as soon as a leaf's
  // gradient is complete: data-parallel all-reduces overlap the rest of backward), then into grad
  // once the whole backward succeeded: one that throws part way adds to no leaf's gradient.
  std::unordered_map<VariableState*, std::pair<Tensor, bool>> leaf_grads;
  std::vector<std::pair<VariableState*, Tensor>> finished;
  auto leaf_done = [&](VariableState* leaf) {
    auto [g, owned] = std::move(leaf_grads[leaf]);
    leaf_grads.erase(leaf);
    // A gradient that other tensors may share (the same upstream gradient routed to two leaves,
    // a view) is copied before hooks may modify it or it is stored for later accumulation.
    if (!owned && (g.storage().use_count() > 1 || !g.is_contiguous())) g = g.clone();
    for (auto& hook : leaf->hooks) hook(g);
    finished.emplace_back(leaf, std::move(g));
  };

  // A backward that throws part way (a closure, a hook) leaves no gradient behind in the nodes it
  // did not reach, for a later backward through a retained graph to add to.
  try {
    grad_fn()->accumulate_grad_output(output_index(), grad);
    for (const std::shared_ptr<Node>& node : order) {
      std::vector<Tensor> grad_outputs = node->take_grad_outputs();
      const bool any = std::any_of(grad_outputs.begin(), grad_outputs.end(),
                                   [](const Tensor& t) { return t.defined(); });
      std::vector<Tensor> grad_inputs;
      if (any) {
        grad_inputs = node->apply(grad_outputs);
        // Dropped before the inputs get theirs: a gradient handed on as a view of the node's output
        // gradient (transpose, reshape) then owns its storage alone and reaches a leaf uncopied.
        grad_outputs.clear();
        PIT_CHECK(grad_inputs.size() == node->inputs().size(), "backward of '", node->name(),
                  "' returned ", grad_inputs.size(), " gradients for ", node->inputs().size(),
                  " inputs");
      }
      for (size_t i = 0; i < node->inputs().size(); ++i) {
        const Variable& in = node->inputs()[i];
        if (!in.defined()) continue;
        // Moved out, so that the engine holds no second reference to a leaf's gradient: leaf_done
        // copies it only where something else shares its storage (it used to copy every leaf's
        // gradient, 1 GB a step for the experts of the MoE benchmark).
        Tensor g = any ? std::move(grad_inputs[i]) : Tensor();
        if (g.defined()) check_grad(g, in, node->name());
        if (in.is_leaf()) {
          VariableState* leaf = in.state().get();
          if (g.defined()) {
            auto& [slot, owned] = leaf_grads[leaf];
            accumulate(slot, std::move(g), owned);  // on in's device: check_grad
          }
          if (--leaf_uses[leaf] == 0 && leaf_grads.count(leaf)) leaf_done(leaf);
        } else if (g.defined()) {
          in.grad_fn()->accumulate_grad_output(static_cast<size_t>(in.output_index()), g);
        }
      }
      if (!retain_graph) node->release();
    }
  } catch (...) {
    for (const auto& n : order) n->take_grad_outputs();
    throw;
  }
  for (auto& [leaf, g] : finished) {
    if (leaf->grad.defined()) {
      leaf->grad.add_(g);
    } else {
      leaf->grad = std::move(g);
    }
  }
  // The graph is spent: its nodes let go of their inputs (`order` keeps each node until then).
  if (!retain_graph)
    for (const auto& n : order) n->drop_inputs();
}

}  // namespace pit
