#pragma once
// StateDict: what a component hands to a checkpoint and takes back from one. Named tensors in
// a stable order (names are slash-separated paths, e.g. "blocks/0/attn/qkv/weight") plus named
// scalars. Modules, optimizers, loss scalers, data loaders and RNGs all speak it, so the
// checkpoint code knows nothing of any of them.
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pit::train {

struct StateDict {
  std::map<std::string, Tensor> tensors;       // CPU or CUDA; the checkpoint stores them on the host
  std::map<std::string, int64_t> ints;         // step counts, data positions, RNG counters
  std::map<std::string, double> reals;         // loss scale, learning-rate state
  std::map<std::string, std::string> strings;  // the resolved config, model kind, format version

  // Moves every entry of `other` in under `prefix` + "/" (prefix "" adds them as they are).
  void merge(const std::string& prefix, StateDict other);
  // The entries under `prefix` + "/", with the prefix removed.
  StateDict sub(const std::string& prefix) const;
};

// A host copy of `t` that shares nothing with it: what state_dict() hands out.
Tensor host_copy(const Tensor& t);

// Checks a StateDict against what a component expects before anything is loaded, so that a
// mismatch names every missing, mis-shaped and unexpected entry at once:
//   StateCheck check(state);
//   for (...) check.tensor(name, shape);
//   check.integer("step");
//   check.throw_if_mismatched("AdamW", "optimizer");   // then load: every entry is there
class StateCheck {
 public:
  explicit StateCheck(const StateDict& state) : state_(state) {}
  void tensor(const std::string& name, const Shape& shape);  // expects a tensor of this shape
  void integer(const std::string& name);                      // expects an integer
  // Throws "<owner>.load_state_dict: the state does not match the <what>; missing: ...;
  // wrong shape: ...; unexpected: ... (nothing was loaded)" when anything did not match, counting
  // as unexpected every tensor of the state that tensor() was not asked about, and, where
  // integer() was asked about any, every integer it was not asked about.
  void throw_if_mismatched(const std::string& owner, const std::string& what) const;

 private:
  const StateDict& state_;
  std::set<std::string> known_, known_ints_;
  std::vector<std::string> missing_, mis_shaped_;
};

}  // namespace pit::train
