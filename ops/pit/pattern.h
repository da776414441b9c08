#pragma once
// The sparse operand's pattern as a tensor operation: x * (p != 0), elementwise, same shape.
// Used by the PIT ops to apply a declared mask and to restrict gradients to the pattern.
#include "core/tensor.h"

namespace pit::sparse {

// x where p is non-zero, 0 elsewhere (p any dtype, x's shape, x's device).
Tensor apply_pattern(const Tensor& x, const Tensor& p);

}  // namespace pit::sparse
