// pit::ops::pit_matmul (ops/pit/pit_ops.h): forward detects A's micro-tiles (or rows), runs the
// PIT GEMM chosen by the options or the planner, and keeps the index in the backward closure;
// backward reads the same index (condense_gemm_tn / gather_weight_grad for dB, sampled_gemm or
// the row-set GEMM for dA) and never detects.
#include "autograd/node.h"
#include "ops/kernels.h"
#include "ops/pit/detect.h"
#include "ops/pit/gemm.h"
#include "ops/pit/pattern.h"
#include "ops/pit/pit_ops.h"

namespace pit::ops {

using sparse::Kernel;

Variable pit_matmul(const Variable& a, const Variable& b, const PitMatmulOptions& o) {
  const char* op = "pit_matmul";
  PIT_CHECK(a.defined() && b.defined(), op, ": undefined operand");
  PIT_CHECK(b.dim() == 2, op, ": B must be 2-D [K, N], got ", shape_str(b.shape()));
  PIT_CHECK(a.dim() >= 1 && a.size(-1) == b.size(0), op, ": A of shape ", shape_str(a.shape()),
            " does not match B of shape ", shape_str(b.shape()), " (A's last dim must be K = ", b.size(0), ")");
  PIT_CHECK(a.dtype() == b.dtype(), op, ": A is ", dtype_name(a.dtype()), " but B is ", dtype_name(b.dtype()));
  PIT_CHECK(a.device() == b.device(), op, ": A on ", a.device().str(), " but B on ", b.device().str());
  PIT_CHECK(!o.mask.defined() || o.mask.shape() == a.shape(), op, ": mask of shape ", shape_str(o.mask.shape()),
            " must have A's shape ", shape_str(a.shape()));
  const int64_t k = b.size(0), n = b.size(1), m = k > 0 ? a.numel() / k : 0;
  const Tensor a2 = a.data().reshape({m, k}).contiguous();
  const Tensor mask2 = o.mask.defined() ? o.mask.reshape({m, k}) : Tensor();

  Kernel kind = Kernel::k_lists;
  int64_t tile = o.tile;
  if (o.kernel) {
    kind = *o.kernel;
  } else if (a2.is_cuda()) {
    const sparse::Plan plan = sparse::plan_matmul(a2, n, {.density = o.density, .site = o.site}, mask2);
    kind = plan.kernel;
    tile = plan.tile.rows;
  }
  // B as given for the dense fall-back (cuBLAS folds a transposed view: no copy of a weight's
  // transpose every step); contiguous for the PIT kernels.
  const Tensor bt = kind == Kernel::dense ? b.data() : b.data().contiguous();
  // The operand PIT computes with: A where the pattern keeps it (only differs from A with a mask).
  const Tensor a_eff = mask2.defined() ? sparse::apply_pattern(a2, mask2) : a2;

  sparse::KListIndex kidx;
  sparse::BlockListIndex bidx;
  sparse::RowSetIndex ridx;
  // The dense fall-back makes its own output; the PIT kernels write into C.
  Tensor c = kind == Kernel::dense ? kernels::matmul(a_eff, bt) : Tensor::empty({m, n}, a2.dtype(), a2.device());
  switch (kind) {
    case Kernel::dense: break;
    case Kernel::k_lists:
      kidx = sparse::detect_k_lists(a2, tile, {.values = true, .transposed = false, .mask = mask2});
      sparse::condense_gemm(kidx, bt, c);
      break;
    case Kernel::blocks:
      bidx = sparse::detect_blocks(a2, tile, {.values = true, .transposed = false, .mask = mask2});
      sparse::block_gemm(bidx, bt, c);
      break;
    case Kernel::rows:
      ridx = sparse::detect_rows(a2, 0, mask2);
      sparse::gather_gemm(a_eff, ridx, bt, c, {.zero_c = true});
      break;
  }
  Shape out_shape = a.shape();
  out_shape.back() = n;
  const bool grad = needs_grad({a, b});
  const bool need_a = grad && a.requires_grad(), need_b = grad && b.requires_grad();
  const Shape a_shape = a.shape();
  const bool sparse_grad = o.sparse_grad;
  return record("pit_matmul", {a, b}, c.view(out_shape), [=](const Tensor& g_in) -> std::vector<Tensor> {
    const Tensor g = g_in.reshape({m, n}).contiguous();
    Tensor ga, gb;
    if (need_b) {
      gb = kind == Kernel::dense ? kernels::matmul(a_eff.t(), g) : Tensor::empty({k, n}, g.dtype(), g.device());
      switch (kind) {
        case Kernel::dense: break;
        case Kernel::k_lists: sparse::condense_gemm_tn(kidx, g, gb); break;
        case Kernel::blocks: sparse::block_gemm_tn(bidx, g, gb); break;
        case Kernel::rows: sparse::gather_weight_grad(a_eff, g, ridx, gb, {}); break;
      }
    }
    if (need_a) {
      if (!sparse_grad || kind == Kernel::dense) {
        ga = kernels::matmul(g, bt.t());
      } else if (kind == Kernel::k_lists) {
        sparse::KListIndex out = sparse::with_new_values(kidx, g.dtype());
        sparse::sampled_gemm(g, bt, out, false, true);  // (G B^T) at A's micro-tiles
        ga = sparse::to_dense(out);
      } else if (kind == Kernel::blocks) {
        sparse::BlockListIndex out = sparse::with_new_values(bidx, g.dtype());
        sparse::sampled_gemm(g, bt, out, false, true);
        ga = sparse::to_dense(out);
      } else {
        ga = Tensor::empty({m, k}, g.dtype(), g.device());
        sparse::gather_gemm(g, ridx, bt, ga, {.b_trans = true, .zero_c = true});  // SWrite to A's rows
      }
      if (sparse_grad) ga = sparse::apply_pattern(ga, mask2.defined() ? mask2 : a2);
      ga = ga.view(a_shape);
    }
    return {ga, gb};
  });
}

}  // namespace pit::ops
