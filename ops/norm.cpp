// kernels::layernorm, rmsnorm and their backward: checks, the row view and device dispatch; the
// arithmetic is in ops/cpu/norm.cpp and ops/cuda/norm.cu.
//
// x (..., D) is normalised over its last dim as `rows` rows of D. A view whose last dim has unit
// stride and whose leading dims merge into one stride (e.g. a slice along the last dim, which
// makes misaligned rows) is used in place; anything else is copied to contiguous memory first.
// Outputs are contiguous in x's shape; weight / bias / dweight / dbias are (D).
//
// Statistics: mean / rstd are (rows) tensors of f32, or of f64 when x is f64 (so that f64 runs,
// gradcheck in particular, keep full precision end to end).
#include "ops/cpu/norm.h"
#include "ops/kernels.h"
#include "ops/row_view.h"
#if PIT_WITH_CUDA
#include "ops/cuda/norm.h"
#endif

namespace pit::kernels {
namespace {

void check_x(const char* op, const Tensor& x) {
  PIT_CHECK(x.defined(), op, ": the input is undefined");
  PIT_CHECK(is_floating(x.dtype()), op, ": dtype ", dtype_name(x.dtype()),
            " is not supported; supported dtypes: f32, f64, f16, bf16");
  PIT_CHECK(x.dim() >= 1, op, ": the input must have at least one dim (normalised over the last), "
            "got a 0-d tensor");
  PIT_CHECK(x.size(-1) > 0, op, ": the last dim of shape ", shape_str(x.shape()),
            " has size 0: nothing to normalise over");
}

// weight / bias: undefined, or (D) of x's dtype on x's device. Returns a contiguous tensor.
Tensor check_param(const char* op, const char* what, const Tensor& p, const Tensor& x) {
  if (!p.defined()) return p;
  PIT_CHECK(p.dim() == 1 && p.size(0) == x.size(-1), op, ": ", what, " of shape ",
            shape_str(p.shape()), " does not match the last dim of the input of shape ",
            shape_str(x.shape()), " (expected [", x.size(-1), "])");
  PIT_CHECK(p.dtype() == x.dtype(), op, ": ", what, " of dtype ", dtype_name(p.dtype()),
            " and the input of dtype ", dtype_name(x.dtype()), "; convert one with to(dtype) (a Variable: ops::cast, which keeps its gradient)");
  PIT_CHECK(p.device() == x.device(), op, ": ", what, " on ", p.device(), " and the input on ",
            x.device(), "; move one with to(device) (a model: Module::to)");
  return p.contiguous();
}

// The data of an optional tensor (null when undefined).
void* ptr(const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }

NormResult forward(const char* op, const Tensor& x, const Tensor& weight_in, const Tensor& bias_in,
                   double eps, bool rms) {
  check_x(op, x);
  PIT_CHECK(eps >= 0, op, ": eps must be >= 0, got ", eps);
  const Tensor weight = check_param(op, "weight", weight_in, x);
  const Tensor bias = check_param(op, "bias", bias_in, x);
  const RowView r = row_view(x);
  const DType sd = stat_dtype(x.dtype());
  NormResult out;
  out.y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (!rms) out.mean = Tensor::empty({r.rows}, sd, x.device());
  out.rstd = Tensor::empty({r.rows}, sd, x.device());
  if (r.rows == 0) return out;
  const cpu::NormArgs args{x.dtype(), r.rows, r.dim, rms};
  if (x.is_cuda()) {
#if PIT_WITH_CUDA
    cuda::norm_forward(args, r.t.data_ptr(), r.stride, ptr(weight), ptr(bias), eps,
                       out.y.data_ptr(), ptr(out.mean),
                       out.rstd.data_ptr(), current_stream(x.device()));
#endif
  } else {
    cpu::norm_forward(args, r.t.data_ptr(), r.stride, ptr(weight), ptr(bias), eps, out.y.data_ptr(),
                      ptr(out.mean), out.rstd.data_ptr());
  }
  return out;
}

// A saved statistic: (rows) of the stats dtype on x's device.
Tensor check_stat(const char* op, const char* what, const Tensor& s, const Tensor& x, int64_t rows) {
  PIT_CHECK(s.defined(), op, ": the saved ", what, " is undefined");
  PIT_CHECK(s.numel() == rows, op, ": the saved ", what, " has ", s.numel(),
            " elements for an input of ", rows, " rows");
  PIT_CHECK(s.dtype() == stat_dtype(x.dtype()), op, ": the saved ", what, " has dtype ",
            dtype_name(s.dtype()), "; expected ", dtype_name(stat_dtype(x.dtype())));
  PIT_CHECK(s.device() == x.device(), op, ": the saved ", what, " on ", s.device(),
            " and the input on ", x.device());
  return s.contiguous();
}

NormGrads backward(const char* op, const Tensor& dy_in, const Tensor& x, const Tensor& weight_in,
                   const NormResult& saved, bool has_bias, bool rms) {
  check_x(op, x);
  PIT_CHECK(dy_in.defined(), op, ": grad_y is undefined");
  PIT_CHECK(dy_in.shape() == x.shape(), op, ": grad_y of shape ", shape_str(dy_in.shape()),
            " and the input of shape ", shape_str(x.shape()), " differ");
  PIT_CHECK(dy_in.dtype() == x.dtype(), op, ": grad_y of dtype ", dtype_name(dy_in.dtype()),
            " and the input of dtype ", dtype_name(x.dtype()), "; convert one with to(dtype) (a Variable: ops::cast, which keeps its gradient)");
  PIT_CHECK(dy_in.device() == x.device(), op, ": grad_y on ", dy_in.device(), " and the input on ",
            x.device(), "; move one with to(device) (a model: Module::to)");
  const Tensor weight = check_param(op, "weight", weight_in, x);
  const RowView xr = row_view(x), gr = row_view(dy_in);
  const Tensor mean = rms ? Tensor() : check_stat(op, "mean", saved.mean, x, xr.rows);
  const Tensor rstd = check_stat(op, "rstd", saved.rstd, x, xr.rows);
  NormGrads g;
  g.dx = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (weight.defined()) g.dweight = Tensor::empty({xr.dim}, x.dtype(), x.device());
  if (has_bias) g.dbias = Tensor::empty({xr.dim}, x.dtype(), x.device());
  const cpu::NormArgs args{x.dtype(), xr.rows, xr.dim, rms};
  void* dw = ptr(g.dweight);
  void* db = ptr(g.dbias);
  if (x.is_cuda()) {
#if PIT_WITH_CUDA
    cuda::norm_backward(args, gr.t.data_ptr(), gr.stride, xr.t.data_ptr(), xr.stride, ptr(weight),
                        ptr(mean), rstd.data_ptr(), g.dx.data_ptr(), dw, db,
                        current_stream(x.device()));
#endif
  } else {
    if (xr.rows == 0) {  // sums over no rows
      if (g.dweight.defined()) g.dweight.zero_();
      if (g.dbias.defined()) g.dbias.zero_();
      return g;
    }
    cpu::norm_backward(args, gr.t.data_ptr(), gr.stride, xr.t.data_ptr(), xr.stride, ptr(weight),
                       ptr(mean), rstd.data_ptr(), g.dx.data_ptr(), dw, db);
  }
  return g;
}

}  // namespace

NormResult layernorm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  return forward("layernorm", x, weight, bias, eps, false);
}

NormResult rmsnorm(const Tensor& x, const Tensor& weight, double eps) {
  return forward("rmsnorm", x, weight, Tensor(), eps, true);
}

NormGrads layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                             const NormResult& saved, bool has_bias) {
  return backward("layernorm_backward", dy, x, weight, saved, has_bias, false);
}

NormGrads rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                           const NormResult& saved) {
  return backward("rmsnorm_backward", dy, x, weight, saved, false, true);
}

}  // namespace pit::kernels
