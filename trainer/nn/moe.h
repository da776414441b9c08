#pragma once
// A mixture-of-experts feed-forward layer: a router and E expert FFNs (fc d -> ffn, the
// activation, proj ffn -> d; no biases), dropless, on the PIT engine (ops/pit/moe.h): each
// expert computes exactly the tokens routed to it, read in place and combined in place.
//
// Router (in f32, as Switch Transformer advises): logits = x W_r^T (W_r [E, d]); in training the
// router's input is multiplied by U(1 - jitter, 1 + jitter) noise when jitter > 0; p = softmax;
// the k largest p per token pick the experts (ties: the lower id) and their p are the gates,
// renormalised to sum 1 when k > 1 (normalize_top_k; Switch top-1 keeps p as it is).
// Auxiliary losses of the last forward (add them, scaled, to the training loss):
//   load balancing (Switch / GShard): E * sum_e f_e P_e, f_e the fraction of the T*k
//     assignments that went to expert e (not differentiable), P_e the mean router probability of e;
//     1 when both are uniform;
//   router z-loss (ST-MoE): mean over tokens of logsumexp(logits)^2.
// Capacity (capacity_factor > 0, for comparison runs; 0 is dropless): every expert takes at most
// C = ceil(capacity_factor * T * k / E) assignments, first choices before second choices (GShard),
// each in token order; the assignments past C are dropped (their token keeps only its residual,
// the other slots' gates are not renormalised). This reads the routing back to the host every
// forward. The losses use the router's choices before the drops.
// Expert parallelism (expert_comm with P > 1 ranks): this rank holds experts
// [rank E/P, (rank + 1) E/P) (w1 and w2 are sharded parameters, Module::shard_parameter), drawn
// as the same rows of the whole that one process would draw; every rank routes its own tokens
// over all E experts and ops::moe_ffn_expert_parallel sends them to their experts' ranks and
// back. Every rank of expert_comm must run each forward and backward together. The auxiliary
// losses, the capacity and the counts are those of this rank's tokens (as Switch computes them
// per device).
#include <cstdint>
#include <memory>

#include "core/random.h"
#include "trainer/nn/activation.h"
#include "trainer/nn/layers.h"
#include "trainer/nn/module.h"

namespace pit::nn {

class MoE : public Module {
 public:
  struct Options {
    int64_t dim = 0, hidden = 0, experts = 0, top_k = 1;
    Activation activation = Activation::gelu_tanh;  // relu, gelu, gelu_tanh or silu
    bool normalize_top_k = true;
    double jitter = 0.0;
    double capacity_factor = 0.0;  // 0: dropless
    double dropout = 0.0;  // on the output
    double router_std = 0.02, fc_std = 0.02, proj_std = 0.02;  // N(0, std) initialisation
    Communicator* expert_comm = nullptr;  // expert parallelism (null or one rank: every expert here)
  };
  // What the last forward routed, for the losses and the metrics.
  struct Routing {
    Tensor expert_of;      // [T, k] i64, on the input's device: the router's choices
    Tensor routed;         // [T, k] i64: what the experts ran (expert_of with dropped slots -1)
    int64_t dropped = 0;   // assignments dropped by the capacity (0 when dropless)
    Variable gates;        // [T, k] f32
    Variable aux_loss;     // scalar f32
    Variable z_loss;       // scalar f32
    Tensor tokens_per_expert;  // [E] f32: assignments each expert ran, on the input's device
  };

  MoE(const Options& o, Generator& gen);
  const char* type_name() const override { return "MoE"; }
  // (..., dim) -> (..., dim) in the compute dtype.
  Variable forward(const Variable& x) override;
  const Routing& last_routing() const { return last_; }
  const Options& options() const { return opt_; }
  int64_t local_experts() const { return w1_.size(0); }  // held by this rank

 private:
  Options opt_;
  Variable router_, w1_, w2_;  // [E, dim], [E, hidden, dim], [E, dim, hidden]
  Routing last_;
};

}  // namespace pit::nn
