#pragma once
// Parameters sharded over ranks (expert parallelism: Module::sharded_parameters) in the run's
// state, gradients and norms. A checkpoint always holds the whole of each sharded parameter and of
// its optimizer state (the experts by global index, as one process would write them), so a run
// saved on any number of ranks resumes on any other number whose expert groups divide the experts.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.h"
#include "core/comm.h"
#include "trainer/nn/module.h"
#include "trainer/state.h"

namespace pit::train {

using Shards = std::vector<std::pair<std::string, Communicator*>>;  // parameter path, its ranks

// In a run state (collect_run_state's: "model/<path>", "optim/<path>/<slot>"): each tensor of a
// sharded parameter becomes the whole, gathered over its communicator. Every rank calls it. A
// rank's part larger than max_bytes goes in pieces of at most that (MPI counts a call's bytes in
// 32 bits: a shard of 16 experts of 4096 x 14336 in f32 is 3.8 GB).
void gather_shards(StateDict& state, const Shards& shards, int64_t max_bytes = int64_t{1} << 30);
// The opposite, for a state loaded from `path`: each such tensor becomes this rank's rows. Throws
// naming the tensor when its rows do not split over the ranks.
void take_shards(StateDict& state, const Shards& shards, const std::string& path);

// The parameters split into those every rank holds alike and the sharded ones.
struct ParameterSplit {
  std::vector<Variable> replicated, sharded;
  Communicator* shard_comm = nullptr;  // the communicator of the sharded ones (null: none)
};
ParameterSplit split_parameters(nn::Module& model);

// The L2 norm of all gradients of the model, the same on every rank: the replicated parameters'
// (identical on every rank after averaging) with the shards' squared norms summed over their
// ranks. A 0-d f32 tensor on the gradients' device.
Tensor global_grad_norm(const ParameterSplit& split);

}  // namespace pit::train
