#pragma once
// What the PIT linear ops (pit_linear, sparse_linear) share: which gradients a backward must
// produce, and y's shape from x's.
#include "autograd/node.h"
#include "autograd/variable.h"
#include "ops/pit/compact.h"

namespace pit::ops::detail {

// Which of x, W (or its compact values) and b the backward must produce.
struct GradNeeds {
  bool x, w, b;
  GradNeeds(const Variable& x_, const Variable& w_, const Variable& b_) {
    const bool grad = needs_grad({x_, w_, b_});
    x = grad && x_.requires_grad();
    w = grad && w_.requires_grad();
    b = grad && b_.defined() && b_.requires_grad();
  }
};

// sparse_linear's checks of its operands (named in the errors as sparse_linear's).
void check_sparse_linear(const Variable& x, const Variable& values, const Variable& bias,
                         const sparse::CompactLayout& layout);

// x's shape with the last dim replaced by `out`: the shape of y.
inline Shape out_shape(Shape shape, int64_t out) {
  shape.back() = out;
  return shape;
}

}  // namespace pit::ops::detail
