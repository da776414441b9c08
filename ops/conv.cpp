// kernels::conv2d, max_pool2d, avg_pool2d and their backward: validation, output shapes and the
// CPU/CUDA dispatch. The arithmetic is in ops/cpu/conv.cpp (im2col + OpenBLAS, pooling loops)
// and ops/cuda/conv.cpp (cuDNN) + ops/cuda/pool.cu (pooling kernels).
//
// Shapes (NCHW): conv2d x (N, Cin, H, W), weight (Cout, Cin, kh, kw), bias (Cout) or undefined;
// y (N, Cout, Ho, Wo) with Ho = (H + 2 pad_h - dilation_h (kh - 1) - 1) / stride_h + 1, likewise
// Wo. Pooling: Ho = (H + 2 pad_h - kernel_h) / stride_h + 1 (floor: no ceil mode), padding at
// most half the kernel (so every window holds an input element).
//
// Dtypes: CPU f32 and f64 natively; f16/bf16 convolutions run in f32 (operands widened, the result
// rounded once), f16/bf16 pooling natively with f64 math. CUDA: f32, f64, f16, bf16 (see
// ops/cuda/conv.h for cuDNN's math modes). Operands are made contiguous; outputs are contiguous.
// dbias is kernels::sum(dy, {0, 2, 3}).
#include <cstdint>

#include "ops/cpu/conv.h"
#include "ops/kernels.h"
#if PIT_WITH_CUDA
#include "ops/cuda/conv.h"
#endif

namespace pit::kernels {

// Internal (declared again in ops/conv_ops.cpp): conv2d_backward computing only the requested
// gradients; a gradient not requested is returned undefined.
Conv2dGrads conv2d_backward_select(const Tensor& dy, const Tensor& x, const Tensor& weight,
                                   bool has_bias, const Conv2dParams& p, bool need_dx,
                                   bool need_dweight);

namespace {

bool is_reduced(DType d) { return d == DType::f16 || d == DType::bf16; }

void check_floating(const char* op, const Tensor& t, const char* what) {
  PIT_CHECK(t.defined(), op, ": ", what, " is undefined");
  PIT_CHECK(is_floating(t.dtype()), op, ": ", what, " has dtype ", dtype_name(t.dtype()),
            ", which is not supported; supported dtypes: f32, f64, f16, bf16");
}

void check_alike(const char* op, const Tensor& a, const char* a_name, const Tensor& b,
                 const char* b_name) {
  PIT_CHECK(a.dtype() == b.dtype(), op, ": ", a_name, " has dtype ", dtype_name(a.dtype()), " but ",
            b_name, " has dtype ", dtype_name(b.dtype()), "; convert one with to(dtype) (a Variable: ops::cast, which keeps its gradient)");
  PIT_CHECK(a.device() == b.device(), op, ": ", a_name, " is on ", a.device(), " but ", b_name,
            " is on ", b.device(), "; move one with to(device) (a model: Module::to)");
}

void check_nchw(const char* op, const Shape& shape, const char* what) {
  PIT_CHECK(shape.size() == 4, op, ": ", what, " must be 4-D (N, C, H, W), got shape ",
            shape_str(shape), shape.size() == 3 ? "; unsqueeze(0) a single image to a batch of one" : "");
}

cpu::ConvGeometry conv_geometry(const char* op, const Tensor& x, const Tensor& w,
                                const Conv2dParams& p) {
  check_floating(op, x, "the input");
  check_floating(op, w, "the weight");
  check_nchw(op, x.shape(), "the input");
  PIT_CHECK(w.dim() == 4, op, ": the weight must be 4-D (out_channels, in_channels, kh, kw), got shape ",
            shape_str(w.shape()));
  check_alike(op, x, "the input", w, "the weight");
  PIT_CHECK(x.size(1) == w.size(1), op, ": the input of shape ", shape_str(x.shape()), " has ",
            x.size(1), " channels but the weight of shape ", shape_str(w.shape()), " expects ",
            w.size(1), " input channels (weight is (out_channels, in_channels, kh, kw); groups are "
            "not supported)");
  PIT_CHECK(w.size(2) >= 1 && w.size(3) >= 1, op, ": the kernel of a weight of shape ",
            shape_str(w.shape()), " is empty");
  PIT_CHECK(p.stride_h >= 1 && p.stride_w >= 1, op, ": stride must be positive, got (", p.stride_h,
            ", ", p.stride_w, ")");
  PIT_CHECK(p.dilation_h >= 1 && p.dilation_w >= 1, op, ": dilation must be positive, got (",
            p.dilation_h, ", ", p.dilation_w, ")");
  PIT_CHECK(p.pad_h >= 0 && p.pad_w >= 0, op, ": padding must be non-negative, got (", p.pad_h, ", ",
            p.pad_w, ")");
  cpu::ConvGeometry g;
  g.n = x.size(0);
  g.c_in = x.size(1);
  g.h = x.size(2);
  g.w = x.size(3);
  g.c_out = w.size(0);
  g.kh = w.size(2);
  g.kw = w.size(3);
  g.stride_h = p.stride_h;
  g.stride_w = p.stride_w;
  g.pad_h = p.pad_h;
  g.pad_w = p.pad_w;
  g.dilation_h = p.dilation_h;
  g.dilation_w = p.dilation_w;
  const int64_t eff_h = p.dilation_h * (g.kh - 1) + 1, eff_w = p.dilation_w * (g.kw - 1) + 1;
  const int64_t padded_h = g.h + 2 * p.pad_h, padded_w = g.w + 2 * p.pad_w;
  PIT_CHECK(eff_h <= padded_h && eff_w <= padded_w, op, ": the kernel (", g.kh, " x ", g.kw,
            ", dilation (", p.dilation_h, ", ", p.dilation_w, "): spans ", eff_h, " x ", eff_w,
            ") is larger than the padded input (", padded_h, " x ", padded_w, " from an input of shape ",
            shape_str(x.shape()), " with padding (", p.pad_h, ", ", p.pad_w, "))");
  g.h_out = (padded_h - eff_h) / p.stride_h + 1;
  g.w_out = (padded_w - eff_w) / p.stride_w + 1;
  return g;
}

Shape conv_output_shape(const cpu::ConvGeometry& g) { return {g.n, g.c_out, g.h_out, g.w_out}; }

cpu::PoolGeometry pool_geometry(const char* op, const Shape& x_shape, const Pool2dParams& p) {
  check_nchw(op, x_shape, "the input");
  PIT_CHECK(p.kernel_h >= 1 && p.kernel_w >= 1, op, ": kernel size must be positive, got (",
            p.kernel_h, ", ", p.kernel_w, ")");
  PIT_CHECK(p.stride_h >= 1 && p.stride_w >= 1, op, ": stride must be positive, got (", p.stride_h,
            ", ", p.stride_w, ")");
  PIT_CHECK(p.pad_h >= 0 && p.pad_w >= 0, op, ": padding must be non-negative, got (", p.pad_h,
            ", ", p.pad_w, ")");
  PIT_CHECK(2 * p.pad_h <= p.kernel_h && 2 * p.pad_w <= p.kernel_w, op, ": padding (", p.pad_h,
            ", ", p.pad_w, ") must be at most half the kernel (", p.kernel_h, ", ", p.kernel_w,
            "), so that every window holds an input element");
  const int64_t h = x_shape[2], w = x_shape[3];
  PIT_CHECK(h >= 1 && w >= 1, op, ": the input of shape ", shape_str(x_shape),
            " has an empty spatial dim");
  PIT_CHECK(p.kernel_h <= h + 2 * p.pad_h && p.kernel_w <= w + 2 * p.pad_w, op, ": the kernel (",
            p.kernel_h, " x ", p.kernel_w, ") is larger than the padded input (", h + 2 * p.pad_h,
            " x ", w + 2 * p.pad_w, " from an input of shape ", shape_str(x_shape), ")");
  cpu::PoolGeometry g;
  g.planes = x_shape[0] * x_shape[1];
  g.h = h;
  g.w = w;
  g.kernel_h = p.kernel_h;
  g.kernel_w = p.kernel_w;
  g.stride_h = p.stride_h;
  g.stride_w = p.stride_w;
  g.pad_h = p.pad_h;
  g.pad_w = p.pad_w;
  g.h_out = (h + 2 * p.pad_h - p.kernel_h) / p.stride_h + 1;
  g.w_out = (w + 2 * p.pad_w - p.kernel_w) / p.stride_w + 1;
  return g;
}

// Operands for cuDNN: contiguous and 16-byte aligned (its vectorized and tensor-core kernels
// assume aligned rows; a contiguous view at an odd offset is copied).
[[maybe_unused]] Tensor cudnn_ready(const Tensor& t) {
  Tensor c = t.contiguous();
  if (reinterpret_cast<uintptr_t>(c.data_ptr()) % 16 != 0) c = c.clone();
  return c;
}

[[noreturn, maybe_unused]] void no_cuda(const char* op, Device d) {
  PIT_THROW(op, " on ", d, ": pit was built without CUDA");
}

}  // namespace

// ---- convolution ------------------------------------------------------------------------------

Tensor conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, const Conv2dParams& p) {
  const cpu::ConvGeometry g = conv_geometry("conv2d", x_in, w_in, p);
  if (b_in.defined()) {
    check_floating("conv2d", b_in, "the bias");
    check_alike("conv2d", x_in, "the input", b_in, "the bias");
    PIT_CHECK(b_in.dim() == 1 && b_in.size(0) == g.c_out, "conv2d: the bias must be (",
              g.c_out, ") for a weight of shape ", shape_str(w_in.shape()), ", got shape ",
              shape_str(b_in.shape()));
  }
  const DType dtype = x_in.dtype();
  const Device device = x_in.device();
  Tensor y = Tensor::empty(conv_output_shape(g), dtype, device);
  if (y.numel() == 0) return y;
  if (x_in.numel() == 0) {  // no input channels (or empty spatial dims inside the padding)
    if (b_in.defined()) return y.copy_(b_in.reshape({1, g.c_out, 1, 1}));
    return y.zero_();
  }
  if (device.is_cpu() && is_reduced(dtype)) {  // f32 math, one rounding
    const Tensor b32 = b_in.defined() ? b_in.to(DType::f32) : Tensor();
    return conv2d(x_in.to(DType::f32), w_in.to(DType::f32), b32, p).to(dtype);
  }
  const Tensor x = x_in.contiguous(), w = w_in.contiguous();
  const Tensor b = b_in.defined() ? b_in.contiguous() : Tensor();
  const void* bias = b.defined() ? b.data_ptr() : nullptr;
  if (device.is_cuda()) {
#if PIT_WITH_CUDA
    const Tensor xa = cudnn_ready(x), wa = cudnn_ready(w);
    cuda::conv2d(g, dtype, xa.data_ptr(), wa.data_ptr(), bias, y.data_ptr(), current_stream(device));
#else
    no_cuda("conv2d", device);
#endif
  } else {
    cpu::conv2d(g, dtype, x.data_ptr(), w.data_ptr(), bias, y.data_ptr());
  }
  return y;
}

Conv2dGrads conv2d_backward_select(const Tensor& dy_in, const Tensor& x_in, const Tensor& w_in,
                                   bool has_bias, const Conv2dParams& p, bool need_dx,
                                   bool need_dweight) {
  const char* op = "conv2d_backward";
  const cpu::ConvGeometry g = conv_geometry(op, x_in, w_in, p);
  check_floating(op, dy_in, "grad_y");
  check_alike(op, x_in, "the input", dy_in, "grad_y");
  PIT_CHECK(dy_in.shape() == conv_output_shape(g), op, ": grad_y has shape ",
            shape_str(dy_in.shape()), " but the convolution's output has shape ",
            shape_str(conv_output_shape(g)));
  const DType dtype = x_in.dtype();
  const Device device = x_in.device();
  Conv2dGrads grads;
  if (has_bias) grads.dbias = sum(dy_in, {0, 2, 3});
  if (!need_dx && !need_dweight) return grads;
  if (device.is_cpu() && is_reduced(dtype)) {  // f32 math, one rounding
    Conv2dGrads g32 = conv2d_backward_select(dy_in.to(DType::f32), x_in.to(DType::f32),
                                             w_in.to(DType::f32), false, p, need_dx, need_dweight);
    if (need_dx) grads.dx = g32.dx.to(dtype);
    if (need_dweight) grads.dweight = g32.dweight.to(dtype);
    return grads;
  }
  Tensor dx = need_dx ? Tensor::empty(x_in.shape(), dtype, device) : Tensor();
  Tensor dw = need_dweight ? Tensor::empty(w_in.shape(), dtype, device) : Tensor();
  if (dy_in.numel() == 0 || x_in.numel() == 0) {  // nothing flows: zero gradients
    if (dx.defined()) dx.zero_();
    if (dw.defined()) dw.zero_();
  } else {
    const Tensor dy = dy_in.contiguous(), x = x_in.contiguous(), w = w_in.contiguous();
    if (device.is_cuda()) {
#if PIT_WITH_CUDA
      const StreamRef stream = current_stream(device);
      const Tensor dya = cudnn_ready(dy);
      if (dx.defined())
        cuda::conv2d_backward_data(g, dtype, dya.data_ptr(), cudnn_ready(w).data_ptr(),
                                   dx.data_ptr(), stream);
      if (dw.defined())
        cuda::conv2d_backward_filter(g, dtype, cudnn_ready(x).data_ptr(), dya.data_ptr(),
                                     dw.data_ptr(), stream);
#else
      no_cuda(op, device);
#endif
    } else {
      cpu::conv2d_backward(g, dtype, dy.data_ptr(), x.data_ptr(), w.data_ptr(),
                           dx.defined() ? dx.data_ptr() : nullptr,
                           dw.defined() ? dw.data_ptr() : nullptr);
    }
  }
  grads.dx = dx;
  grads.dweight = dw;
  return grads;
}

Conv2dGrads conv2d_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, bool has_bias,
                            const Conv2dParams& p) {
  return conv2d_backward_select(dy, x, weight, has_bias, p, true, true);
}

// ---- pooling ----------------------------------------------------------------------------------

MaxPoolResult max_pool2d(const Tensor& x_in, const Pool2dParams& p) {
  check_floating("max_pool2d", x_in, "the input");
  const cpu::PoolGeometry g = pool_geometry("max_pool2d", x_in.shape(), p);
  const Shape out_shape{x_in.size(0), x_in.size(1), g.h_out, g.w_out};
  MaxPoolResult r;
  r.y = Tensor::empty(out_shape, x_in.dtype(), x_in.device());
  r.indices = Tensor::empty(out_shape, DType::i64, x_in.device());
  if (r.y.numel() == 0) return r;
  const Tensor x = x_in.contiguous();
  if (x.is_cuda()) {
#if PIT_WITH_CUDA
    cuda::max_pool2d(g, x.dtype(), x.data_ptr(), r.y.data_ptr(), r.indices.data<int64_t>(),
                     current_stream(x.device()));
#else
    no_cuda("max_pool2d", x.device());
#endif
  } else {
    cpu::max_pool2d(g, x.dtype(), x.data_ptr(), r.y.data_ptr(), r.indices.data<int64_t>());
  }
  return r;
}

Tensor max_pool2d_backward(const Tensor& dy_in, const Tensor& indices_in, const Shape& x_shape) {
  const char* op = "max_pool2d_backward";
  check_floating(op, dy_in, "grad_y");
  check_nchw(op, x_shape, "the input shape");
  check_nchw(op, dy_in.shape(), "grad_y");
  PIT_CHECK(indices_in.defined() && indices_in.dtype() == DType::i64, op,
            ": the indices must be the i64 tensor returned by max_pool2d");
  PIT_CHECK(indices_in.shape() == dy_in.shape(), op, ": indices of shape ",
            shape_str(indices_in.shape()), " do not match grad_y of shape ", shape_str(dy_in.shape()));
  PIT_CHECK(indices_in.device() == dy_in.device(), op, ": indices on ", indices_in.device(),
            " but grad_y on ", dy_in.device());
  PIT_CHECK(dy_in.size(0) == x_shape[0] && dy_in.size(1) == x_shape[1], op, ": grad_y of shape ",
            shape_str(dy_in.shape()), " does not belong to an input of shape ", shape_str(x_shape));
  for (int64_t d : x_shape) PIT_CHECK(d >= 0, op, ": invalid input shape ", shape_str(x_shape));
  const DType dtype = dy_in.dtype();
  const Device device = dy_in.device();
  Tensor dx = Tensor::empty(x_shape, dtype, device);
  if (dx.numel() == 0) return dx;
  const int64_t planes = x_shape[0] * x_shape[1], in_plane = x_shape[2] * x_shape[3];
  const int64_t out_plane = dy_in.size(2) * dy_in.size(3);
  const Tensor dy = dy_in.contiguous(), indices = indices_in.contiguous();
  if (device.is_cuda()) {
#if PIT_WITH_CUDA
    const Tensor scratch = is_reduced(dtype) ? Tensor::empty(x_shape, DType::f32, device) : Tensor();
    cuda::max_pool2d_backward(planes, in_plane, out_plane, dtype, dy.data_ptr(),
                              indices.data<int64_t>(), dx.data_ptr(),
                              scratch.defined() ? scratch.data<float>() : nullptr,
                              current_stream(device));
#else
    no_cuda(op, device);
#endif
  } else {
    cpu::max_pool2d_backward(planes, in_plane, out_plane, dtype, dy.data_ptr(),
                             indices.data<int64_t>(), dx.data_ptr());
  }
  return dx;
}

Tensor avg_pool2d(const Tensor& x_in, const Pool2dParams& p) {
  check_floating("avg_pool2d", x_in, "the input");
  const cpu::PoolGeometry g = pool_geometry("avg_pool2d", x_in.shape(), p);
  Tensor y = Tensor::empty({x_in.size(0), x_in.size(1), g.h_out, g.w_out}, x_in.dtype(),
                           x_in.device());
  if (y.numel() == 0) return y;
  const Tensor x = x_in.contiguous();
  if (x.is_cuda()) {
#if PIT_WITH_CUDA
    cuda::avg_pool2d(g, x.dtype(), x.data_ptr(), y.data_ptr(), current_stream(x.device()));
#else
    no_cuda("avg_pool2d", x.device());
#endif
  } else {
    cpu::avg_pool2d(g, x.dtype(), x.data_ptr(), y.data_ptr());
  }
  return y;
}

Tensor avg_pool2d_backward(const Tensor& dy_in, const Shape& x_shape, const Pool2dParams& p) {
  const char* op = "avg_pool2d_backward";
  check_floating(op, dy_in, "grad_y");
  const cpu::PoolGeometry g = pool_geometry(op, x_shape, p);
  const Shape out_shape{x_shape[0], x_shape[1], g.h_out, g.w_out};
  PIT_CHECK(dy_in.shape() == out_shape, op, ": grad_y has shape ", shape_str(dy_in.shape()),
            " but pooling an input of shape ", shape_str(x_shape), " gives ", shape_str(out_shape));
  Tensor dx = Tensor::empty(x_shape, dy_in.dtype(), dy_in.device());
  if (dx.numel() == 0) return dx;
  const Tensor dy = dy_in.contiguous();
  if (dy.is_cuda()) {
#if PIT_WITH_CUDA
    cuda::avg_pool2d_backward(g, dy.dtype(), dy.data_ptr(), dx.data_ptr(),
                              current_stream(dy.device()));
#else
    no_cuda(op, dy.device());
#endif
  } else {
    cpu::avg_pool2d_backward(g, dy.dtype(), dy.data_ptr(), dx.data_ptr());
  }
  return dx;
}

}  // namespace pit::kernels
