#include "trainer/checkpoint/state_hdf5.h"

#include <functional>
#include <map>
#include <string>

#include "core/error.h"

namespace pit::train {
namespace {

constexpr const char* kTensors = "tensors";
constexpr const char* kInts = "ints";
constexpr const char* kReals = "reals";
constexpr const char* kStrings = "strings";

template <typename V>
void check_names(const std::map<std::string, V>& entries, const char* kind) {
  for (const auto& [name, value] : entries) {
    bool clean = !name.empty();
    size_t start = 0;
    while (clean && start <= name.size()) {
      size_t end = name.find('/', start);
      if (end == std::string::npos) end = name.size();
      const std::string part = name.substr(start, end - start);
      clean = !part.empty() && part != "." && part != "..";
      if (end < name.size() && entries.count(name.substr(0, end)))
        PIT_THROW("state entry '", name, "' (", kind, ") lies under '", name.substr(0, end),
                  "', which is an entry itself: a name cannot be both a value and a prefix");
      start = end + 1;
    }
    PIT_CHECK(clean, "state entry '", name, "' (", kind,
              ") is not a clean slash-separated name (no empty, '.' or '..' parts, no leading "
              "or trailing '/')");
  }
}

// Calls fn(relative name, group, child) for every dataset below `group`.
void walk(const io::Group& group, const std::string& prefix,
          const std::function<void(const std::string&, const io::Group&, const std::string&)>& fn) {
  for (const std::string& child : group.children()) {
    const std::string name = prefix.empty() ? child : prefix + "/" + child;
    if (group.is_group(child))
      walk(group.group(child), name, fn);
    else
      fn(name, group, child);
  }
}

}  // namespace

void check_state_names(const StateDict& state) {
  check_names(state.tensors, "tensor");
  check_names(state.ints, "int");
  check_names(state.reals, "real");
  check_names(state.strings, "string");
}

void write_state(const io::Group& group, const StateDict& state) {
  check_state_names(state);
  for (const char* kind : {kTensors, kInts, kReals, kStrings}) group.create_group(kind);
  for (const auto& [name, tensor] : state.tensors) {
    PIT_CHECK(tensor.defined(), "state tensor '", name, "' is undefined: nothing to save");
    group.write(std::string(kTensors) + "/" + name, tensor);
  }
  for (const auto& [name, value] : state.ints)
    group.write(std::string(kInts) + "/" + name, from_vector(std::vector<int64_t>{value}, Shape{}));
  for (const auto& [name, value] : state.reals)
    group.write(std::string(kReals) + "/" + name, from_vector(std::vector<double>{value}, Shape{}));
  for (const auto& [name, value] : state.strings)
    group.write_string(std::string(kStrings) + "/" + name, value);
}

StateDict read_state(const io::Group& group) {
  StateDict state;
  for (const char* kind : {kTensors, kInts, kReals, kStrings})
    PIT_CHECK(group.is_group(kind), "no group '", kind, "' in ", group.file_name());
  walk(group.group(kTensors), "",
       [&](const std::string& name, const io::Group& g, const std::string& leaf) {
         state.tensors[name] = g.read(leaf);
       });
  walk(group.group(kInts), "",
       [&](const std::string& name, const io::Group& g, const std::string& leaf) {
         state.ints[name] = g.read(leaf, DType::i64).item<int64_t>();
       });
  walk(group.group(kReals), "",
       [&](const std::string& name, const io::Group& g, const std::string& leaf) {
         state.reals[name] = g.read(leaf, DType::f64).item<double>();
       });
  walk(group.group(kStrings), "",
       [&](const std::string& name, const io::Group& g, const std::string& leaf) {
         state.strings[name] = g.read_string(leaf);
       });
  return state;
}

}  // namespace pit::train
