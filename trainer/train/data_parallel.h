#pragma once
// Data parallelism in the training loop: every rank holds the whole model, trains on its share
// of each global batch, and the gradients are averaged over the ranks before the optimizer step,
// so every rank takes the same step (and, sparse layers included, makes the same mask choices).
// The gradients go in buckets: each bucket one flat buffer, one all_reduce.
#include <cstdint>
#include <vector>

#include "autograd/variable.h"
#include "core/comm.h"

namespace pit::train {

// The mean over ranks of every defined gradient of `params`, in place, in buckets of at most
// bucket_elements elements (of one dtype and device each). Every rank must hold the same
// parameters with gradients defined alike. A no-op for one rank.
void average_gradients(const std::vector<Variable>& params, Communicator& comm, int64_t bucket_elements = 1 << 22);

}  // namespace pit::train
