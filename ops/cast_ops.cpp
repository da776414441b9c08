// Differentiable dtype conversion: forward and backward are Tensor::to(dtype); nothing is saved
// but the input's dtype.
#include "autograd/node.h"
#include "ops/functional.h"

namespace pit::ops {

Variable cast(const Variable& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  const DType from = x.dtype();
  return record("cast", {x}, x.data().to(dtype), [from](const Tensor& g) -> std::vector<Tensor> {
    return {g.to(from)};
  });
}

}  // namespace pit::ops
