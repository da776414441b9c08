// kernels::cross_entropy and cross_entropy_backward: checks, the row view and device dispatch;
// the arithmetic is in ops/cpu/loss.cpp and ops/cuda/loss.cu.
//
// Logits (..., C) with targets (...) (the documented case is (N, C) with (N)); per-row results
// have the targets' shape. Targets are i64 or i32 and are used as they are (no conversion).
// Per-row losses, lse and the incoming gradient are f32, or f64 for f64 logits (so that f64
// runs, gradcheck in particular, keep full precision).
//
// Target validation: targets on the CPU are checked here, before any kernel runs: a target that
// is neither ignore_index nor in [0, C) throws, naming it and its row. Targets already on a GPU
// are not copied back to check them (that would synchronize); the CUDA kernels give such rows NaN
// and record the target in the device's error slot, thrown at the next host read
// (core/device_error.h).
#include "ops/cpu/loss.h"
#include "ops/kernels.h"
#include "ops/row_view.h"
#if PIT_WITH_CUDA
#include "ops/cuda/loss.h"
#endif

namespace pit::kernels {
namespace {

void check_logits(const char* op, const Tensor& logits) {
  PIT_CHECK(logits.defined(), op, ": the logits are undefined");
  PIT_CHECK(is_floating(logits.dtype()), op, ": logits of dtype ", dtype_name(logits.dtype()),
            " are not supported; supported dtypes: f32, f64, f16, bf16");
  PIT_CHECK(logits.dim() >= 1, op, ": the logits must have a class dim (N, C); got a 0-d tensor");
  PIT_CHECK(logits.size(-1) > 0, op, ": the logits of shape ", shape_str(logits.shape()),
            " have no classes");
}

void check_targets(const char* op, const Tensor& logits, const Tensor& targets) {
  PIT_CHECK(targets.defined(), op, ": the targets are undefined");
  PIT_CHECK(targets.dtype() == DType::i64 || targets.dtype() == DType::i32, op,
            ": targets must be i64 or i32 class indices, got ", dtype_name(targets.dtype()));
  const Shape want(logits.shape().begin(), logits.shape().end() - 1);
  PIT_CHECK(targets.shape() == want, op, ": targets of shape ", shape_str(targets.shape()),
            " do not match logits of shape ", shape_str(logits.shape()), " (expected targets of shape ",
            shape_str(want), ")");
}

void check_smoothing(const char* op, double label_smoothing) {
  PIT_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, op,
            ": label_smoothing must be in [0, 1], got ", label_smoothing);
}

template <typename I>
void validate_host(const Tensor& targets, int64_t classes, int64_t ignore_index) {
  const Tensor t = targets.contiguous();
  const I* p = t.data<I>();
  for (int64_t r = 0; r < t.numel(); ++r) {
    const auto v = static_cast<int64_t>(p[r]);
    PIT_CHECK(v == ignore_index || (v >= 0 && v < classes), "cross_entropy: target ", v,
              " (row ", r, ") is out of range for ", classes, " classes: targets must be in [0, ",
              classes - 1, "] or equal ignore_index (", ignore_index, ")");
  }
}

// Targets on the logits' device, contiguous; checked on the host wherever they are there, before
// or after the move (GPU logits check GPU targets in their kernel; CPU logits have no such check,
// so GPU targets are checked once copied to the host).
Tensor prepare_targets(const Tensor& targets, const Tensor& logits, int64_t classes,
                       int64_t ignore_index, bool validate) {
  const auto check = [&](const Tensor& host) {
    if (!validate) return;
    if (host.dtype() == DType::i64)
      validate_host<int64_t>(host, classes, ignore_index);
    else
      validate_host<int32_t>(host, classes, ignore_index);
  };
  if (targets.device().is_cpu()) check(targets);
  const Tensor moved = targets.to(logits.device()).contiguous();
  if (!targets.device().is_cpu() && logits.device().is_cpu()) check(moved);
  return moved;
}

}  // namespace

CrossEntropyResult cross_entropy(const Tensor& logits, const Tensor& targets_in, int64_t ignore_index,
                                 double label_smoothing) {
  const char* op = "cross_entropy";
  check_logits(op, logits);
  check_targets(op, logits, targets_in);
  check_smoothing(op, label_smoothing);
  const RowView r = row_view(logits);
  const Tensor targets = prepare_targets(targets_in, logits, r.dim, ignore_index, true);
  const DType sd = stat_dtype(logits.dtype());
  CrossEntropyResult out{Tensor::empty(targets.shape(), sd, logits.device()),
                         Tensor::empty(targets.shape(), sd, logits.device())};
  if (r.rows == 0) return out;
  const cpu::CrossEntropyArgs args{logits.dtype(), targets.dtype(), r.rows, r.dim, ignore_index,
                                   label_smoothing};
  if (logits.is_cuda()) {
#if PIT_WITH_CUDA
    cuda::cross_entropy(args, r.t.data_ptr(), r.stride, targets.data_ptr(), out.loss.data_ptr(),
                        out.lse.data_ptr(), current_stream(logits.device()));
#endif
  } else {
    cpu::cross_entropy(args, r.t.data_ptr(), r.stride, targets.data_ptr(), out.loss.data_ptr(),
                       out.lse.data_ptr());
  }
  return out;
}

Tensor cross_entropy_backward(const Tensor& grad_loss, const Tensor& logits, const Tensor& targets_in,
                              const CrossEntropyResult& saved, int64_t ignore_index,
                              double label_smoothing) {
  const char* op = "cross_entropy_backward";
  check_logits(op, logits);
  check_targets(op, logits, targets_in);
  check_smoothing(op, label_smoothing);
  PIT_CHECK(grad_loss.defined(), op, ": grad_loss is undefined");
  PIT_CHECK(grad_loss.shape() == targets_in.shape(), op, ": grad_loss of shape ",
            shape_str(grad_loss.shape()), " does not match the per-row losses of shape ",
            shape_str(targets_in.shape()));
  PIT_CHECK(is_floating(grad_loss.dtype()), op, ": grad_loss of dtype ",
            dtype_name(grad_loss.dtype()), " is not floating");
  PIT_CHECK(saved.lse.defined() && saved.lse.numel() == targets_in.numel(), op,
            ": the saved lse is undefined or does not have one value per row");
  const RowView r = row_view(logits);
  // Validated by the forward already.
  const Tensor targets = prepare_targets(targets_in, logits, r.dim, ignore_index, false);
  const DType sd = stat_dtype(logits.dtype());
  const Tensor g = grad_loss.to(logits.device(), sd).contiguous();
  const Tensor lse = saved.lse.to(logits.device(), sd).contiguous();
  Tensor dx = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
  if (r.rows == 0) return dx;
  const cpu::CrossEntropyArgs args{logits.dtype(), targets.dtype(), r.rows, r.dim, ignore_index,
                                   label_smoothing};
  if (logits.is_cuda()) {
#if PIT_WITH_CUDA
    cuda::cross_entropy_backward(args, g.data_ptr(), r.t.data_ptr(), r.stride, targets.data_ptr(),
                                 lse.data_ptr(), dx.data_ptr(), current_stream(logits.device()));
#endif
  } else {
    cpu::cross_entropy_backward(args, g.data_ptr(), r.t.data_ptr(), r.stride, targets.data_ptr(),
                                lse.data_ptr(), dx.data_ptr());
  }
  return dx;
}

}  // namespace pit::kernels
