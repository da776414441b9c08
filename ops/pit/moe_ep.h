#pragma once
// Expert parallelism: the experts of an MoE layer sharded over the ranks of a communicator,
// rank p holding experts [p E_local, (p + 1) E_local). Each rank routes its own tokens; the
// dispatch index over all E experts is built on the device (rows_from_routing: entries grouped by
// expert, hence by destination rank), and only the ranks' P + 1 boundaries are read to the host
// (no per-token host work). Every assignment's token row and gate travel to the expert's rank
// (all_to_all with those counts, exchanged once per call), the experts run there on what they
// received (ops::moe_ffn: the PIT M-gather GEMMs, dropless), and the gate-weighted outputs travel
// back (the reverse exchange) to be summed per token. Backward mirrors it through the same
// exchanges. Every rank must call it.
#include "autograd/variable.h"
#include "core/comm.h"
#include "ops/pit/moe.h"

namespace pit::ops {

// As moe_ffn (ops/pit/moe.h) for this rank's tokens x [T, d] with expert_of [T, k] naming global
// experts (negative: dropped; >= E: dropped on CUDA, as in moe_ffn) and gates [T, k], where
// w1_local [E_local, ffn, d] and w2_local [E_local, d, ffn] are this rank's experts
// (E = E_local * comm.size() in all). The local experts' weight gradients sum over every rank's
// tokens routed to them. One synchronisation per call (the P + 1 boundaries); T * k must be at
// most 2^24.
Variable moe_ffn_expert_parallel(const Variable& x, const Tensor& expert_of, const Variable& gates,
                                 const Variable& w1_local, const Variable& w2_local, Communicator& comm,
                                 const MoeFfnOptions& options = {});

}  // namespace pit::ops
