#pragma once
// pit::ops::moe_ffn: the experts of a mixture-of-experts layer, dropless, on the PIT engine.
// Routing (which expert each token goes to) is known only at run time; the dispatch index is
// built from it on the device (rows_from_routing: per-expert token counts, offsets and token ids,
// no host synchronisation, no capacity), and every expert's FFN runs over its tokens as M-gather
// PIT GEMMs, all experts in one launch: SRead takes each expert's tokens straight from the
// unpermuted activations and the gate-weighted combine is SWrite's epilogue. No padding, no
// dropped token, no permutation copies. Backward reuses the forward's dispatch index.
#include <cstdint>

#include "autograd/variable.h"
#include "ops/elementwise_op.h"

namespace pit::ops {

// How the up and gu GEMMs and both weight gradients take each expert's rows of x and of dy.
enum class MoeRows : uint8_t {
  automatic,  // compact on CUDA when a backward will follow (an input needs a gradient), else
              // gathered; the environment's PIT_MOE_COMPACT_ROWS=0 / 1 forces gathered / compact
  gathered,   // SRead inside each GEMM, by cp.async (no copy)
  compact,    // gathered once into a [T * k, d] buffer (sparse::gather_entry_rows: x's is kept for
              // the backward, dy's lives through it), which the GEMMs read whole by TMA. H100,
              // T = 16384, d = 1024, ffn = 4096, E = 64: forward + backward 0-4 % faster, the
              // forward alone 1.5-2.2 % slower at top-1 (docs/BENCHMARKS.md, thirty-fifth session)
};

struct MoeFfnOptions {
  UnaryOp activation = UnaryOp::gelu_tanh;  // relu, gelu_tanh, gelu_erf or silu
  MoeRows rows = MoeRows::automatic;
};

// y[t] = sum_j gates[t, j] * W2_e act(W1_e x[t]), e = expert_of[t, j], for
//   x          [T, d]        f32, bf16, f16 (f64 on the CPU); differentiable
//   expert_of  [T, k]        i32 or i64, on x's device; non-differentiable. A negative id drops that
//                            assignment (a capacity rule's overflow): it adds nothing to y. An id
//                            >= E throws on the CPU; on CUDA it is dropped too (checking would
//                            cost a synchronisation: see rows_from_routing).
//   gates      [T, k]        f32, on x's device; differentiable (the router's weights)
//   w1         [E, ffn, d]   x's dtype (each expert's first Linear weight, [out, in]); differentiable
//   w2         [E, d, ffn]   x's dtype (the second); differentiable
// Returns y [T, d] in x's dtype. Experts that receive no token cost nothing and get a zero
// weight gradient. Backward: dx, dW1, dW2 through the forward's index; dgates[t, j] =
// <dy[t], W2_e act(W1_e x[t])> = <dy[t] W2_e, act(W1_e x[t])>, taken in the same pass as the
// activation's backward (ops/pit/moe_grad.h): no expert output is recomputed.
Variable moe_ffn(const Variable& x, const Tensor& expert_of, const Variable& gates, const Variable& w1,
                 const Variable& w2, const MoeFfnOptions& options = {});

}  // namespace pit::ops
