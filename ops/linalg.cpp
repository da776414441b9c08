// Differentiable matmul and linear.
#include "autograd/node.h"
#include "ops/functional.h"
#include "ops/kernels.h"

namespace pit::ops {

Variable matmul(const Variable& a, const Variable& b) {
  const Tensor out = kernels::matmul(a.data(), b.data());
  const bool grad = needs_grad({a, b});
  const bool need_a = grad && a.requires_grad(), need_b = grad && b.requires_grad();
  const Tensor sa = need_b ? a.data() : Tensor();  // dB needs A, dA needs B
  const Tensor sb = need_a ? b.data() : Tensor();
  const Shape a_shape = a.shape(), b_shape = b.shape();
  const bool b_transposed = kernels::is_transposed_view(b.data());
  return record("matmul", {a, b}, out, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor ga, gb;
    // dA = dC B^T, dB = A^T dC; the transposes are views folded into the GEMM.
    if (need_a) ga = kernels::sum_to(kernels::matmul(g, sb.transpose(-1, -2)), a_shape);
    if (need_b) {
      const int64_t k = sa.size(-1), n = g.size(-1);
      if (b_transposed) {
        // B = W^T (a Linear): dW = dC^T A in W's own layout, so the transpose's backward hands W
        // a contiguous gradient instead of copying a transposed one (a 4096 x 16384 bf16 copy:
        // 0.163 ms on an H200).
        gb = kernels::matmul(g.reshape({leading_rows(g.shape()), n}).t(), sa.reshape({leading_rows(sa.shape()), k})).t();
      } else if (b_shape.size() == 2 && sa.dim() > 2) {
        // B shared across A's batch: reduce over every row at once, (rows, K)^T (rows, N).
        gb = kernels::matmul(sa.reshape({leading_rows(sa.shape()), k}).t(), g.reshape({leading_rows(g.shape()), n}));
      } else {
        gb = kernels::sum_to(kernels::matmul(sa.transpose(-1, -2), g), b_shape);
      }
    }
    return {ga, gb};
  });
}

Variable linear(const Variable& x, const Variable& weight, const Variable& bias) {
  PIT_CHECK(weight.dim() == 2, "linear: the weight must be (out_features, in_features), got ",
            shape_str(weight.shape()));
  PIT_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input of shape ",
            shape_str(x.shape()), " does not match a weight of shape ", shape_str(weight.shape()),
            " (in_features ", weight.size(1), ")");
  Variable y = matmul(x, transpose(weight, 0, 1));
  if (bias.defined()) {
    PIT_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "linear: bias of shape ",
              shape_str(bias.shape()), " for ", weight.size(0), " output features");
    y = add(y, bias);
  }
  return y;
}

}  // namespace pit::ops
