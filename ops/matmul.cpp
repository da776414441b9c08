// kernels::matmul: shapes, broadcasting of batch dims, and folding transposed views into the
// GEMM call; the multiplication itself is OpenBLAS (ops/cpu/gemm) or cuBLAS (ops/cuda/gemm).
#include <algorithm>
#include <optional>

#include "ops/cpu/gemm.h"
#include "ops/kernels.h"
#if PIT_WITH_CUDA
#include "ops/cuda/gemm.h"
#endif

namespace pit::kernels {
namespace {

// How the last two dims of an operand sit in memory: row-major with leading dimension ld, or
// the transpose of a row-major matrix (a transposed view) with leading dimension ld.
struct MatrixLayout {
  bool transposed;
  int64_t ld;
};

std::optional<MatrixLayout> matrix_layout(const Tensor& t) {
  const int64_t rows = t.size(-2), cols = t.size(-1);
  // Strides of size-1 dims are arbitrary: replace them by the contiguous value.
  const int64_t rs = rows == 1 ? std::max<int64_t>(cols, 1) : t.stride(-2);
  const int64_t cs = cols == 1 ? 1 : t.stride(-1);
  if (cs == 1 && rs >= std::max<int64_t>(cols, 1)) return MatrixLayout{false, rs};
  const int64_t rs_t = rows == 1 ? 1 : t.stride(-2);
  const int64_t cs_t = cols == 1 ? std::max<int64_t>(rows, 1) : t.stride(-1);
  if (rs_t == 1 && cs_t >= std::max<int64_t>(rows, 1)) return MatrixLayout{true, cs_t};
  return std::nullopt;
}

// One stride that walks all batch dims of t (dims before the last two), if one exists.
std::optional<int64_t> batch_stride(const Tensor& t) {
  const auto batch = merged_dims(t, 0, t.dim() - 2);
  if (!batch) return std::nullopt;
  return batch->stride;
}

// Makes the operand usable by one strided-batched GEMM (copying only when it must).
Tensor gemm_ready(const Tensor& t, MatrixLayout& layout, int64_t& stride) {
  auto l = matrix_layout(t);
  auto s = batch_stride(t);
  if (l && s) {
    layout = *l;
    stride = *s;
    return t;
  }
  Tensor c = t.contiguous();
  layout = *matrix_layout(c);
  stride = *batch_stride(c);
  return c;
}

}  // namespace

bool is_transposed_view(const Tensor& t) { return t.dim() == 2 && !t.is_contiguous() && t.t().is_contiguous(); }

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  PIT_CHECK(a_in.dim() >= 2 && b_in.dim() >= 2, "matmul needs operands of at least 2 dims, got ",
            shape_str(a_in.shape()), " and ", shape_str(b_in.shape()),
            "; unsqueeze a vector to a 1 x n matrix first");
  PIT_CHECK(a_in.dtype() == b_in.dtype(), "matmul: operands of dtypes ", dtype_name(a_in.dtype()),
            " and ", dtype_name(b_in.dtype()), "; convert one with to(dtype) (a Variable: ops::cast, which keeps its gradient)");
  PIT_CHECK(a_in.device() == b_in.device(), "matmul: operands on ", a_in.device(), " and ",
            b_in.device(), "; move one with to(device) (a model: Module::to)");
  const int64_t m = a_in.size(-2), k = a_in.size(-1), n = b_in.size(-1);
  PIT_CHECK(b_in.size(-2) == k, "matmul: shapes ", shape_str(a_in.shape()), " and ",
            shape_str(b_in.shape()), " do not multiply: ", k, " columns against ", b_in.size(-2),
            " rows");

  // Broadcast the batch dims.
  const Shape a_batch(a_in.shape().begin(), a_in.shape().end() - 2);
  const Shape b_batch(b_in.shape().begin(), b_in.shape().end() - 2);
  const Shape batch_shape = broadcast_shapes(a_batch, b_batch);
  Shape out_shape = batch_shape;
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor out = Tensor::empty(out_shape, a_in.dtype(), a_in.device());
  if (out.numel() == 0) return out;
  if (k == 0) return out.zero_();

  Shape a_full = batch_shape, b_full = batch_shape;
  a_full.insert(a_full.end(), {m, k});
  b_full.insert(b_full.end(), {k, n});
  Tensor a = a_in.expand(a_full), b = b_in.expand(b_full);
  const int64_t batch = shape_numel(batch_shape);

  GemmArgs g;
  g.dtype = a.dtype();
  g.m = m;
  g.n = n;
  g.k = k;
  g.batch = batch;
  // A stack of row-major A matrices times one shared B: one GEMM with batch * m rows (a linear
  // layer over [batch, tokens, features]) instead of a batched one.
  bool folded = false;
  if (batch > 1 && batch_stride(b) == int64_t{0}) {
    const auto la = matrix_layout(a);
    const auto sa = batch_stride(a);
    if (la && !la->transposed && sa && *sa == m * la->ld) {  // rows evenly spaced: a view
      Tensor b2 = b;
      while (b2.dim() > 2) b2 = b2.select(0, 0);  // every batch entry is the same matrix
      MatrixLayout lb{};
      int64_t unused = 0;
      b = gemm_ready(b2, lb, unused);
      a = a.reshape({batch * m, k});
      g.m = batch * m;
      g.batch = 1;
      g.lda = la->ld;
      g.trans_b = lb.transposed;
      g.ldb = lb.ld;
      folded = true;
    }
  }
  if (!folded) {
    MatrixLayout la{}, lb{};
    int64_t sa = 0, sb = 0;
    a = gemm_ready(a, la, sa);
    b = gemm_ready(b, lb, sb);
    g.trans_a = la.transposed;
    g.lda = la.ld;
    g.stride_a = sa;
    g.trans_b = lb.transposed;
    g.ldb = lb.ld;
    g.stride_b = sb;
  }
  g.a = a.data_ptr();
  g.b = b.data_ptr();
  g.c = out.data_ptr();
  g.ldc = n;
  g.stride_c = m * n;

  if (out.device().is_cpu()) {
    cpu::gemm(g);
  } else {
#if PIT_WITH_CUDA
    cuda::gemm(g, current_stream(out.device()));
#else
    PIT_THROW("matmul on ", out.device(), ": pit was built without CUDA");
#endif
  }
  return out;
}

}  // namespace pit::kernels
