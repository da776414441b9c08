// pit::ops::pit_linear (ops/pit/pit_ops.h): y = x W^T + b with a row-sparse x (M-gather over a
// row set) or a pruned W (block index over W). Forward saves the index; backward reuses it.
//
// Pruned W: the GEMM family takes the sparse operand on the left, so the product is computed
// transposed, y^T = W x^T: W's b x b blocks are condensed (contiguous, in the order the kernel
// reads them) and every listed block reads b whole rows of x^T, each a contiguous run of T
// tokens: all gathers coalesced. x^T and y^T cost one transpose copy each way. Backward:
// dx^T = W^T dy^T reads the same blocks (block_gemm_tn, transposed lists), and dW is computed
// only at W's blocks: sampled_gemm(dy^T, x) into the compact values, then scattered.
#include "autograd/node.h"
#include "ops/kernels.h"
#include "ops/pit/detect.h"
#include "ops/pit/gemm.h"
#include "ops/pit/linear_grads.h"
#include "ops/pit/pattern.h"
#include "ops/pit/pit_ops.h"

namespace pit::ops {
namespace {

using detail::GradNeeds;
using detail::out_shape;

Variable pruned_linear(const Variable& x, const Variable& weight, const Variable& bias, const PitLinearOptions& o,
                       const Tensor& x2) {
  const int64_t t = x2.size(0), in = weight.size(1), out = weight.size(0);
  const Tensor w = weight.data().contiguous();
  const Tensor mask = o.weight_mask;
  const sparse::BlockListIndex widx =
      sparse::detect_blocks(w, o.block, {.values = true, .transposed = true, .mask = mask});
  const Tensor xt = x2.t().contiguous();  // [in, T]
  Tensor yt = Tensor::empty({out, t}, w.dtype(), w.device());
  sparse::block_gemm(widx, xt, yt);
  Tensor y = yt.t().contiguous();
  if (bias.defined()) y = kernels::binary(BinaryOp::add, y, bias.data());
  const Shape x_shape = x.shape();
  const GradNeeds need(x, weight, bias);
  const bool sparse_grad = o.sparse_grad;
  return record("pit_linear", {x, weight, bias}, y.view(out_shape(x_shape, out)),
                [=](const Tensor& g_in) -> std::vector<Tensor> {
    const Tensor g = g_in.reshape({t, out}).contiguous();
    Tensor gx, gw, gb;
    if (need.x) {
      const Tensor gt = g.t().contiguous();  // [out, T]
      Tensor gxt = Tensor::empty({in, t}, g.dtype(), g.device());
      sparse::block_gemm_tn(widx, gt, gxt);  // (W*M)^T dy^T
      gx = gxt.t().contiguous().view(x_shape);
    }
    if (need.w) {
      if (sparse_grad) {
        sparse::BlockListIndex dw = sparse::with_new_values(widx, g.dtype());
        sparse::sampled_gemm(g, x2, dw, /*a_trans=*/true, /*b_trans=*/false);  // dy^T x at W's blocks
        gw = sparse::apply_pattern(sparse::to_dense(dw), mask);
      } else {
        gw = kernels::matmul(g.t(), x2);
      }
    }
    if (need.b) gb = kernels::sum(g, {0});
    return {gx, gw, gb};
  });
}

Variable row_linear(const Variable& x, const Variable& weight, const Variable& bias, const PitLinearOptions& o,
                    const Tensor& x2) {
  const int64_t t = x2.size(0), in = weight.size(1), out = weight.size(0);
  const Tensor w = weight.data().contiguous();
  const sparse::RowSetIndex ridx = o.rows ? *o.rows : sparse::detect_rows(x2);
  PIT_CHECK(ridx.num_rows == t && ridx.segment_cols == 0 && ridx.num_segments == 1, "pit_linear: the row set ",
            ridx.str(), " must be one segment over the ", t, " rows of x (detect_rows(x) or detect_rows(x, 0, row_mask))");
  // Rows outside the set are structurally zero: y there is the bias (or 0).
  Tensor y = bias.defined() ? bias.data().expand({t, out}).contiguous() : zeros({t, out}, w.dtype(), w.device());
  sparse::gather_gemm(x2, ridx, w, y, {.b_trans = true, .epilogue = {.bias = bias.defined() ? bias.data() : Tensor()}});
  const Shape x_shape = x.shape();
  const GradNeeds need(x, weight, bias);
  const bool sparse_grad = o.sparse_grad;
  return record("pit_linear", {x, weight, bias}, y.view(out_shape(x_shape, out)),
                [=](const Tensor& g_in) -> std::vector<Tensor> {
    const Tensor g = g_in.reshape({t, out}).contiguous();
    Tensor gx, gw, gb;
    if (need.x) {
      if (sparse_grad) {
        gx = Tensor::empty({t, in}, g.dtype(), g.device());
        sparse::gather_gemm(g, ridx, w, gx, {.zero_c = true});  // dy W, SWrite to the same rows
      } else {
        gx = kernels::matmul(g, w);
      }
      gx = gx.view(x_shape);
    }
    if (need.w) {
      gw = Tensor::empty({out, in}, g.dtype(), g.device());
      sparse::gather_weight_grad(x2, g, ridx, gw, {.b_trans = true});  // reduce over the same rows
    }
    if (need.b) gb = kernels::sum(g, {0});
    return {gx, gw, gb};
  });
}

}  // namespace

Variable pit_linear(const Variable& x, const Variable& weight, const Variable& bias, const PitLinearOptions& o) {
  const char* op = "pit_linear";
  PIT_CHECK(x.defined() && weight.defined(), op, ": undefined input");
  PIT_CHECK(weight.dim() == 2, op, ": the weight must be (out_features, in_features), got ", shape_str(weight.shape()));
  PIT_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), op, ": input of shape ", shape_str(x.shape()),
            " does not match a weight of shape ", shape_str(weight.shape()));
  PIT_CHECK(x.dtype() == weight.dtype() && x.device() == weight.device(), op, ": x (", dtype_name(x.dtype()), ", ",
            x.device().str(), ") and W (", dtype_name(weight.dtype()), ", ", weight.device().str(),
            ") must share dtype and device");
  if (bias.defined()) {
    PIT_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0) && bias.dtype() == weight.dtype(), op,
              ": bias must be [", weight.size(0), "] of W's dtype, got ", shape_str(bias.shape()), " ",
              dtype_name(bias.dtype()));
  }
  const Tensor x2 = x.data().reshape({leading_rows(x.shape()), weight.size(1)}).contiguous();
  if (o.weight_mask.defined()) {
    PIT_CHECK(o.weight_mask.shape() == weight.shape(), op, ": weight_mask of shape ", shape_str(o.weight_mask.shape()),
              " must have the weight's shape ", shape_str(weight.shape()));
    PIT_CHECK(!o.rows, op, ": give either rows (row-sparse x) or weight_mask (pruned W), not both");
    return pruned_linear(x, weight, bias, o, x2);
  }
  return row_linear(x, weight, bias, o, x2);
}

}  // namespace pit::ops
