// pit::ops::pit_matmul (ops/pit/pit_ops.h): forward detects A's micro-tiles (or rows), runs the
// PIT GEMM chosen by the options or the planner, and keeps the index in the backward closure;
// backward reads the same index and never detects: K lists run both gradients over A's active
// columns (ops/pit/column_set.h), blocks run block_gemm_tn and the sampled GEMM, row sets
// gather_weight_grad and the row-set GEMM.
#include <cstdlib>
#include <string>

#include "autograd/node.h"
#include "ops/kernels.h"
#include "ops/pit/column_set.h"
#include "ops/pit/detect.h"
#include "ops/pit/gemm.h"
#include "ops/pit/pattern.h"
#include "ops/pit/pit_ops.h"

namespace pit::ops {

using sparse::Kernel;

namespace {

// The engine of the two column-set GEMMs: the ping-pong wgmma engine where it applies (f16/bf16,
// rows 16-byte aligned: M and N multiples of 8, and G and B starting on 16 bytes), else the
// M-gather's own choice. On an H200, at
// pit-bench sparse's 99% skewed zeros, forward + backward took 1.403 ms with it, 1.475 with the
// persistent engine and 1.627 with the M-gather's choice (the two GEMMs 0.23 ms each on it); on an
// H100, 1.465 against 1.912 on the TMA engine and 1.885 on its ping-pong form (one TMA per gathered
// row of B: dB 336 us and dh 630 us against 232 and 242).
// PIT_COLUMN_SET_ENGINE=auto|persistent|pingpong|tma|tma_pingpong picks one, for measuring.
sparse::Engine column_set_engine(const Tensor& g, const Tensor& b) {
  const bool half = g.dtype() == DType::bf16 || g.dtype() == DType::f16;
  const auto aligned16 = [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; };
  if (!half || g.size(0) % 8 != 0 || g.size(1) % 8 != 0 || !aligned16(g) || !aligned16(b))
    return sparse::Engine::automatic;
  const char* env = std::getenv("PIT_COLUMN_SET_ENGINE");
  const std::string name = env != nullptr ? env : "pingpong";
  if (name == "auto") return sparse::Engine::automatic;
  if (name == "persistent") return sparse::Engine::wgmma_persistent;
  if (name == "tma") return sparse::Engine::wgmma_tma;
  if (name == "tma_pingpong") return sparse::Engine::wgmma_tma_pingpong;
  PIT_CHECK(name == "pingpong", "PIT_COLUMN_SET_ENGINE=", name, ": use auto, persistent, pingpong, tma or tma_pingpong");
  return sparse::Engine::wgmma_pingpong;
}

struct KListGradWants {
  bool a, b, sparse_grad, b_transposed;
};

// The gradients of C = A B for A given by K lists (kidx, with values), B [K, N] contiguous (bt)
// and G = dC [M, N], over A's active columns (ops/pit/column_set.h): {dA as [M, K], dB as [K, N]}.
// dB is a view of a contiguous [N, K] when B was a transposed view; dA with sparse_grad is kept
// at A's non-zeros (or the mask's), else dense.
std::vector<Tensor> k_list_grads(const sparse::KListIndex& kidx, const Tensor& bt, const Tensor& g, const Tensor& mask,
                                 const KListGradWants& want) {
  const int64_t m = g.size(0), n = g.size(1), k = bt.size(0);
  const bool sampled_a = want.a && want.sparse_grad;
  Tensor ga, gb;
  sparse::ColumnSet cs;
  Tensor at;  // A^T's active rows, compact [K, M]
  const sparse::Engine engine = column_set_engine(g, bt);
  if (want.b || sampled_a) cs = sparse::column_set(kidx);
  if (want.b || (sampled_a && !mask.defined())) at = sparse::set_columns_t(kidx, cs);  // dA's mask, unless one is given
  if (want.b) {
    if (want.b_transposed) {
      Tensor rows = Tensor::empty({k, n}, g.dtype(), g.device());
      sparse::gather_gemm(at, cs.set, g, rows, {.a_gathered = false, .c_scattered = false, .engine = engine});
      gb = sparse::rows_to_columns(rows, cs).t();
    } else {
      gb = Tensor::empty({k, n}, g.dtype(), g.device());
      sparse::gather_gemm(at, cs.set, g, gb, {.a_gathered = false, .c_scattered = true, .zero_c = true, .engine = engine});
    }
  }
  if (want.a && !want.sparse_grad) ga = kernels::matmul(g, bt.t());
  if (sampled_a) {
    Tensor rows = Tensor::empty({k, m}, g.dtype(), g.device());  // (B G^T) at the active rows of B
    sparse::gather_gemm(bt, cs.set, g, rows, {.a_gathered = true, .c_scattered = false, .b_trans = true, .engine = engine});
    if (mask.defined()) ga = sparse::apply_pattern(sparse::rows_to_columns(rows, cs), mask);
    else ga = sparse::rows_to_columns(rows, cs, at);  // kept where A is non-zero
  }
  return {ga, gb};
}

}  // namespace

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
  const int64_t k = b.size(0), n = b.size(1), m = leading_rows(a.shape());
  const Tensor a2 = a.data().reshape({m, k}).contiguous();
  const Tensor mask2 = o.mask.defined() ? o.mask.reshape({m, k}) : Tensor();

  Kernel kind = Kernel::k_lists;
  int64_t tile = o.tile;
  if (o.kernel) {
    kind = *o.kernel;
  } else if (!sparse::pit_kernels_refuse(a2).empty()) {
    kind = Kernel::dense;  // too large for int32 indices, or a dtype the PIT kernels lack here
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
  // B = W^T (a Linear's weight): dB is computed in W's layout and handed back as a view.
  const bool b_transposed = kernels::is_transposed_view(b.data());
  return record("pit_matmul", {a, b}, c.view(out_shape), [=](const Tensor& g_in) -> std::vector<Tensor> {
    const Tensor g = g_in.reshape({m, n}).contiguous();
    if (kind == Kernel::k_lists) {
      std::vector<Tensor> grads = k_list_grads(kidx, bt, g, mask2, {need_a, need_b, sparse_grad, b_transposed});
      if (grads[0].defined()) grads[0] = grads[0].view(a_shape);
      return grads;
    }
    Tensor ga, gb;
    if (need_b) {
      if (kind == Kernel::dense) {
        gb = b_transposed ? kernels::matmul(g.t(), a_eff).t() : kernels::matmul(a_eff.t(), g);
      } else {
        gb = Tensor::empty({k, n}, g.dtype(), g.device());
        if (kind == Kernel::blocks) sparse::block_gemm_tn(bidx, g, gb);
        else sparse::gather_weight_grad(a_eff, g, ridx, gb, {});
      }
    }
    if (need_a) {
      if (!sparse_grad || kind == Kernel::dense) {
        ga = kernels::matmul(g, bt.t());
      } else if (kind == Kernel::blocks) {
        sparse::BlockListIndex out = sparse::with_new_values(bidx, g.dtype());
        sparse::sampled_gemm(g, bt, out, false, true);  // (G B^T) at A's micro-tiles
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
