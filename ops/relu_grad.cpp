// pit::kernels::relu_backward_from_output: a ReLU's backward read from its output, with the bias
// gradient of the linear layer before it; one fused pass on CUDA (ops/cuda/relu_grad.cu), the
// ReLU backward then a column sum elsewhere.
#include "ops/kernels.h"
#if PIT_WITH_CUDA
#include "ops/cuda/relu_grad.h"
#endif

namespace pit::kernels {

Tensor relu_backward_from_output(const Tensor& grad_y, const Tensor& y, Tensor* bias_grad) {
  const char* what = "kernels::relu_backward_from_output";
  PIT_CHECK(grad_y.defined() && y.defined(), what, ": undefined input");
  PIT_CHECK(grad_y.shape() == y.shape(), what, ": grad_y ", shape_str(grad_y.shape()), " and y ",
            shape_str(y.shape()), " must have one shape (y the ReLU's output, grad_y its gradient)");
  PIT_CHECK(grad_y.dtype() == y.dtype() && grad_y.device() == y.device(), what, ": grad_y (",
            dtype_name(grad_y.dtype()), ", ", grad_y.device().str(), ") and y (", dtype_name(y.dtype()), ", ",
            y.device().str(), ") must share dtype and device");
  PIT_CHECK(bias_grad == nullptr || y.dim() >= 1, what, ": a bias gradient needs y of at least one dim");
#if PIT_WITH_CUDA
  if (y.device().is_cuda() && y.dim() >= 1 && grad_y.is_contiguous() && y.is_contiguous()) {
    const int64_t n = y.size(-1), rows = n > 0 ? y.numel() / n : 0;
    Tensor grad_x = Tensor::empty(y.shape(), y.dtype(), y.device());
    Tensor b = bias_grad != nullptr ? Tensor::empty({n}, y.dtype(), y.device()) : Tensor();
    if (cuda::relu_backward_from_output(y.dtype(), rows, n, grad_y.data_ptr(), y.data_ptr(), grad_x.data_ptr(),
                                        b.defined() ? b.data_ptr() : nullptr, current_stream(y.device()))) {
      if (bias_grad != nullptr) *bias_grad = b;
      return grad_x;
    }
  }
#endif
  // y > 0 exactly where the ReLU's input was: its derivative, read from the output.
  Tensor grad_x = unary_backward(UnaryOp::relu, grad_y, y, y);
  if (bias_grad != nullptr) *bias_grad = sum(grad_x.reshape({leading_rows(y.shape()), y.size(-1)}), {0});
  return grad_x;
}

}  // namespace pit::kernels
