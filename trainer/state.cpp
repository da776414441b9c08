#include "trainer/state.h"

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

}  // namespace

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
