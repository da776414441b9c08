// kernels::dropout and dropout_backward: checks and device dispatch; the arithmetic is in
// ops/cpu/dropout.cpp and ops/cuda/dropout.cu. Element i is x's i-th element in row-major
// order (a non-contiguous x is copied first); outputs are contiguous in x's shape.
#include "ops/cpu/dropout.h"
#include "ops/kernels.h"
#if PIT_WITH_CUDA
#include "ops/cuda/dropout.h"
#endif

namespace pit::kernels {
namespace {

void check_floating(const char* op, const Tensor& t, const char* what) {
  PIT_CHECK(t.defined(), op, ": ", what, " is undefined");
  PIT_CHECK(is_floating(t.dtype()), op, ": dtype ", dtype_name(t.dtype()), " of ", what,
            " is not supported; supported dtypes: f32, f64, f16, bf16");
}

cpu::DropoutArgs args_for(const char* op, const Tensor& t, double p) {
  PIT_CHECK(p >= 0.0 && p < 1.0, op, ": p must be in [0, 1), got ", p);
  return cpu::DropoutArgs{t.dtype(), t.numel(), static_cast<float>(p), 1.0 / (1.0 - p)};
}

}  // namespace

DropoutResult dropout(const Tensor& x_in, double p, uint64_t seed, uint64_t offset) {
  check_floating("dropout", x_in, "the input");
  const cpu::DropoutArgs a = args_for("dropout", x_in, p);
  const Tensor x = x_in.contiguous();
  DropoutResult r{Tensor::empty(x.shape(), x.dtype(), x.device()),
                  Tensor::empty(x.shape(), DType::u8, x.device())};
  if (a.n == 0) return r;
  if (x.is_cuda()) {
#if PIT_WITH_CUDA
    cuda::dropout(a, x.data_ptr(), r.y.data_ptr(), r.mask.data<uint8_t>(), seed, offset,
                  current_stream(x.device()));
#endif
  } else {
    cpu::dropout(a, x.data_ptr(), r.y.data_ptr(), r.mask.data<uint8_t>(), seed, offset);
  }
  return r;
}

Tensor dropout_backward(const Tensor& dy_in, const Tensor& mask_in, double p) {
  const char* op = "dropout_backward";
  check_floating(op, dy_in, "grad_y");
  PIT_CHECK(mask_in.defined(), op, ": the mask is undefined");
  PIT_CHECK(mask_in.dtype() == DType::u8 || mask_in.dtype() == DType::boolean, op,
            ": the mask must be u8 (or bool), got ", dtype_name(mask_in.dtype()));
  PIT_CHECK(mask_in.shape() == dy_in.shape(), op, ": grad_y of shape ", shape_str(dy_in.shape()),
            " and the mask of shape ", shape_str(mask_in.shape()), " differ");
  PIT_CHECK(mask_in.device() == dy_in.device(), op, ": grad_y on ", dy_in.device(),
            " and the mask on ", mask_in.device(), "; move one with to(device)");
  const cpu::DropoutArgs a = args_for(op, dy_in, p);
  const Tensor dy = dy_in.contiguous(), mask = mask_in.contiguous();
  Tensor dx = Tensor::empty(dy.shape(), dy.dtype(), dy.device());
  if (a.n == 0) return dx;
  // bool and u8 share one byte of 0 / 1.
  const auto* m = static_cast<const uint8_t*>(mask.data_ptr());
  if (dy.is_cuda()) {
#if PIT_WITH_CUDA
    cuda::dropout_backward(a, dy.data_ptr(), m, dx.data_ptr(), current_stream(dy.device()));
#endif
  } else {
    cpu::dropout_backward(a, dy.data_ptr(), m, dx.data_ptr());
  }
  return dx;
}

}  // namespace pit::kernels
