#pragma once
// StateDict: what a component hands to a checkpoint and takes back from one. Named tensors in
// a stable order (names are slash-separated paths, e.g. "blocks/0/attn/qkv/weight") plus named
// scalars. Modules, optimizers, loss scalers, data loaders and RNGs all speak it, so the
// checkpoint code knows nothing of any of them.
#include <cstdint>
#include <map>
#include <string>

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

}  // namespace pit::train
