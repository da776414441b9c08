#pragma once
// pit::kernels: device-dispatched tensor functions without autograd. Each takes Tensors, checks
// shapes and dtypes, allocates its output on the inputs' device, and runs the CPU kernel
// (ops/cpu) or the CUDA kernel (ops/cuda, on the device's current stream). The differentiable
// ops (ops/*.h, pit::ops) call these in forward and backward.
//
// Dtypes: inputs of one call share one dtype (no implicit promotion; a mismatch throws naming
// both). f16/bf16 compute in f32 and round once on store. CPU: f32, f64 (and f16/bf16 where
// cheap); CUDA: f32, f16, bf16 (f64 where noted).
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "ops/elementwise_op.h"

namespace pit::kernels {

// ---- elementwise (ops/elementwise.cpp; ops/cpu/elementwise.cpp; ops/cuda/elementwise.cu) ----
// y = f(x; alpha). alpha is the scalar of the scalar ops (add_scalar, mul_scalar, pow_scalar,
// leaky_relu slope ...), ignored by the others.
Tensor unary(UnaryOp op, const Tensor& x, double alpha = 0.0);
// grad_x = grad_y * f'(x) for y = f(x; alpha); y is f's output (some derivatives use it: exp,
// tanh, sigmoid). Both x and y are passed; an op may ignore one of them.
Tensor unary_backward(UnaryOp op, const Tensor& grad_y, const Tensor& x, const Tensor& y,
                      double alpha = 0.0);
// The backward of y = relu(x W^T + b) through the ReLU (ops/relu_grad.cpp): grad_x = grad_y where
// y > 0, else 0 (the derivative read from the output y), and with bias_grad *bias_grad = grad_x
// summed over every dim but the last ([n], grad_y's dtype, f32 accumulation). On CUDA one pass
// over grad_y and y for contiguous f32 / f16 / bf16 rows of whole 16-byte packs, its sums in an
// order fixed per shape and GPU model.
Tensor relu_backward_from_output(const Tensor& grad_y, const Tensor& y, Tensor* bias_grad = nullptr);
// z = a (op) b with numpy broadcasting; output shape = broadcast_shapes(a, b).
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
Shape broadcast_shapes(const Shape& a, const Shape& b);  // throws naming both shapes
// Sums `t` over broadcast dims so that it has `shape` (the reverse of broadcasting): used by the
// backward of broadcasting ops.
Tensor sum_to(const Tensor& t, const Shape& shape);
// out = a + alpha * b, same shape: gradient accumulation and SGD-style updates.
Tensor& add_scaled_(Tensor& a, const Tensor& b, double alpha = 1.0);

// ---- reductions (ops/reduce.cpp; ops/cpu/reduce.cpp; ops/cuda/reduce.cu) ---------------------
// Over `dims` (empty = all dims), keepdim keeps them as size 1. f16/bf16 accumulate in f32.
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// max over one dim: values and i64 indices (first maximum on ties).
struct MaxResult {
  Tensor values;
  Tensor indices;
};
MaxResult max(const Tensor& x, int64_t dim, bool keepdim = false);
// Variance with `correction` (0: population, 1: unbiased).
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1,
           bool keepdim = false);

// ---- softmax family (ops/softmax.cpp; ops/cpu/softmax.cpp; ops/cuda/softmax.cu) -------------
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// grad_x given grad_y and y = softmax(x) / y = log_softmax(x).
Tensor softmax_backward(const Tensor& grad_y, const Tensor& y, int64_t dim);
Tensor log_softmax_backward(const Tensor& grad_y, const Tensor& y, int64_t dim);

// ---- matmul (ops/matmul.cpp; OpenBLAS on the CPU, cuBLAS on CUDA) ---------------------------
// C = op(A) op(B) for 2-D or batched (..., M, K) x (..., K, N) with broadcasting batch dims.
// Transposed views are folded into the GEMM call (no copy) when their last two dims are
// a transposed contiguous matrix.
Tensor matmul(const Tensor& a, const Tensor& b);
// Whether 2-D t is the transpose of a contiguous matrix and not contiguous itself (a Linear's
// weight used as W^T): its gradient is best computed in that matrix's layout, (dC^T A)^T.
bool is_transposed_view(const Tensor& t);

// ---- indexing (ops/index_ops.cpp; ops/cpu/index.cpp; ops/cuda/index.cu) ---------------------
// Indices are i64 (i32 is converted); negative indices count from the end. An out-of-range index
// throws: at the call when the index is on the CPU; when it is on a GPU the kernel records it
// (a kernel cannot throw, and checking first would synchronise) and the next host read or
// stream synchronisation on that device throws it (core/device_error.h); meanwhile the element
// reads as 0 (gather, index_select) or is skipped (scatter_add, index_add).
// out[..., j, ...] = x[..., index[..., j, ...], ...] along dim; index has x's shape outside dim.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// zeros(shape) with src[..., j, ...] added at [..., index[..., j, ...], ...] along dim.
Tensor scatter_add(const Shape& shape, int64_t dim, const Tensor& index, const Tensor& src);
// Entries index[j] of x along dim (1-D index).
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// zeros(shape) with slice j of src added at index[j] along dim: the backward of index_select.
Tensor index_add(const Shape& shape, int64_t dim, const Tensor& index, const Tensor& src);
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);

// ---- normalisation (ops/norm.cpp; ops/cpu/norm.cpp; ops/cuda/norm.cu) -----------------------
// Over the last dim of x (..., D); weight and bias (D) may be undefined (no affine). f32
// statistics. Forward returns the output and the per-row statistics backward needs.
struct NormResult {
  Tensor y;
  Tensor mean;  // (rows) f32; undefined for rmsnorm
  Tensor rstd;  // (rows) f32: 1 / sqrt(var + eps) (layernorm) or 1 / sqrt(mean(x^2) + eps)
};
NormResult layernorm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps);
NormResult rmsnorm(const Tensor& x, const Tensor& weight, double eps);
struct NormGrads {
  Tensor dx, dweight, dbias;  // dweight/dbias undefined when there is no affine parameter
};
NormGrads layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                             const NormResult& saved, bool has_bias);
NormGrads rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                           const NormResult& saved);

// ---- losses and dropout (ops/loss.cpp, ops/dropout.cpp; cpu/ and cuda/ alike) ---------------
// Cross-entropy of logits (N, C) against integer targets (N), fused with log-softmax: per-row
// losses (N) in f32 (0 for ignored rows) and the row log-sum-exp saved for backward. A target
// outside [0, C) that is not ignore_index throws: at the call for CPU targets; for GPU targets
// at the next host read on that device (the row's loss is NaN meanwhile; ops/cuda/loss.h).
struct CrossEntropyResult {
  Tensor loss;  // (N) f32
  Tensor lse;   // (N) f32
};
CrossEntropyResult cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                                 double label_smoothing);
// d(sum_i w_i * loss_i)/dlogits for per-row weights given as grad_loss (N).
Tensor cross_entropy_backward(const Tensor& grad_loss, const Tensor& logits, const Tensor& targets,
                              const CrossEntropyResult& saved, int64_t ignore_index,
                              double label_smoothing);
// Keeps each element with probability 1 - p, scaled by 1 / (1 - p); the mask (u8) is drawn from
// Philox at (seed, offset): the same on the CPU and every GPU.
struct DropoutResult {
  Tensor y;
  Tensor mask;
};
DropoutResult dropout(const Tensor& x, double p, uint64_t seed, uint64_t offset);
Tensor dropout_backward(const Tensor& dy, const Tensor& mask, double p);

// ---- convolution and pooling (ops/conv.cpp; ops/cpu/conv.cpp im2col + GEMM; ops/cuda/conv.cpp
// cuDNN). NCHW; weight (Cout, Cin, kh, kw); bias (Cout) or undefined.
struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
};
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p);
struct Conv2dGrads {
  Tensor dx, dweight, dbias;
};
Conv2dGrads conv2d_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, bool has_bias,
                            const Conv2dParams& p);
struct Pool2dParams {
  int64_t kernel_h = 2, kernel_w = 2, stride_h = 2, stride_w = 2, pad_h = 0, pad_w = 0;
};
struct MaxPoolResult {
  Tensor y;
  Tensor indices;  // i64 flat index into each (n, c) input plane, for backward
};
MaxPoolResult max_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Shape& x_shape);
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p);  // padding counts in the divisor
Tensor avg_pool2d_backward(const Tensor& dy, const Shape& x_shape, const Pool2dParams& p);

// ---- attention (ops/attention.cpp; ops/cpu/attention.cpp; ops/cuda/attention.cu) -------------
// Causal scaled-dot-product attention over q, k, v of shape (B, H, T, Dh), scale 1/sqrt(Dh):
// out = softmax(mask(q k^T * scale)) v. Forward saves the per-row log-sum-exp (B, H, T) in f32.
struct AttentionResult {
  Tensor out;
  Tensor lse;
};
AttentionResult causal_attention(const Tensor& q, const Tensor& k, const Tensor& v);
// The largest head size Dh that causal_attention takes on `device` (256 on CUDA; 0: no limit).
int64_t attention_head_dim_limit(Device device);
struct AttentionGrads {
  Tensor dq, dk, dv;
};
AttentionGrads causal_attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                         const Tensor& v, const AttentionResult& saved);

// ---- optimizer updates and gradient utilities (ops/optim.cpp; ops/cpu/optim.cpp;
// ops/cuda/optim.cu). f32 only (master weights, their gradients and state), contiguous; the
// tensors are updated in place, in one pass (one fused kernel per parameter on CUDA).
struct AdamWHyper {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;  // decoupled: param *= 1 - lr * weight_decay before the update
  int64_t step = 1;           // this parameter's update count, from 1 (bias correction)
  bool bias_correction = true;
};
// torch.optim.AdamW: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// param -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, const AdamWHyper& h);
struct SgdHyper {
  double lr = 1e-2, momentum = 0.0, dampening = 0.0;
  double weight_decay = 0.0;  // L2: d = g + weight_decay * param
  bool nesterov = false;      // needs momentum > 0 and dampening 0
  bool first_step = false;    // this parameter's first update: the buffer starts as d
};
// torch.optim.SGD: buf = momentum * buf + (1 - dampening) * d (buf = d on the first step);
// param -= lr * (nesterov ? d + momentum * buf : buf), or lr * d without momentum (the buffer
// may then be undefined).
void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
              const SgdHyper& h);
// The L2 norm of all elements of `tensors` (one device) together, as a 0-d f32 tensor on that
// device; computed there without a host synchronisation, bit-identical from run to run.
Tensor global_norm(const std::vector<Tensor>& tensors);
// Each tensor *= min(1, max_norm / (norm + eps)) in place, with `norm` (global_norm's result)
// read on the device: no host synchronisation; nothing is written when the factor is 1.
void clip_by_norm_(const std::vector<Tensor>& tensors, const Tensor& norm, double max_norm,
                   double eps = 1e-6);
// Each tensor *= scale in place; returns a 0-d f32 tensor on their device: 1 when a scaled
// element is inf or NaN, else 0 (loss scaling: read it once per step to skip the update).
Tensor unscale_and_check_(const std::vector<Tensor>& tensors, double scale);

}  // namespace pit::kernels
