#include "trainer/nn/module.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_set>

#include "ops/functional.h"

namespace pit::nn {
namespace {

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "/" + name;
}

}  // namespace

void check_compute_dtype(DType dtype, const char* what) {
  PIT_CHECK(dtype == DType::f32 || dtype == DType::bf16 || dtype == DType::f16, what,
            ": compute dtype ", dtype_name(dtype), " is not supported; supported: f32, bf16, f16");
}

Variable Module::forward(const Variable&) {
  PIT_THROW(type_name(), " has no one-input forward(); call its own methods");
}

// ---- registration ----------------------------------------------------------------------------

void Module::check_name(const std::string& name) const {
  PIT_CHECK(!name.empty() && name.find('/') == std::string::npos, type_name(),
            ": a parameter, buffer or child name must be non-empty and contain no '/', got '",
            name, "'");
  auto taken = [&](const auto& list) {
    for (const auto& entry : list)
      if (entry.first == name) return true;
    return false;
  };
  PIT_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), type_name(), ": the name '",
            name, "' is registered twice");
}

Variable Module::register_parameter(const std::string& name, const Tensor& value) {
  check_name(name);
  PIT_CHECK(value.defined(), type_name(), ": parameter '", name, "' is undefined");
  Variable v(value.to(DType::f32).contiguous(), /*requires_grad=*/true, name);
  params_.emplace_back(name, v);
  return v;
}

void Module::register_buffer(const std::string& name, Tensor value) {
  check_name(name);
  PIT_CHECK(value.defined(), type_name(), ": buffer '", name, "' is undefined");
  buffers_.emplace_back(name, std::move(value));
}

void Module::remove_parameter(const std::string& name, const std::string& replaced_by) {
  for (auto it = params_.begin(); it != params_.end(); ++it) {
    if (it->first == name) {
      if (it->second.defined()) it->second.state()->replaced_by = replaced_by;
      params_.erase(it);
      return;
    }
  }
  PIT_THROW(type_name(), " has no parameter '", name, "' to remove");
}

void Module::shard_parameter(const std::string& name, Communicator& comm) {
  const bool found = std::any_of(params_.begin(), params_.end(), [&](const auto& p) { return p.first == name; });
  PIT_CHECK(found, type_name(), " has no parameter '", name, "' to shard");
  shards_.emplace_back(name, &comm);
}

void Module::set_buffer(const std::string& name, Tensor value) {
  PIT_CHECK(value.defined(), type_name(), ": buffer '", name, "' set to an undefined tensor");
  for (auto& [n, t] : buffers_) {
    if (n == name) {
      t = std::move(value);
      return;
    }
  }
  PIT_THROW(type_name(), " has no buffer '", name, "' to set");
}

const Tensor& Module::buffer(const std::string& name) const {
  for (const auto& [n, t] : buffers_)
    if (n == name) return t;
  PIT_THROW(type_name(), " has no buffer '", name, "'");
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_name(name);
  PIT_CHECK(module != nullptr, type_name(), ": child '", name, "' is null");
  module->train(training_);
  module->set_compute_dtype(compute_dtype_);
  children_.emplace_back(name, std::move(module));
}

// ---- traversal ---------------------------------------------------------------------------------

NamedParameters Module::named_parameters() const {
  NamedParameters out;
  std::unordered_set<const VariableState*> seen;
  // Depth first: own parameters, then each child's under its name.
  std::vector<std::pair<std::string, const Module*>> stack{{"", this}};
  while (!stack.empty()) {
    auto [prefix, m] = stack.back();
    stack.pop_back();
    for (const auto& [name, v] : m->params_)
      if (seen.insert(v.state().get()).second) out.emplace_back(join(prefix, name), v);
    for (auto it = m->children_.rbegin(); it != m->children_.rend(); ++it)
      stack.emplace_back(join(prefix, it->first), it->second.get());
  }
  return out;
}

std::vector<Variable> Module::parameters() const {
  std::vector<Variable> out;
  for (auto& [name, v] : named_parameters()) out.push_back(v);
  return out;
}

NamedBuffers Module::named_buffers() const {
  NamedBuffers out;
  for (const auto& [name, t] : buffers_) out.emplace_back(name, t);
  for (const auto& [cname, child] : children_)
    for (auto& [name, t] : child->named_buffers()) out.emplace_back(join(cname, name), t);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::modules() {
  std::vector<std::pair<std::string, Module*>> out;
  std::vector<std::pair<std::string, Module*>> stack{{"", this}};  // depth first, in registration order
  while (!stack.empty()) {
    auto [prefix, m] = stack.back();
    stack.pop_back();
    out.emplace_back(prefix, m);
    for (auto it = m->children_.rbegin(); it != m->children_.rend(); ++it)
      stack.emplace_back(join(prefix, it->first), it->second.get());
  }
  return out;
}

std::vector<std::pair<std::string, Communicator*>> Module::sharded_parameters() {
  std::vector<std::pair<std::string, Communicator*>> out;
  for (const auto& [prefix, m] : modules())
    for (const auto& [name, comm] : m->shards_) out.emplace_back(join(prefix, name), comm);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, v] : named_parameters()) n += v.numel();
  return n;
}

// ---- state changes -----------------------------------------------------------------------------

void Module::to(Device device) {
  check_device(device);
  for (auto& [name, v] : params_) {
    if (v.device() == device) continue;
    v.set_data(v.data().to(device));
    if (v.grad().defined()) v.set_grad(v.grad().to(device));
  }
  for (auto& [name, t] : buffers_) t = t.to(device);
  for (auto& [name, child] : children_) child->to(device);
}

Device Module::device() const {
  const NamedParameters p = named_parameters();
  if (!p.empty()) return p.front().second.device();
  const NamedBuffers b = named_buffers();
  return b.empty() ? Device::cpu() : b.front().second.device();
}

void Module::train(bool training) {
  training_ = training;
  for (auto& [name, child] : children_) child->train(training);
}

void Module::set_compute_dtype(DType dtype) {
  check_compute_dtype(dtype, type_name());
  compute_dtype_ = dtype;
  for (auto& [name, child] : children_) child->set_compute_dtype(dtype);
}

void Module::zero_grad() {
  for (Variable& v : parameters()) v.zero_grad();
}

Variable Module::to_compute(const Variable& x) const {
  PIT_CHECK(compute_dtype_ == DType::f32 || x.device().is_cuda(), type_name(), ": compute dtype ",
            dtype_name(compute_dtype_), " runs on CUDA only, and this input is on ", x.device(),
            "; use compute dtype f32 on the CPU");
  return ops::cast(x, compute_dtype_);
}

// ---- state dict ---------------------------------------------------------------------------------

train::StateDict Module::state_dict() const {
  train::StateDict sd;
  for (const auto& [name, v] : named_parameters()) sd.tensors[name] = train::host_copy(v.data());
  for (const auto& [name, t] : named_buffers()) sd.tensors[name] = train::host_copy(t);
  return sd;
}

std::vector<std::pair<std::string, Shape>> Module::state_shapes(const train::StateDict&) const { return {}; }

void Module::adopt_state_layout(const train::StateDict&) {}

// A module registered under several paths, once, under the first (where named_parameters lists
// its parameters, and state_dict writes them).
std::vector<std::pair<std::string, Module*>> Module::distinct_modules() {
  std::vector<std::pair<std::string, Module*>> out;
  std::unordered_set<const Module*> seen;
  for (const auto& [prefix, m] : modules())
    if (seen.insert(m).second) out.emplace_back(prefix, m);
  return out;
}

std::vector<std::pair<std::string, Shape>> Module::layout_shapes(const train::StateDict& state) {
  std::vector<std::pair<std::string, Shape>> out;
  for (const auto& [prefix, m] : distinct_modules())
    for (const auto& [name, shape] : m->state_shapes(prefix.empty() ? state : state.sub(prefix)))
      out.emplace_back(join(prefix, name), shape);
  return out;
}

void Module::load_state_dict(const train::StateDict& state) {
  std::map<std::string, Shape> expected;  // by path
  for (const auto& [name, v] : named_parameters()) expected[name] = v.shape();
  for (const auto& [name, t] : named_buffers()) expected[name] = t.shape();
  for (const auto& [name, shape] : layout_shapes(state)) expected[name] = shape;

  train::StateCheck check(state);
  for (const auto& [name, shape] : expected) check.tensor(name, shape);
  check.throw_if_mismatched(type_name(), "module");
  for (const auto& [prefix, m] : distinct_modules()) m->adopt_state_layout(prefix.empty() ? state : state.sub(prefix));
  for (const auto& [name, v] : named_parameters()) {
    Tensor target = v.data();  // a handle: copy_ fills the parameter's storage
    target.copy_(state.tensors.at(name));
  }
  for (auto& [name, t] : named_buffers()) t.copy_(state.tensors.at(name));
}

}  // namespace pit::nn
