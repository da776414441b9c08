// x * (p != 0) with the existing conversion and elementwise kernels (ops/pit/pattern.h).
#include "ops/pit/pattern.h"

#include "ops/kernels.h"

namespace pit::sparse {

Tensor apply_pattern(const Tensor& x, const Tensor& p) {
  PIT_CHECK(x.shape() == p.shape(), "apply_pattern: pattern of shape ", shape_str(p.shape()),
            " does not match ", shape_str(x.shape()));
  // bool conversion is v != 0 (NaN counts as kept), then 1/0 in x's dtype.
  const Tensor keep = p.to(DType::boolean).to(x.dtype());
  return kernels::binary(BinaryOp::mul, x, keep);
}

}  // namespace pit::sparse
