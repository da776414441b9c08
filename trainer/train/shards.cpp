#include "trainer/train/shards.h"

#include <algorithm>
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

// Every rank's t concatenated along dim 0, gathered in pieces of at most max_bytes a rank (MPI
// counts bytes in 32 bits): piece j of every rank's flattened t arrives as [ranks, piece], and the
// pieces side by side are [ranks, numel], every rank's t in rank order.
Tensor gather_in_pieces(Communicator& comm, const Tensor& t, int64_t max_bytes) {
  if (static_cast<int64_t>(t.nbytes()) <= max_bytes || t.numel() == 0) return comm.all_gather(t);
  const int64_t n = t.numel(), per = std::max<int64_t>(1, max_bytes / static_cast<int64_t>(dtype_size(t.dtype())));
  const Tensor flat = t.contiguous().view({n});
  std::vector<Tensor> pieces;
  for (int64_t a = 0; a < n; a += per) {
    const int64_t b = std::min(n, a + per);
    pieces.push_back(comm.all_gather(flat.slice(0, a, b).contiguous()).view({comm.size(), b - a}));
  }
  Shape shape = t.shape();
  shape[0] *= comm.size();
  return kernels::cat(pieces, 1).view(shape);
}

}  // namespace

void gather_shards(StateDict& state, const Shards& shards, int64_t max_bytes) {
  PIT_CHECK(max_bytes >= 1, "gather_shards: max_bytes must be >= 1, got ", max_bytes);
  for (const auto& [path, comm] : shards)
    for (const std::string& key : keys_of(state, path))
      state.tensors[key] = gather_in_pieces(*comm, state.tensors[key], max_bytes);
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
