// Differentiable causal attention: forward with kernels::causal_attention; the backward node
// saves q, k, v, the output and the f32 row log-sum-exp, and recomputes the attention weights
// from them (nothing of size T x T is ever stored).
#include "autograd/node.h"
#include "ops/functional.h"
#include "ops/kernels.h"

namespace pit::ops {

Variable causal_attention(const Variable& q, const Variable& k, const Variable& v) {
  kernels::AttentionResult r = kernels::causal_attention(q.data(), k.data(), v.data());
  if (!needs_grad({q, k, v})) return Variable(r.out);  // nothing to record or save
  const bool need_q = q.requires_grad(), need_k = k.requires_grad(), need_v = v.requires_grad();
  const Tensor sq = q.data(), sk = k.data(), sv = v.data();
  const kernels::AttentionResult saved = r;
  return record("causal_attention", {q, k, v}, r.out,
                [=](const Tensor& g) -> std::vector<Tensor> {
                  // The backward computes all three gradients together; drop those not asked for.
                  kernels::AttentionGrads grads =
                      kernels::causal_attention_backward(g, sq, sk, sv, saved);
                  return {need_q ? grads.dq : Tensor(), need_k ? grads.dk : Tensor(),
                          need_v ? grads.dv : Tensor()};
                });
}

}  // namespace pit::ops
