// kernels::softmax, log_softmax and their backward: checks and the [outer, mid, inner] view;
// the arithmetic is in ops/cpu/softmax.cpp and ops/cuda/softmax.cu.
//
// The dims before `dim` merge into outer and the dims after it into inner, with the tensor's own
// strides, so neither a transposed nor a sliced input is copied when its strides allow the
// merge (otherwise it is made contiguous first). The fast path is dim last with unit stride
// (inner == 1): rows. Any other dim is normalised in place by the column kernels, which walk
// mid with a stride and keep neighbouring threads on neighbouring columns; on CUDA, when there
// are too few columns to fill the GPU, the dim is moved last (copies) and the rows kernels run.
// Outputs are contiguous in the input's shape.
#include <vector>

#include "ops/cpu/softmax.h"
#include "ops/kernels.h"
#include "ops/view3.h"
#if PIT_WITH_CUDA
#include "ops/cuda/softmax.h"
#endif

namespace pit::kernels {
namespace {

// t (numel > 0, dim already wrapped) as [outer, t.size(dim), inner]; `holder` keeps a copy alive.
View3 softmax_view(const Tensor& t, int64_t dim, Tensor& holder) {
  holder = t;
  if (auto v = view3(holder, dim, dim + 1)) return *v;
  holder = t.contiguous();
  const auto v = view3(holder, dim, dim + 1);
  PIT_CHECK(v.has_value(), "internal error: a contiguous tensor of shape ", shape_str(holder.shape()),
            " did not merge into [outer, mid, inner]");
  return *v;
}

void check_floating(const char* op, const Tensor& t, const char* what) {
  PIT_CHECK(t.defined(), op, ": ", what, " is undefined");
  PIT_CHECK(is_floating(t.dtype()), op, ": dtype ", dtype_name(t.dtype()), " of ", what,
            " is not supported; supported dtypes: f32, f64, f16, bf16");
}

// On CUDA the column kernels run one thread per (outer, inner) column: with fewer columns than
// this the GPU would sit mostly idle (an H100 keeps ~270k threads resident), so the dim is moved
// last with one copy each way and the row kernels run instead.
constexpr int64_t kMinCudaColumns = int64_t{1} << 17;

// Whether the CUDA kernels would walk this view by columns, and too few of them.
bool few_cuda_columns(const Tensor& t, const View3& v) {
  const bool rows = v.sizes[2] == 1 && (v.strides[1] == 1 || v.sizes[1] == 1);
  return t.is_cuda() && !rows && v.sizes[0] * v.sizes[2] < kMinCudaColumns;
}

// t with dim d moved last (by a transpose) and made contiguous.
Tensor dim_last(const Tensor& t, int64_t d) { return t.transpose(d, -1).contiguous(); }

// A 0-d tensor is normalised as one row of one element.
Tensor as_rows(const Tensor& t) { return t.dim() == 0 ? t.reshape({1}) : t; }

Tensor forward(const char* op, const Tensor& x_in, int64_t dim, bool log) {
  check_floating(op, x_in, "the input");
  const Tensor x = as_rows(x_in);
  const int64_t d = x.wrap_dim(dim);
  Tensor y;
  if (x.numel() == 0) {
    y = Tensor::empty(x.shape(), x.dtype(), x.device());
  } else {
    Tensor holder;
    const View3 v = softmax_view(x, d, holder);
    if (few_cuda_columns(x, v)) {
      y = forward(op, dim_last(x, d), -1, log).transpose(d, -1).contiguous();
    } else {
      y = Tensor::empty(x.shape(), x.dtype(), x.device());
      if (x.is_cuda()) {
#if PIT_WITH_CUDA
        cuda::softmax(v, y.data_ptr(), log, current_stream(x.device()));
#endif
      } else {
        cpu::softmax(v, y.data_ptr(), log);
      }
    }
  }
  return x_in.dim() == 0 ? y.reshape({}) : y;
}

Tensor backward(const char* op, const Tensor& gy_in, const Tensor& y_in, int64_t dim, bool log) {
  check_floating(op, gy_in, "grad_y");
  check_floating(op, y_in, "y");
  PIT_CHECK(gy_in.shape() == y_in.shape(), op, ": grad_y of shape ", shape_str(gy_in.shape()),
            " and y of shape ", shape_str(y_in.shape()), " differ");
  PIT_CHECK(gy_in.dtype() == y_in.dtype(), op, ": grad_y of dtype ", dtype_name(gy_in.dtype()),
            " and y of dtype ", dtype_name(y_in.dtype()), "; convert one with to(dtype) (a Variable: ops::cast, which keeps its gradient)");
  PIT_CHECK(gy_in.device() == y_in.device(), op, ": grad_y on ", gy_in.device(), " and y on ",
            y_in.device(), "; move one with to(device) (a model: Module::to)");
  const Tensor gy = as_rows(gy_in), y = as_rows(y_in);
  const int64_t d = y.wrap_dim(dim);
  Tensor gx;
  if (y.numel() == 0) {
    gx = Tensor::empty(y.shape(), y.dtype(), y.device());
  } else {
    Tensor gy_holder, y_holder;
    const View3 gv = softmax_view(gy, d, gy_holder), yv = softmax_view(y, d, y_holder);
    if (few_cuda_columns(gy, gv) || few_cuda_columns(y, yv)) {
      gx = backward(op, dim_last(gy, d), dim_last(y, d), -1, log).transpose(d, -1).contiguous();
    } else {
      gx = Tensor::empty(y.shape(), y.dtype(), y.device());
      if (y.is_cuda()) {
#if PIT_WITH_CUDA
        cuda::softmax_backward(gv, yv, gx.data_ptr(), log, current_stream(y.device()));
#endif
      } else {
        cpu::softmax_backward(gv, yv, gx.data_ptr(), log);
      }
    }
  }
  return y_in.dim() == 0 ? gx.reshape({}) : gx;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return forward("softmax", x, dim, false); }

Tensor log_softmax(const Tensor& x, int64_t dim) { return forward("log_softmax", x, dim, true); }

Tensor softmax_backward(const Tensor& grad_y, const Tensor& y, int64_t dim) {
  return backward("softmax_backward", grad_y, y, dim, false);
}

Tensor log_softmax_backward(const Tensor& grad_y, const Tensor& y, int64_t dim) {
  return backward("log_softmax_backward", grad_y, y, dim, true);
}

}  // namespace pit::kernels
