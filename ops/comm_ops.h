#pragma once
// Collectives as differentiable ops, for model parallelism (expert parallelism: ops/pit/moe_ep.h).
#include <cstdint>
#include <vector>

#include "autograd/variable.h"
#include "core/comm.h"

namespace pit::ops {

// comm.all_to_all over x's rows (core/comm.h): send_rows[p] rows to rank p, in rank order; the
// rows every rank sent here come back, in rank order (their counts in *recv_rows when given).
// known_recv (one count per rank) skips the count exchange when the incoming counts are known.
// Backward sends each row's gradient back the way the row came (no count exchange). Every rank
// must call it.
Variable all_to_all(const Variable& x, const std::vector<int64_t>& send_rows, Communicator& comm,
                    std::vector<int64_t>* recv_rows = nullptr, const std::vector<int64_t>& known_recv = {});

}  // namespace pit::ops
