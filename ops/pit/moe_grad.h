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
//   dgates[t, j] = sum_f gu[e, f] * act(pre[e, f])       (f32)
// gu = dy[t] W2_s (the gradient of the expert's act(pre) without the gate); pre the forward's
// compact buffer of the values before the activation, both [capacity, F] contiguous in one dtype:
// f32, bf16, f16 (f64 on the CPU). act(pre) is recomputed from pre, so the pass reads two buffers
// and writes one (the forward keeps gate * act(pre) for the down GEMM and W2's gradient, not
// act(pre) itself). Math in f32 (f64 for f64), one rounding on store. A token that names one
// expert in two slots has two consecutive entries in that segment, in slot order: the o-th of them
// is the o-th such slot. idx: expert segments, e.g. rows_from_routing(expert_of, E, gates).
//   act      relu, gelu_tanh, gelu_erf or silu
//   dpre     [capacity, F] in gu's dtype, written in place; it may be gu itself. Undefined: the
//            gates' gradient only. Rows past the count offsets[E] are not touched.
//   dgates   [T, k] f32, every element written (slots that name no expert, id < 0, get 0).
//            Undefined: dpre only (the router needs no gradient).
//   expert_of  [T, k] i32 or i64, the routing idx was built from; only read for dgates.
// On the current stream, no host synchronisation (the count is read on the device).
void moe_activation_backward(UnaryOp act, const Tensor& gu, const Tensor& pre, const RowSetIndex& idx,
                             const Tensor& expert_of, Tensor& dpre, Tensor& dgates);

}  // namespace pit::sparse
