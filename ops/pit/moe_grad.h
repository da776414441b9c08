#pragma once
// The activation backward of the MoE experts (ops/pit/moe.cpp), fused with the gates' gradient:
// one pass over the compact buffers gives both, so the gates need no recomputed expert output.
#include "core/tensor.h"
#include "ops/elementwise_op.h"
#include "ops/pit/index.h"

namespace pit::sparse {

// For every entry e of idx (expert segment s, token t = idx.rows[e], slot j = the position of
// this assignment in expert_of[t, :]):
//   dpre[e, f] = w_e * gu[e, f] * act'(pre[e, f])        (w_e = idx.weights[e]; 1 if undefined)
//   dgates[t, j] = sum_f gu[e, f] * h[e, f]              (f32)
// gu = dy[t] W2_s (the gradient of h[e] without the gate); pre and h the forward's compact
// buffers (h = act(pre)), all [capacity, F] contiguous in one dtype: f32, bf16, f16 (f64 on the
// CPU). Math in f32 (f64 for f64), one rounding on store. A token that names one expert in two
// slots has two consecutive entries in that segment, in slot order: the o-th of them is the o-th
// such slot. idx: expert segments, e.g. rows_from_routing(expert_of, E, gates).
//   act      relu, gelu_tanh, gelu_erf or silu
//   dpre     [capacity, F] in gu's dtype, written in place; it may be gu itself. Undefined: the
//            gates' gradient only. Rows past the count offsets[E] are not touched.
//   dgates   [T, k] f32, every element written (slots that name no expert, id < 0, get 0).
//            Undefined: dpre only (the router needs no gradient).
//   expert_of  [T, k] i32 or i64, the routing idx was built from; only read for dgates.
//   gated_h  null, or [capacity, F] contiguous in gu's dtype, overlapping none of the other
//            buffers: also gated_h[e, f] = w_e * h[e, f] (one rounding), the down GEMM's weight
//            gradient's operand with the gates folded in (ops/pit/moe.cpp), written in the same
//            pass. Rows past the count are not touched.
// On the current stream, no host synchronisation (the count is read on the device).
void moe_activation_backward(UnaryOp act, const Tensor& gu, const Tensor& pre, const Tensor& h,
                             const RowSetIndex& idx, const Tensor& expert_of, Tensor& dpre,
                             Tensor& dgates, Tensor* gated_h = nullptr);

}  // namespace pit::sparse
