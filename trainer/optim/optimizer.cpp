#include "trainer/optim/optimizer.h"

#include <map>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "trainer/optim/grads.h"

namespace pit::optim {
namespace {

// A parameter that its module replaced (Linear::sparsify) is no longer read by the model, and its
// replacement is not in this optimizer: stepping would train nothing there, silently. `made`:
// whether the optimizer holds it already (a step) or is being made from it.
void check_not_replaced(const Param& p, const char* who, bool made) {
  const std::string& by = p.var.state()->replaced_by;
  PIT_CHECK(by.empty(), who, ": parameter '", p.name, "' was replaced by ", by,
            made ? " after it was given to the optimizer, so that layer would never train; make the optimizer "
                   "after sparsifying, from the module's parameters as they are then (named_parameters())"
                 : "; make the optimizer from the module's parameters as they are now (named_parameters())");
}

}  // namespace

std::vector<Param> with_default_decay(const std::vector<std::pair<std::string, Variable>>& named) {
  std::vector<Param> out;
  out.reserve(named.size());
  for (const auto& [name, v] : named) out.push_back({name, v, v.dim() >= 2});
  return out;
}

Optimizer::Optimizer(std::vector<Param> params) : params_(std::move(params)) {
  std::set<std::string> names;
  std::map<const VariableState*, std::string> held;  // each Variable once, whatever its name
  for (const Param& p : params_) {
    PIT_CHECK(p.var.defined(), "optimizer: parameter '", p.name, "' is undefined");
    check_not_replaced(p, "optimizer", /*made=*/false);
    PIT_CHECK(p.var.is_leaf() && p.var.requires_grad(), "optimizer: parameter '", p.name,
              "' must be a leaf Variable that requires grad");
    PIT_CHECK(p.var.dtype() == DType::f32 && p.var.data().is_contiguous(), "optimizer: parameter '",
              p.name, "' must be a contiguous f32 tensor (the master weights), got ",
              dtype_name(p.var.dtype()), p.var.data().is_contiguous() ? "" : " (not contiguous)");
    PIT_CHECK(names.insert(p.name).second, "optimizer: the parameter name '", p.name,
              "' appears twice");
    const auto [at, fresh] = held.emplace(p.var.state().get(), p.name);
    PIT_CHECK(fresh, "optimizer: '", at->second, "' and '", p.name,
              "' are one Variable (a tied weight?): it would be stepped twice; list it once");
  }
  state_.resize(params_.size());
  param_steps_.assign(params_.size(), 0);
}

void Optimizer::set_state_slots(std::vector<std::string> slots) {
  slots_ = std::move(slots);
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].var.data();
    state_[i].clear();
    for (size_t s = 0; s < slots_.size(); ++s) state_[i].push_back(zeros(p.shape(), DType::f32, p.device()));
  }
}

void Optimizer::relayout_state(const Variable& param, const std::function<Tensor(const Tensor&)>& relayout) {
  for (size_t i = 0; i < params_.size(); ++i) {
    if (params_[i].var.state() != param.state()) continue;
    for (size_t s = 0; s < slots_.size(); ++s) {
      const Tensor moved = relayout(state(i, s));
      PIT_CHECK(moved.shape() == param.shape(), type_name(), ": the state of '", params_[i].name,
                "' was re-laid out to ", shape_str(moved.shape()), " but the parameter is ", shape_str(param.shape()));
      state_[i][s] = moved.to(DType::f32).contiguous();
    }
    return;
  }
  PIT_THROW(type_name(), ": relayout_state of a parameter this optimizer does not hold; a sparse layer's parameters "
            "are replaced when it is made sparse, so make the Sparsifier before the optimizer");
}

const Tensor& Optimizer::state(size_t i, size_t slot) {
  Tensor& t = state_[i].at(slot);
  const Device d = params_[i].var.device();
  if (t.device() != d) t = t.to(d);  // the module moved after the optimizer was made
  return t;
}

void Optimizer::step(double lr) {
  PIT_CHECK(lr >= 0.0, type_name(), ": lr must be >= 0, got ", lr);
  NoGradGuard no_grad;
  // Every check before any update: a step that throws changes nothing, so that fixing what it
  // names and stepping again applies each gradient once.
  for (size_t i = 0; i < params_.size(); ++i) {
    check_not_replaced(params_[i], type_name(), /*made=*/true);
    const Variable& v = params_[i].var;
    if (!v.grad().defined()) continue;
    PIT_CHECK(v.grad().shape() == v.shape(), type_name(), ": the gradient of '", params_[i].name,
              "' has shape ", shape_str(v.grad().shape()), " for a parameter of shape ",
              shape_str(v.shape()));
    for (size_t s = 0; s < slots_.size(); ++s)
      PIT_CHECK(state_[i][s].shape() == v.shape(), type_name(), ": the state '", slots_[s], "' of '", params_[i].name,
                "' has shape ", shape_str(state_[i][s].shape()), " but the parameter now has shape ",
                shape_str(v.shape()), ": a sparse layer's values changed layout (a mask change, load_dense); pass the "
                "Relayout it returned to relayout_state");
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const Variable& v = params_[i].var;
    if (!v.grad().defined()) continue;
    f32_grad(v);
    ++param_steps_[i];
    update(i, lr);
  }
  ++steps_;
}

void Optimizer::zero_grad() {
  for (Param& p : params_) p.var.zero_grad();
}

int64_t Optimizer::state_bytes() const {
  int64_t n = 0;
  for (const std::vector<Tensor>& slots : state_)
    for (const Tensor& t : slots) n += static_cast<int64_t>(t.nbytes());
  return n;
}

train::StateDict Optimizer::state_dict() const {
  train::StateDict sd;
  sd.ints["step"] = steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& name = params_[i].name;
    sd.ints[name + "/step"] = param_steps_[i];
    for (size_t s = 0; s < slots_.size(); ++s)
      sd.tensors[name + "/" + slots_[s]] = train::host_copy(state_[i][s]);
  }
  return sd;
}

void Optimizer::load_state_dict(const train::StateDict& state) {
  train::StateCheck check(state);
  for (const Param& p : params_) {
    for (const std::string& slot : slots_) check.tensor(p.name + "/" + slot, p.var.shape());
    check.integer(p.name + "/step");
  }
  check.integer("step");
  check.throw_if_mismatched(type_name(), "optimizer");
  for (size_t i = 0; i < params_.size(); ++i) {
    param_steps_[i] = state.ints.at(params_[i].name + "/step");
    for (size_t s = 0; s < slots_.size(); ++s) {
      const Tensor& from = state.tensors.at(params_[i].name + "/" + slots_[s]);
      const Variable& p = params_[i].var;
      if (state_[i][s].shape() != p.shape()) state_[i][s] = zeros(p.shape(), DType::f32, p.device());  // re-laid out
      Tensor target = this->state(i, s);  // a handle: copy_ fills the state's storage
      target.copy_(from);
    }
  }
  steps_ = state.ints.at("step");
}

}  // namespace pit::optim
