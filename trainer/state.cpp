#include "trainer/state.h"

#include "core/error.h"

namespace pit::train {
namespace {

template <typename V>
void merge_map(std::map<std::string, V>& into, const std::string& prefix, std::map<std::string, V>&& from) {
  for (auto& [name, value] : from) into[prefix.empty() ? name : prefix + "/" + name] = std::move(value);
}

template <typename V>
void sub_map(std::map<std::string, V>& into, const std::string& prefix, const std::map<std::string, V>& from) {
  const std::string head = prefix + "/";
  for (auto it = from.lower_bound(head); it != from.end() && it->first.starts_with(head); ++it)
    into[it->first.substr(head.size())] = it->second;
}

// Up to `limit` entries, comma-separated, with a count of the rest.
std::string list_names(const std::vector<std::string>& names, size_t limit = 8) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > limit) out += " and " + std::to_string(names.size() - limit) + " more";
  return out;
}

}  // namespace

Tensor host_copy(const Tensor& t) { return t.is_cuda() ? t.to(Device::cpu()) : t.clone(); }

void StateCheck::tensor(const std::string& name, const Shape& shape) {
  known_.insert(name);
  const auto it = state_.tensors.find(name);
  if (it == state_.tensors.end()) {
    missing_.push_back("'" + name + "' " + shape_str(shape));
  } else if (!it->second.defined() || it->second.shape() != shape) {
    mis_shaped_.push_back("'" + name + "' (" +
                          shape_of(it->second) +
                          " given, " + shape_str(shape) + " expected)");
  }
}

void StateCheck::integer(const std::string& name) {
  known_ints_.insert(name);
  if (!state_.ints.count(name)) missing_.push_back("'" + name + "'");
}

void StateCheck::throw_if_mismatched(const std::string& owner, const std::string& what) const {
  std::vector<std::string> unexpected;
  for (const auto& [name, t] : state_.tensors)
    if (!known_.count(name)) unexpected.push_back("'" + name + "'");
  if (!known_ints_.empty())
    for (const auto& [name, v] : state_.ints)
      if (!known_ints_.count(name)) unexpected.push_back("'" + name + "'");
  if (missing_.empty() && mis_shaped_.empty() && unexpected.empty()) return;
  std::string msg;
  if (!missing_.empty()) msg += "; missing: " + list_names(missing_);
  if (!mis_shaped_.empty()) msg += "; wrong shape: " + list_names(mis_shaped_);
  if (!unexpected.empty()) msg += "; unexpected: " + list_names(unexpected);
  PIT_THROW(owner, ".load_state_dict: the state does not match the ", what, msg, " (nothing was loaded)");
}

void StateDict::merge(const std::string& prefix, StateDict other) {
  merge_map(tensors, prefix, std::move(other.tensors));
  merge_map(ints, prefix, std::move(other.ints));
  merge_map(reals, prefix, std::move(other.reals));
  merge_map(strings, prefix, std::move(other.strings));
}

StateDict StateDict::sub(const std::string& prefix) const {
  StateDict out;
  sub_map(out.tensors, prefix, tensors);
  sub_map(out.ints, prefix, ints);
  sub_map(out.reals, prefix, reals);
  sub_map(out.strings, prefix, strings);
  return out;
}

}  // namespace pit::train
