#include "trainer/train/shards.h"

#include <unordered_set>

#include "core/error.h"
#include "ops/kernels.h"
#include "trainer/optim/clip.h"

namespace pit::train {
namespace {

// The tensor keys of `state` that belong to parameter `path`: the parameter and its optimizer
// slots, in key order (the same on every rank).
std::vector<std::string> keys_of(const StateDict& state, const std::string& path) {
  std::vector<std::string> out;
  if (state.tensors.count("model/" + path)) out.push_back("model/" + path);
  const std::string slots = "optim/" + path + "/";
  for (auto it = state.tensors.lower_bound(slots); it != state.tensors.end() && it->first.starts_with(slots); ++it)
    out.push_back(it->first);
  return out;
}

}  // namespace

void gather_shards(StateDict& state, const Shards& shards) {
  for (const auto& [path, comm] : shards)
    for (const std::string& key : keys_of(state, path)) state.tensors[key] = comm->all_gather(state.tensors[key]);
}

void take_shards(StateDict& state, const Shards& shards, const std::string& path) {
  for (const auto& [param, comm] : shards) {
    for (const std::string& key : keys_of(state, param)) {
      const Tensor whole = state.tensors[key];
      const int64_t ranks = comm->size();
      PIT_CHECK(whole.dim() >= 1 && whole.size(0) % ranks == 0, "checkpoint ", path, ": ", key, " has ",
                whole.dim() >= 1 ? whole.size(0) : 0, " rows (experts), which do not split over the ", ranks,
                " ranks of an expert group; set parallel.expert to a divisor of them");
      const int64_t n = whole.size(0) / ranks;
      state.tensors[key] = whole.slice(0, comm->rank() * n, (comm->rank() + 1) * n).contiguous();
    }
  }
}

ParameterSplit split_parameters(nn::Module& model) {
  ParameterSplit out;
  std::unordered_set<std::string> sharded;
  for (const auto& [path, comm] : model.sharded_parameters()) {
    PIT_CHECK(out.shard_comm == nullptr || out.shard_comm == comm,
              "parameters sharded over different communicators (", path, "); one expert layout per model");
    out.shard_comm = comm;
    sharded.insert(path);
  }
  for (const auto& [path, v] : model.named_parameters()) (sharded.count(path) ? out.sharded : out.replicated).push_back(v);
  return out;
}

Tensor global_grad_norm(const ParameterSplit& split) {
  const Tensor replicated = optim::grad_norm(split.replicated);
  if (split.shard_comm == nullptr) return replicated;
  const auto squared = [](const Tensor& n) { return kernels::binary(BinaryOp::mul, n, n); };
  Tensor shards = squared(optim::grad_norm(split.sharded));
  split.shard_comm->all_reduce(shards, ReduceOp::sum);
  const Device dev = replicated.device().is_cuda() ? replicated.device() : shards.device();  // a norm of no gradient is a CPU 0
  const Tensor total = kernels::binary(BinaryOp::add, squared(replicated).to(dev), shards.to(dev));
  return kernels::unary(UnaryOp::sqrt, total);
}

}  // namespace pit::train
