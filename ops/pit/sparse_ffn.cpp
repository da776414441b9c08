// pit::ops::sparse_relu_ffn (ops/pit/pit_ops.h): proj(relu(fc(x))) for two compact weights as one
// node. Where both layers are 64 x 64 blocks on CUDA, the ReLU's derivative is kept as bits
// (sparse::block_linear_relu_bits) and applied by the dx GEMM of proj, which also sums fc's bias
// gradient: the backward reads h only in proj's weight gradient, where sparse_linear's pair also
// read it in a ReLU pass (dh and h in, dpre out). Other layouts and devices compose the two
// sparse_linear ops, which is the same function.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "autograd/node.h"
#include "ops/kernels.h"
#include "ops/pit/gemm.h"
#include "ops/pit/linear_grads.h"
#include "ops/pit/pit_ops.h"

namespace pit::ops {
namespace {

bool blocks_only(const sparse::CompactLayout& l) { return l.is_blocks() && !l.dense_path() && !l.inside.defined(); }

// PIT_RELU_FFN=pair: the two sparse_linear ops, for comparisons.
bool pair_forced() {
  const char* v = std::getenv("PIT_RELU_FFN");
  return v != nullptr && std::string(v) == "pair";
}

}  // namespace

bool sparse_relu_ffn_fuses(const Tensor& x2, const SparseLayer& fc, const SparseLayer& proj) {
  // An empty proj pattern with a non-empty fc takes the pair, whose proj writes its bias alone.
  if (pair_forced() || !blocks_only(fc.layout) || !blocks_only(proj.layout) || x2.dim() != 2 || x2.size(0) == 0)
    return false;
  return sparse::relu_bits_pair_takes(x2, sparse::blocks_with(fc.layout, fc.values.data()),
                                      sparse::blocks_with(proj.layout, proj.values.data()));
}

Variable sparse_relu_ffn(const Variable& x, const SparseLayer& fc, const SparseLayer& proj) {
  detail::check_sparse_linear(x, fc.values, fc.bias, fc.layout);
  const sparse::CompactLayout &l1 = fc.layout, &l2 = proj.layout;
  PIT_CHECK(l2.cols == l1.rows, "sparse_relu_ffn: proj takes ", l2.cols, " inputs but fc gives ", l1.rows,
            " outputs; the layers must chain (proj.cols == fc.rows)");
  const int64_t in = l1.cols, hidden = l1.rows, out = l2.rows;
  const Tensor x2 = x.data().reshape({leading_rows(x.shape()), in}).contiguous();
  const Tensor v1 = fc.values.data(), v2 = proj.values.data();
  if (!sparse_relu_ffn_fuses(x2, fc, proj)) {
    SparseLinearOptions o1, o2;
    o1.relu = true;
    o1.dense_weight_grad = fc.dense_weight_grad;
    o2.dense_weight_grad = proj.dense_weight_grad;
    return sparse_linear(sparse_linear(x, fc.values, fc.bias, l1, o1), proj.values, proj.bias, l2, o2);
  }
  const Variable h_var(Tensor::empty({x2.size(0), hidden}, v1.dtype(), v1.device()));
  detail::check_sparse_linear(h_var, proj.values, proj.bias, l2);
  const int64_t t = x2.size(0);
  Tensor h = h_var.data();
  const Tensor mask = sparse::block_linear_relu_bits(x2, sparse::blocks_with(l1, v1), h,
                                                     fc.bias.defined() ? fc.bias.data() : Tensor());
  Tensor y = Tensor::empty({t, out}, v2.dtype(), v2.device());
  sparse::block_linear(h, sparse::blocks_with(l2, v2), y, proj.bias.defined() ? proj.bias.data() : Tensor());
  const detail::GradNeeds n1(x, fc.values, fc.bias), n2(x, proj.values, proj.bias);  // n2.x unused
  const bool need_x = n1.x, need_v1 = n1.w, need_b1 = n1.b, need_v2 = n2.w, need_b2 = n2.b;
  const Shape x_shape = x.shape();
  const auto dense1 = fc.dense_weight_grad, dense2 = proj.dense_weight_grad;
  return record("sparse_relu_ffn", {x, fc.values, fc.bias, proj.values, proj.bias},
                y.view(detail::out_shape(x_shape, out)), [=](const Tensor& g_in) -> std::vector<Tensor> {
    Tensor g = g_in.reshape({t, out}).contiguous();
    if (reinterpret_cast<uintptr_t>(g.data_ptr()) % 16 != 0) g = g.clone();  // the kernels read 16-byte units
    Tensor gx, gv1, gb1, gv2, gb2;
    if (need_b2) gb2 = kernels::sum(g, {0});
    if (need_v2) {
      gv2 = Tensor::empty(l2.values_shape(), g.dtype(), g.device());
      sparse::BlockListIndex dw = sparse::blocks_with(l2, gv2);
      sparse::sampled_gemm(g, h, dw, /*a_trans=*/true, /*b_trans=*/false);  // dy^T h at the blocks
      if (dense2) *dense2 = kernels::matmul(g.t(), h);
    }
    if (!need_x && !need_v1 && !need_b1) return {gx, gv1, gb1, gv2, gb2};
    // The gradient before the ReLU, from the bits in proj's dx epilogue, with fc's bias gradient.
    Tensor dpre = Tensor::empty({t, hidden}, g.dtype(), g.device());
    const Tensor sums = sparse::block_linear_dx_relu_bits(g, sparse::blocks_with(l2, v2), mask, dpre);
    if (need_b1) gb1 = sums.to(g.dtype());
    if (need_v1) {
      gv1 = Tensor::empty(l1.values_shape(), g.dtype(), g.device());
      sparse::BlockListIndex dw = sparse::blocks_with(l1, gv1);
      sparse::sampled_gemm(dpre, x2, dw, /*a_trans=*/true, /*b_trans=*/false);  // dpre^T x at the blocks
      if (dense1) *dense1 = kernels::matmul(dpre.t(), x2);
    }
    if (need_x) {
      gx = Tensor::empty({t, in}, g.dtype(), g.device());
      sparse::block_linear_dx(dpre, sparse::blocks_with(l1, v1), gx);
      gx = gx.view(x_shape);
    }
    return {gx, gv1, gb1, gv2, gb2};
  });
}

}  // namespace pit::ops
