// pit::ops::moe_ffn (ops/pit/moe.h): the experts of a dropless MoE layer as M-gather PIT GEMMs.
//
// Index: rows_from_routing(expert_of, E, gates) lists, per expert, the tokens routed to it
// (ascending token, then slot) with their gates as entry weights. Forward, C = compact by entry:
//   pre[e] = x[t(e)] W1_s^T                  gather_gemm: SRead of x's rows, compact C;
//   hw[e]  = gate_e * act(pre[e])            its epilogue writes both (Epilogue::pre, the gate
//                                            after the activation: scale_after_activation)
//   y[t]  += hw[e] W2_s^T                    gather_gemm: compact A, SWrite to the token's row
//                                            (accumulate for k > 1)
// Backward (same index; G = dy):
//   gu[e]   = G[t(e)] W2_s                    gather_gemm: SRead of G's rows, compact C
//   dpre[e] = gate_e * gu[e] * act'(pre[e])   moe_activation_backward (ops/pit/moe_grad.h): one
//   dgates[t, j] = <gu[e], act(pre[e])>       pass over gu and pre, act(pre) recomputed;
//                                             <gu[e], act(pre[e])> is <G[t], act(pre[e]) W2_s^T>,
//                                             written by e's slot j
//   dW2_s   = sum_e G[t(e)]^T hw[e]           gather_weight_grad (the gates are in hw)
//   dW1_s   = sum_e dpre[e]^T x[t(e)]         gather_weight_grad
//   dx[t]  += dpre[e] W1_s                    gather_gemm: compact A, SWrite to the token's row
// Keeping gate * act(pre) rather than act(pre) spares the backward's pass a buffer read and a
// buffer write (it wrote the gated copy for dW2), and the down GEMM its scale.
// Entries past the count (dropped assignments) are never read by the GEMMs nor the activation
// backward; the compact buffers there hold whatever was in memory.
// MoeRows::compact: x[t(e)] and G[t(e)] are first gathered into compact buffers by entry
// (sparse::gather_entry_rows), and the up and gu GEMMs and both weight gradients read those
// (A by TMA in whole boxes, where the GEMMs above gather rows by cp.async).
#include "ops/pit/moe.h"

#include <cstdlib>
#include <cstring>

#include "autograd/node.h"
#include "ops/pit/detect.h"
#include "ops/pit/entry_rows.h"
#include "ops/pit/gemm.h"
#include "ops/pit/moe_grad.h"

namespace pit::ops {
namespace {

void check_inputs(const Variable& x, const Tensor& expert_of, const Variable& gates, const Variable& w1,
                  const Variable& w2, const MoeFfnOptions& o) {
  const char* op = "moe_ffn";
  PIT_CHECK(x.defined() && expert_of.defined() && gates.defined() && w1.defined() && w2.defined(), op,
            ": undefined input");
  PIT_CHECK(x.dim() == 2, op, ": x must be [tokens, d_model], got ", shape_str(x.shape()),
            " (flatten batch and sequence first)");
  PIT_CHECK(w1.dim() == 3 && w2.dim() == 3, op, ": w1 must be [experts, d_ff, d_model] and w2 [experts, d_model, d_ff], got ",
            shape_str(w1.shape()), " and ", shape_str(w2.shape()));
  const int64_t t = x.size(0), d = x.size(1), e = w1.size(0), f = w1.size(1);
  PIT_CHECK(w1.size(2) == d && w2.size(0) == e && w2.size(1) == d && w2.size(2) == f, op, ": x ",
            shape_str(x.shape()), ", w1 ", shape_str(w1.shape()), " and w2 ", shape_str(w2.shape()),
            " do not agree: expected w1 [E, F, ", d, "] and w2 [E, ", d, ", F]");
  PIT_CHECK(expert_of.dim() == 2 && expert_of.size(0) == t && expert_of.size(1) >= 1, op, ": expert_of must be [",
            t, ", k] with k >= 1 (one expert id per token and slot), got ", shape_str(expert_of.shape()));
  PIT_CHECK(expert_of.dtype() == DType::i32 || expert_of.dtype() == DType::i64, op,
            ": expert_of must be i32 or i64, got ", dtype_name(expert_of.dtype()));
  PIT_CHECK(gates.shape() == expert_of.shape() && gates.dtype() == DType::f32, op, ": gates must be f32 ",
            shape_str(expert_of.shape()), " like expert_of, got ", dtype_name(gates.dtype()), " ",
            shape_str(gates.shape()));
  PIT_CHECK(w1.dtype() == x.dtype() && w2.dtype() == x.dtype(), op, ": x, w1 and w2 must share a dtype, got ",
            dtype_name(x.dtype()), ", ", dtype_name(w1.dtype()), ", ", dtype_name(w2.dtype()));
  for (const Device dev : {expert_of.device(), gates.device(), w1.device(), w2.device()})
    PIT_CHECK(dev == x.device(), op, ": every input must be on x's device (", x.device().str(), "), one is on ",
              dev.str());
  sparse::check_fused_activation(o.activation, op);
}

// MoeRows::automatic: compact on CUDA where a backward will follow (its GEMMs gain more than the
// copies cost: docs/BENCHMARKS.md, thirty-fifth session), else gathered (a forward alone, the
// CPU); PIT_MOE_COMPACT_ROWS=0 or 1 overrides.
bool compact_rows(MoeRows rows, bool training) {
  if (rows != MoeRows::automatic) return rows == MoeRows::compact;
  static const int env = [] {
    const char* v = std::getenv("PIT_MOE_COMPACT_ROWS");
    return v == nullptr || *v == '\0' ? -1 : std::strcmp(v, "0") == 0 ? 0 : 1;
  }();
  return env < 0 ? training : env == 1;
}

}  // namespace

Variable moe_ffn(const Variable& x, const Tensor& expert_of, const Variable& gates, const Variable& w1,
                 const Variable& w2, const MoeFfnOptions& o) {
  check_inputs(x, expert_of, gates, w1, w2, o);
  const int64_t t = x.size(0), d = x.size(1), k = expert_of.size(1), experts = w1.size(0), f = w1.size(1);
  const Tensor xd = x.data().contiguous(), w1d = w1.data().contiguous(), w2d = w2.data().contiguous();
  const Tensor ids = expert_of.contiguous(), g = gates.data().contiguous();
  const sparse::RowSetIndex idx = sparse::rows_from_routing(ids, experts, g);
  // Several slots of a token meet in its row of y (and of dx): accumulate, into zeros.
  const sparse::Write combine = k > 1 ? sparse::Write::accumulate : sparse::Write::store;
  const DType dt = x.dtype();
  const Device dev = x.device();

  // The up GEMM's epilogue writes both pre (for the backward's act') and hw = gate * act(pre),
  // computed from the f32 accumulators: no activation pass over pre, no gate in the down GEMM.
  // With no backward to follow, hw alone (pre would be [T * k, ffn] written for nothing).
  const bool grad = needs_grad({x, gates, w1, w2});
  Tensor pre = grad ? Tensor::empty({t * k, f}, dt, dev) : Tensor(), hw = Tensor::empty({t * k, f}, dt, dev);
  const bool compact = compact_rows(o.rows, grad && dev.is_cuda());
  const Tensor x_rows = compact ? sparse::gather_entry_rows(xd, idx) : xd;
  sparse::gather_gemm(x_rows, idx, w1d, hw,
                      {.a_gathered = !compact, .c_scattered = false, .b_trans = true, .use_weights = true,
                       .epilogue = {.activation = true, .act = o.activation, .pre = pre, .scale_after_activation = true}});
  Tensor y = Tensor::empty({t, d}, dt, dev);
  sparse::gather_gemm(hw, idx, w2d, y,
                      {.a_gathered = false, .c_scattered = true, .b_trans = true, .zero_c = true,
                       .epilogue = {.write = combine}});

  const bool need_x = grad && x.requires_grad(), need_g = grad && gates.requires_grad();
  const bool need_w1 = grad && w1.requires_grad(), need_w2 = grad && w2.requires_grad();
  const UnaryOp act = o.activation;
  return record("moe_ffn", {x, gates, w1, w2}, y, [=](const Tensor& gy) -> std::vector<Tensor> {
    const Tensor dy = gy.contiguous();
    const Tensor dy_rows = compact ? sparse::gather_entry_rows(dy, idx) : dy;
    Tensor dx, dg, dw1, dw2;
    if (need_w2) {
      dw2 = Tensor::empty({experts, d, f}, dt, dev);
      sparse::gather_weight_grad(hw, dy_rows, idx, dw2, {.a_gathered = false, .g_gathered = !compact, .b_trans = true});
    }
    if (need_x || need_w1 || need_g) {
      Tensor gu = Tensor::empty({t * k, f}, dt, dev);
      sparse::gather_gemm(dy_rows, idx, w2d, gu, {.a_gathered = !compact, .c_scattered = false});
      // dpre is written over gu (each element is read first); only the gates' gradient when
      // neither x nor W1 needs one.
      Tensor dpre = need_x || need_w1 ? gu : Tensor();
      if (need_g) dg = Tensor::empty({t, k}, DType::f32, dev);
      sparse::moe_activation_backward(act, gu, pre, idx, ids, dpre, dg);
      if (need_w1) {
        dw1 = Tensor::empty({experts, f, d}, dt, dev);
        sparse::gather_weight_grad(x_rows, dpre, idx, dw1, {.a_gathered = !compact, .g_gathered = false, .b_trans = true});
      }
      if (need_x) {
        dx = Tensor::empty({t, d}, dt, dev);
        sparse::gather_gemm(dpre, idx, w1d, dx,
                            {.a_gathered = false, .c_scattered = true, .zero_c = true, .epilogue = {.write = combine}});
      }
    }
    return {dx, dg, dw1, dw2};
  });
}

}  // namespace pit::ops
