#pragma once
// Module: the base of the nn layers and models. A module owns named parameters (f32 leaf
// Variables: the master weights), named buffers (Tensors that are state but not trained) and
// named child modules, each kept in registration order. Paths join names with '/':
// "blocks/0/attn/qkv/weight". A module also carries a compute dtype (f32, bf16, f16): layers
// cast their weights and inputs to it in forward with ops::cast, so gradients land on the f32
// parameters; bf16 / f16 run on CUDA only.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.h"
#include "core/device.h"
#include "core/tensor.h"
#include "trainer/state.h"

namespace pit {
class Communicator;
}

namespace pit::nn {

using NamedParameters = std::vector<std::pair<std::string, Variable>>;
using NamedBuffers = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // What kind of module this is ("Linear", "TransformerLM"), for messages.
  virtual const char* type_name() const = 0;
  // The module applied to one input; modules without a one-input forward throw.
  virtual Variable forward(const Variable& input);
  Variable operator()(const Variable& input) { return forward(input); }

  // Recursive, in registration order (own entries first, then each child's under its name); a
  // parameter shared by two modules (tied weights) is listed once, under its first path.
  NamedParameters named_parameters() const;
  std::vector<Variable> parameters() const;
  NamedBuffers named_buffers() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }
  int64_t num_parameters() const;  // elements of all parameters
  // Every module of the tree with its path ("" for this one): depth first, each module before its
  // children, children in registration order (the order of the layers in a model).
  std::vector<std::pair<std::string, Module*>> modules();
  // The parameters sharded over the ranks of a communicator along dim 0 (expert parallelism):
  // this rank holds rows [rank n, (rank + 1) n) of a [size n, ...] whole. By path, in modules()
  // order. state_dict() holds this rank's rows; trainer/train/shards.h checkpoints the whole.
  std::vector<std::pair<std::string, Communicator*>> sharded_parameters();

  // Moves every parameter (and its gradient) and buffer to `device`, in place: Variables held
  // elsewhere (an optimizer) see the move.
  void to(Device device);
  Device device() const;  // of the first parameter or buffer; the CPU when there is none
  void train(bool training = true);  // recursive; dropout is active only while training
  bool is_training() const { return training_; }
  // Recursive. f32, bf16 or f16; the last two run on CUDA only (forward refuses them on the CPU).
  void set_compute_dtype(DType dtype);
  DType compute_dtype() const { return compute_dtype_; }
  void zero_grad();

  // Every parameter and buffer by path, as copies on the host.
  train::StateDict state_dict() const;
  // Copies each entry into the parameter or buffer of that path (converting device and dtype).
  // Every path must be present and shaped alike, and no other tensor may be in `state`;
  // otherwise nothing is loaded and the error names each missing, unexpected or mis-shaped entry.
  // A module whose parameter shapes follow its state (a compact sparse weight laid out by its
  // mask) takes the state's layout first (state_shapes, adopt_state_layout).
  void load_state_dict(const train::StateDict& state);
  // The entries whose shapes follow the state (state_shapes of every module, by path): what a
  // check of `state` against state_dict() must expect instead of the current shapes.
  std::vector<std::pair<std::string, Shape>> layout_shapes(const train::StateDict& state);

 protected:
  // A leaf Variable that requires grad, holding `value` as f32.
  Variable register_parameter(const std::string& name, const Tensor& value);
  void register_buffer(const std::string& name, Tensor value);
  const Tensor& buffer(const std::string& name) const;
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }
  // x cast to the compute dtype; throws when that is f16/bf16 and x is on the CPU.
  Variable to_compute(const Variable& x) const;
  // Unregisters parameter `name` (throws when there is none) and marks its Variable as replaced by
  // `replaced_by` (VariableState::replaced_by: an optimizer still holding it then refuses to step).
  void remove_parameter(const std::string& name, const std::string& replaced_by);
  // Marks parameter `name` as this rank's rows of a whole sharded over `comm` (which must outlive
  // the module).
  void shard_parameter(const std::string& name, Communicator& comm);
  // Replaces a registered buffer's tensor (a sparse layer's mask after an update).
  void set_buffer(const std::string& name, Tensor value);

  // Loading hooks, given this module's own entries of the state (names without the path). The
  // shapes that the state implies for own entries whose shape may change (default: none, every
  // entry keeps its shape), checked before anything is loaded; then, once every check passed,
  // adopt_state_layout re-shapes them so that the values can be copied in.
  virtual std::vector<std::pair<std::string, Shape>> state_shapes(const train::StateDict& own) const;
  virtual void adopt_state_layout(const train::StateDict& own);

 private:
  // modules(), each module once (under its first path).
  std::vector<std::pair<std::string, Module*>> distinct_modules();
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void check_name(const std::string& name) const;

  std::vector<std::pair<std::string, Variable>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::vector<std::pair<std::string, Communicator*>> shards_;
  bool training_ = true;
  DType compute_dtype_ = DType::f32;
};

// Children named "0", "1", ...: stacks of blocks and layers.
class ModuleList : public Module {
 public:
  const char* type_name() const override { return "ModuleList"; }
  template <typename M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    return register_module(std::to_string(children().size()), std::move(module));
  }
  size_t size() const { return children().size(); }
  Module& operator[](size_t i) const { return *children().at(i).second; }
};

// Throws unless `dtype` is a compute dtype (f32, bf16, f16), naming `what`.
void check_compute_dtype(DType dtype, const char* what);

}  // namespace pit::nn
