// x * (p != 0) with the existing conversion and elementwise kernels (ops/pit/pattern.h).
#include "ops/pit/pattern.h"

#include "ops/kernels.h"

namespace pit::sparse {

Tensor apply_pattern(const Tensor& x, const Tensor& p) {
  PIT_CHECK(x.shape() == p.shape(), "apply_pattern: pattern of shape ", shape_str(p.shape()),
            " does not match ", shape_str(x.shape()));
  // One pass when the pattern has x's dtype (the operand itself); otherwise a 1/0 factor in x's
  // dtype first. Either way v != 0 keeps (NaN counts as kept).
  if (p.dtype() == x.dtype()) return kernels::binary(BinaryOp::keep_where, x, p);
  const Tensor keep = p.to(DType::boolean).to(x.dtype());
  return kernels::binary(BinaryOp::mul, x, keep);
}

}  // namespace pit::sparse
