// kernels::adamw_step, sgd_step, global_norm, clip_by_norm_ and unscale_and_check_: checks, the
// per-step constants (folded in double, rounded once to f32) and device dispatch; the arithmetic
// is in ops/cpu/optim.cpp and ops/cuda/optim.cu.
#include <cmath>
#include <vector>

#include "ops/cpu/optim.h"
#include "ops/kernels.h"
#if PIT_WITH_CUDA
#include "ops/cuda/optim.h"
#endif

namespace pit::kernels {
namespace {

// An f32, contiguous tensor (updated in place by the kernels).
void check_f32(const char* op, const char* what, const Tensor& t) {
  PIT_CHECK(t.defined(), op, ": ", what, " is undefined");
  PIT_CHECK(t.dtype() == DType::f32, op, ": ", what, " has dtype ", dtype_name(t.dtype()),
            "; the optimizer kernels take f32 (master weights, their gradients and state)");
  PIT_CHECK(t.is_contiguous(), op, ": ", what, " of shape ", shape_str(t.shape()),
            " is not contiguous; the kernels update dense tensors in place");
}

// `t` checked like `param`: f32, contiguous, same shape and device.
void check_like(const char* op, const char* what, const Tensor& t, const Tensor& param) {
  check_f32(op, what, t);
  PIT_CHECK(t.shape() == param.shape(), op, ": ", what, " of shape ", shape_str(t.shape()),
            " for a parameter of shape ", shape_str(param.shape()));
  PIT_CHECK(t.device() == param.device(), op, ": ", what, " on ", t.device(),
            " and the parameter on ", param.device(), "; move one with to(device)");
}

float* f32(const Tensor& t) { return t.data<float>(); }

// The device of a list of tensors (all on one), checking each.
Device list_device(const char* op, const std::vector<Tensor>& ts) {
  PIT_CHECK(!ts.empty(), op, ": no tensors given");
  for (size_t i = 0; i < ts.size(); ++i) {
    check_f32(op, "a tensor of the list", ts[i]);
    PIT_CHECK(ts[i].device() == ts[0].device(), op, ": tensor ", i, " is on ", ts[i].device(),
              " and tensor 0 on ", ts[0].device(), "; the list must be on one device");
  }
  return ts[0].device();
}

#if PIT_WITH_CUDA
std::vector<cuda::FloatSpan> spans(const std::vector<Tensor>& ts) {
  std::vector<cuda::FloatSpan> out;
  out.reserve(ts.size());
  for (const Tensor& t : ts) out.push_back({f32(t), t.numel()});
  return out;
}
#endif

}  // namespace

void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, const AdamWHyper& h) {
  const char* op = "adamw_step";
  check_f32(op, "the parameter", param);
  check_like(op, "the gradient", grad, param);
  check_like(op, "exp_avg", exp_avg, param);
  check_like(op, "exp_avg_sq", exp_avg_sq, param);
  PIT_CHECK(h.lr >= 0.0, op, ": lr must be >= 0, got ", h.lr);
  PIT_CHECK(h.beta1 >= 0.0 && h.beta1 < 1.0 && h.beta2 >= 0.0 && h.beta2 < 1.0, op,
            ": betas must be in [0, 1), got (", h.beta1, ", ", h.beta2, ")");
  PIT_CHECK(h.eps >= 0.0, op, ": eps must be >= 0, got ", h.eps);
  PIT_CHECK(h.weight_decay >= 0.0, op, ": weight_decay must be >= 0, got ", h.weight_decay);
  PIT_CHECK(h.step >= 1, op, ": step counts this parameter's updates from 1, got ", h.step);
  AdamWCoeffs c;
  c.decay = static_cast<float>(1.0 - h.lr * h.weight_decay);
  c.beta1 = static_cast<float>(h.beta1);
  c.beta2 = static_cast<float>(h.beta2);
  c.one_minus_beta1 = static_cast<float>(1.0 - h.beta1);
  c.one_minus_beta2 = static_cast<float>(1.0 - h.beta2);
  c.eps = static_cast<float>(h.eps);
  const double t = static_cast<double>(h.step);
  const double bc1 = h.bias_correction ? 1.0 - std::pow(h.beta1, t) : 1.0;
  const double bc2 = h.bias_correction ? 1.0 - std::pow(h.beta2, t) : 1.0;
  c.step_size = static_cast<float>(h.lr / bc1);
  c.sqrt_bc2 = static_cast<float>(std::sqrt(bc2));
  const int64_t n = param.numel();
  if (n == 0) return;
  if (param.is_cuda()) {
#if PIT_WITH_CUDA
    cuda::adamw_step(c, n, f32(param), f32(grad), f32(exp_avg), f32(exp_avg_sq),
                     current_stream(param.device()));
#endif
  } else {
    cpu::adamw_step(c, n, f32(param), f32(grad), f32(exp_avg), f32(exp_avg_sq));
  }
}

void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
              const SgdHyper& h) {
  const char* op = "sgd_step";
  check_f32(op, "the parameter", param);
  check_like(op, "the gradient", grad, param);
  PIT_CHECK(h.lr >= 0.0, op, ": lr must be >= 0, got ", h.lr);
  PIT_CHECK(h.momentum >= 0.0, op, ": momentum must be >= 0, got ", h.momentum);
  PIT_CHECK(h.weight_decay >= 0.0, op, ": weight_decay must be >= 0, got ", h.weight_decay);
  PIT_CHECK(!h.nesterov || (h.momentum > 0.0 && h.dampening == 0.0), op,
            ": Nesterov momentum needs momentum > 0 and dampening 0, got momentum ", h.momentum,
            " and dampening ", h.dampening);
  if (h.momentum != 0.0) check_like(op, "the momentum buffer", momentum_buffer, param);
  SgdCoeffs c;
  c.lr = static_cast<float>(h.lr);
  c.weight_decay = static_cast<float>(h.weight_decay);
  c.momentum = static_cast<float>(h.momentum);
  c.one_minus_dampening = static_cast<float>(1.0 - h.dampening);
  c.nesterov = h.nesterov;
  c.first = h.first_step;
  const int64_t n = param.numel();
  if (n == 0) return;
  float* buf = h.momentum != 0.0 ? f32(momentum_buffer) : nullptr;
  if (param.is_cuda()) {
#if PIT_WITH_CUDA
    cuda::sgd_step(c, n, f32(param), f32(grad), buf, current_stream(param.device()));
#endif
  } else {
    cpu::sgd_step(c, n, f32(param), f32(grad), buf);
  }
}

Tensor global_norm(const std::vector<Tensor>& tensors) {
  const Device device = list_device("global_norm", tensors);
  Tensor norm = Tensor::empty({}, DType::f32, device);
  if (device.is_cuda()) {
#if PIT_WITH_CUDA
    cuda::global_norm(spans(tensors), f32(norm), current_stream(device));
#endif
  } else {
    double total = 0.0;
    for (const Tensor& t : tensors) total += cpu::sum_of_squares(f32(t), t.numel());
    *f32(norm) = static_cast<float>(std::sqrt(total));
  }
  return norm;
}

void clip_by_norm_(const std::vector<Tensor>& tensors, const Tensor& norm, double max_norm,
                   double eps) {
  const char* op = "clip_by_norm_";
  const Device device = list_device(op, tensors);
  PIT_CHECK(norm.defined() && norm.numel() == 1 && norm.dtype() == DType::f32, op,
            ": the norm must be a one-element f32 tensor (global_norm's result)");
  PIT_CHECK(norm.device() == device, op, ": the norm on ", norm.device(), " and the tensors on ",
            device);
  PIT_CHECK(max_norm > 0.0, op, ": max_norm must be > 0, got ", max_norm);
  const Tensor nc = norm.contiguous();
  if (device.is_cuda()) {
#if PIT_WITH_CUDA
    cuda::clip_by_norm(spans(tensors), f32(nc), static_cast<float>(max_norm),
                       static_cast<float>(eps), current_stream(device));
#endif
  } else {
    // The same f32 arithmetic as the CUDA kernel.
    const float coef = static_cast<float>(max_norm) / (*f32(nc) + static_cast<float>(eps));
    if (coef >= 1.0f) return;
    for (const Tensor& t : tensors) cpu::scale(f32(t), t.numel(), coef);
  }
}

Tensor unscale_and_check_(const std::vector<Tensor>& tensors, double scale) {
  const Device device = list_device("unscale_and_check_", tensors);
  Tensor found = zeros({}, DType::f32, device);
  const float s = static_cast<float>(scale);
  if (device.is_cuda()) {
#if PIT_WITH_CUDA
    cuda::scale_and_check(spans(tensors), s, f32(found), current_stream(device));
#endif
  } else {
    bool any = false;
    for (const Tensor& t : tensors) any |= cpu::scale_and_check(f32(t), t.numel(), s);
    *f32(found) = any ? 1.0f : 0.0f;
  }
  return found;
}

}  // namespace pit::kernels
