// pit::ops::sparse_linear (ops/pit/pit_ops.h): a linear layer over a compact weight. The layout's
// index is made once per mask (ops/pit/compact.h), not per call: forward and backward only read
// it. K lists: x^T and dy^T cost one transpose copy each, so that the micro-tiles' rows of x^T
// (runs of T tokens) are read whole. Blocks: x, y, dy and dx as they are (block_linear).
#include "autograd/node.h"
#include "ops/kernels.h"
#include "ops/pit/gemm.h"
#include "ops/pit/linear_grads.h"
#include "ops/pit/pit_ops.h"

namespace pit::ops {

void detail::check_sparse_linear(const Variable& x, const Variable& values, const Variable& bias,
                                 const sparse::CompactLayout& l) {
  const char* op = "sparse_linear";
  PIT_CHECK(x.defined() && values.defined(), op, ": undefined input");
  PIT_CHECK(values.shape() == l.values_shape(), op, ": values of shape ", shape_str(values.shape()),
            " do not fit the layout (", l.str(), ": ", shape_str(l.values_shape()), ")");
  PIT_CHECK(x.dim() >= 1 && x.size(-1) == l.cols, op, ": input of shape ", shape_str(x.shape()),
            " does not match a weight of ", l.rows, "x", l.cols, " (in_features ", l.cols, ")");
  PIT_CHECK(x.dtype() == values.dtype() && x.device() == values.device(), op, ": x (", dtype_name(x.dtype()), ", ",
            x.device().str(), ") and the values (", dtype_name(values.dtype()), ", ", values.device().str(),
            ") must share dtype and device");
  PIT_CHECK(l.device() == values.device(), op, ": the layout is on ", l.device().str(), " but the values on ",
            values.device().str(), "; make the layout on the values' device");
  if (bias.defined()) {
    PIT_CHECK(bias.dim() == 1 && bias.size(0) == l.rows && bias.dtype() == values.dtype(), op, ": bias must be [",
              l.rows, "] of the values' dtype, got ", shape_str(bias.shape()), " ", dtype_name(bias.dtype()));
  }
}

namespace {

// The gradient before the fused ReLU (o.relu): dy through the ReLU, read from its output `act`, or
// dy itself without one (act undefined); gb, when wanted, the bias gradient (its column sums).
Tensor pre_activation_grad(const Tensor& g, const Tensor& act, bool want_bias, Tensor& gb) {
  if (act.defined()) return kernels::relu_backward_from_output(g, act, want_bias ? &gb : nullptr);
  if (want_bias) gb = kernels::sum(g, {0});
  return g;
}

// A layout dense enough for the dense GEMMs: W scattered to dense once per call, the values'
// gradient gathered from the dense dW (which is also RigL's dense gradient, for free).
Variable dense_path(const Variable& x, const Variable& values, const Variable& bias, const sparse::CompactLayout& layout,
                    const SparseLinearOptions& o, const Tensor& x2, const Tensor& v, const Tensor& inside,
                    const detail::GradNeeds& need) {
  const Tensor w = sparse::compact_to_dense(layout, v);  // [out, in]
  Tensor y = kernels::matmul(x2, w.t());
  if (bias.defined()) y = kernels::binary(BinaryOp::add, y, bias.data());
  if (o.relu) y = kernels::unary(UnaryOp::relu, y);
  const Tensor act = o.relu ? y : Tensor();
  const Shape x_shape = x.shape();
  return record("sparse_linear", {x, values, bias}, y.view(detail::out_shape(x_shape, layout.rows)),
                [=](const Tensor& g_in) -> std::vector<Tensor> {
    Tensor gx, gv, gb;
    const Tensor g = pre_activation_grad(g_in.reshape({leading_rows(g_in.shape()), layout.rows}).contiguous(), act, need.b, gb);
    if (need.x) gx = kernels::matmul(g, w).view(x_shape);
    if (need.w) {
      const Tensor dw = kernels::matmul(g.t(), x2);
      gv = sparse::compact_gather(layout, dw);
      if (inside.defined()) gv = kernels::binary(BinaryOp::mul, gv, inside);
      if (o.dense_weight_grad) *o.dense_weight_grad = dw;
    }
    return {gx, gv, gb};
  });
}

}  // namespace

Variable sparse_linear(const Variable& x, const Variable& values, const Variable& bias,
                       const sparse::CompactLayout& layout, const SparseLinearOptions& o) {
  detail::check_sparse_linear(x, values, bias, layout);
  const int64_t in = layout.cols, out = layout.rows;
  const Tensor x2 = x.data().reshape({leading_rows(x.shape()), in}).contiguous();
  const int64_t t = x2.size(0);
  // An element pattern inside the micro-tiles: the values outside it are structurally zero (kept
  // at 0 by the trainer; multiplied out here so that the op is the function its gradient says).
  const Tensor inside = layout.inside.defined() ? layout.inside.to(values.dtype()) : Tensor();
  const Tensor v = inside.defined() ? kernels::binary(BinaryOp::mul, values.data(), inside) : values.data();
  const Shape x_shape = x.shape();
  const detail::GradNeeds need(x, values, bias);
  if (layout.dense_path()) return dense_path(x, values, bias, layout, o, x2, v, inside, need);
  const bool lists = !layout.is_blocks();
  // K lists: y^T = W x^T (x^T and y^T are copies); blocks: y = x W^T as they lie (block_linear).
  const Tensor xt = lists ? x2.t().contiguous() : Tensor();  // [in, T]
  Tensor y;
  if (lists) {
    Tensor yt = Tensor::empty({out, t}, v.dtype(), v.device());
    sparse::condense_gemm(sparse::lists_with(layout, v), xt, yt);
    y = yt.t().contiguous();
    if (bias.defined()) y = kernels::binary(BinaryOp::add, y, bias.data());
    if (o.relu) y = kernels::unary(UnaryOp::relu, y);
  } else {
    y = Tensor::empty({t, out}, v.dtype(), v.device());
    sparse::block_linear(x2, sparse::blocks_with(layout, v), y, bias.defined() ? bias.data() : Tensor(), o.relu);
  }
  const Tensor act = o.relu ? y : Tensor();
  // What backward keeps of x: K lists take x^T, so that their sampled GEMM reads both operands
  // along T, contiguous (dy^T rows and x^T rows); blocks take x, whose rows hold a block's b
  // columns side by side.
  const Tensor saved_x = lists ? xt : x2;
  return record("sparse_linear", {x, values, bias}, y.view(detail::out_shape(x_shape, out)),
                [=](const Tensor& g_in) -> std::vector<Tensor> {
    Tensor gx, gv, gb;
    const Tensor g = pre_activation_grad(g_in.reshape({t, out}).contiguous(), act, need.b, gb);
    const Tensor gt = lists && (need.x || need.w) ? g.t().contiguous() : Tensor();  // [out, T]
    if (need.x) {
      if (lists) {
        Tensor gxt = Tensor::empty({in, t}, g.dtype(), g.device());
        sparse::condense_gemm_tn(sparse::lists_with(layout, v), gt, gxt);
        gx = gxt.t().contiguous().view(x_shape);
      } else {
        gx = Tensor::empty({t, in}, g.dtype(), g.device());
        sparse::block_linear_dx(g, sparse::blocks_with(layout, v), gx);  // dy W: no atomics
        gx = gx.view(x_shape);
      }
    }
    if (need.w) {
      gv = Tensor::empty(layout.values_shape(), g.dtype(), g.device());
      if (lists) {
        sparse::KListIndex dw = sparse::lists_with(layout, gv);
        sparse::sampled_gemm(gt, saved_x, dw, /*a_trans=*/false, /*b_trans=*/true);  // dy^T (x^T)^T at the tiles
      } else {
        sparse::BlockListIndex dw = sparse::blocks_with(layout, gv);
        sparse::sampled_gemm(g, saved_x, dw, /*a_trans=*/true, /*b_trans=*/false);  // dy^T x at the blocks
      }
      if (inside.defined()) gv = kernels::binary(BinaryOp::mul, gv, inside);
      if (o.dense_weight_grad) *o.dense_weight_grad = lists ? kernels::matmul(gt, saved_x.t()) : kernels::matmul(g.t(), saved_x);
    }
    return {gx, gv, gb};
  });
}

}  // namespace pit::ops
