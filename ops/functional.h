#pragma once
// pit::ops: the differentiable functional API. Each op computes its forward with pit::kernels
// and, when an input requires grad (and grad mode is on), records a Node whose backward saves
// only what it needs. Operators (+ - * /) are in ops/operators.h.
#include <concepts>
#include <cstdint>
#include <vector>

#include "autograd/variable.h"
#include "ops/elementwise_op.h"

namespace pit::ops {

// ---- elementwise (ops/arith.cpp); binary ops broadcast like numpy --------------------------
// Floating dtypes only (f32, f64, f16, bf16). Broadcasting aligns the shapes at their last dims;
// each pair of sizes must be equal or one of them 1. The operands of a binary op must share one
// dtype and one device: there is no type promotion and no implicit move (ops::cast changes a
// Variable's dtype keeping its gradient; Module::to moves a model).
Variable add(const Variable& a, const Variable& b);
Variable sub(const Variable& a, const Variable& b);
Variable mul(const Variable& a, const Variable& b);
Variable div(const Variable& a, const Variable& b);
Variable add(const Variable& a, double s);
Variable mul(const Variable& a, double s);
Variable pow(const Variable& a, double exponent);
Variable neg(const Variable& x);
Variable exp(const Variable& x);
Variable log(const Variable& x);
Variable sqrt(const Variable& x);
Variable rsqrt(const Variable& x);
Variable tanh(const Variable& x);
Variable sigmoid(const Variable& x);
Variable relu(const Variable& x);
enum class GeluApprox { none, tanh };  // none: the exact erf form
Variable gelu(const Variable& x, GeluApprox approx = GeluApprox::none);
Variable silu(const Variable& x);
// Any UnaryOp of ops/elementwise_op.h (alpha for the scalar ones).
Variable unary(UnaryOp op, const Variable& x, double alpha = 0.0);

// ---- reductions and softmax (ops/reduction_ops.cpp) -----------------------------------------
Variable sum(const Variable& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Variable mean(const Variable& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Variable softmax(const Variable& x, int64_t dim);
Variable log_softmax(const Variable& x, int64_t dim);

// ---- linear algebra (ops/linalg.cpp) -------------------------------------------------------
// (..., M, K) x (..., K, N) with broadcast batch dims; transposed views cost no copy.
Variable matmul(const Variable& a, const Variable& b);
// y = x W^T + b for x (..., in), W (out, in), b (out) or undefined.
Variable linear(const Variable& x, const Variable& weight, const Variable& bias = Variable());

// ---- shape (ops/shape_ops.cpp): views where the tensor allows -------------------------------
Variable reshape(const Variable& x, const Shape& shape);
Variable transpose(const Variable& x, int64_t d0, int64_t d1);
Variable permute(const Variable& x, const std::vector<int64_t>& dims);
Variable slice(const Variable& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Variable cat(const std::vector<Variable>& xs, int64_t dim);
Variable stack(const std::vector<Variable>& xs, int64_t dim);

// ---- indexing (ops/shape_ops.cpp); index tensors are i64/i32 and non-differentiable ---------
// An index value v must be in [-n, n), n the size of the indexed dim (else an error; a CUDA op
// whose index is on the GPU raises it at the next host read). A negative v counts from the end
// (v + n), so a -1 "dropped" sentinel reads (index_select, gather) or adds into (scatter_add, and
// index_add in index_select's backward) the last row: map dropped entries to a row of their own.
// index 1-D; out is x's shape with index.numel() at dim.
Variable index_select(const Variable& x, int64_t dim, const Tensor& index);
// out[.., i, ..] = x[.., index[.., i, ..], ..] along dim. index has x's rank and x's sizes in every
// dim but dim (PyTorch allows a smaller index; pit does not); out has index's shape.
Variable gather(const Variable& x, int64_t dim, const Tensor& index);
// self with src added at index along dim (differentiable in self and src). index has src's shape,
// src has self's sizes outside dim. self and src must share one dtype and device; the output has
// self's shape, in that dtype on that device.
Variable scatter_add(const Variable& self, int64_t dim, const Tensor& index, const Variable& src);
// Rows of weight (num_embeddings, dim) picked by ids of any shape: ids.shape + [dim]. Ids go through
// index_select: one in [-num_embeddings, 0) counts from the end (so a padding id of -1 reads the
// last row; map padding to a row of its own), one outside [-num_embeddings, num_embeddings) is an
// error.
Variable embedding(const Tensor& ids, const Variable& weight);

// ---- reductions with indices, variance (ops/reduction_grad_ops.cpp) -------------------------
struct MaxOutput {
  Variable values;
  Tensor indices;  // i64, non-differentiable
};
// The maximum over dim (not empty) and its index: on ties the first maximum (lowest index); a NaN
// counts as larger than any number (the first NaN wins). The gradient goes to that index only.
MaxOutput max(const Variable& x, int64_t dim, bool keepdim = false);
// Variance over dims (all when empty): the sum of squared deviations over n - correction, n the
// number of reduced elements (1, the default: unbiased; 0: population; inf/NaN if n <= correction).
// The third argument is the correction, not keepdim (sum and mean take keepdim third): a bool
// there does not compile, rather than read as a correction. To keep the dims write
// var(x, {1}, 1, true).
Variable var(const Variable& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1,
             bool keepdim = false);
template <typename B>
  requires std::same_as<B, bool>
Variable var(const Variable& x, const std::vector<int64_t>& dims, B correction, bool keepdim = false) = delete;

// ---- normalisation (ops/norm_ops.cpp) --------------------------------------------------------
// Over the last dim D of x [..., D] (f32, f64, f16, bf16): layernorm (x - mean) / sqrt(var + eps)
// * weight + bias, var with divisor D; rmsnorm x / sqrt(mean(x^2) + eps) * weight. weight and bias
// are [D] in x's dtype on x's device, or undefined (no scale, no shift). y has x's shape and dtype;
// the per-row statistics saved for backward are f32 (f64 for f64 x).
Variable layernorm(const Variable& x, const Variable& weight, const Variable& bias, double eps = 1e-5);
Variable rmsnorm(const Variable& x, const Variable& weight, double eps = 1e-6);

// ---- losses and dropout (ops/loss_ops.cpp) ---------------------------------------------------
enum class Reduction { mean, sum, none };
// logits [..., C] with the classes in the LAST dim (PyTorch's are in dim 1: move them last for
// [N, C, d1, ...] logits), targets [...] (logits' shape without C; i64/i32 class indices). The
// losses are f32 (f64 for f64 logits) whatever the logits' dtype; Reduction::none gives [...].
// A row whose target is ignore_index has loss 0 and no gradient; any other target outside [0, C)
// is an error (GPU logits and targets: a NaN loss, raised at the next host read). With
// label_smoothing e in [0, 1] the loss is (1 - e) * -log p[target] + e * mean_c(-log p[c]).
// Mean over non-ignored rows by default (0 when every row is ignored).
Variable cross_entropy(const Variable& logits, const Tensor& targets, int64_t ignore_index = -100,
                       double label_smoothing = 0.0, Reduction reduction = Reduction::mean);
// Identity when !training or p == 0. Draws its mask from the default generator.
Variable dropout(const Variable& x, double p, bool training = true);

// ---- convolution and pooling (ops/conv_ops.cpp) ----------------------------------------------
// NCHW, f32, f64, f16, bf16. conv2d: x [N, Cin, H, W], weight [Cout, Cin, kh, kw], bias [Cout] or
// undefined, of one dtype and device; y [N, Cout, Ho, Wo], Ho = (H + 2 padding - dilation (kh - 1)
// - 1) / stride + 1 (likewise Wo). One stride, padding and dilation for H and W; no groups.
// Pooling: a square kernel, one stride (-1: the kernel) and padding for H and W, padding at most
// kernel / 2; Ho = (H + 2 padding - kernel) / stride + 1 rounded down (no ceil mode). max_pool2d
// ignores the padding (ties: the first in the window); avg_pool2d divides by kernel^2 always
// (padding counts as zeros).
Variable conv2d(const Variable& x, const Variable& weight, const Variable& bias = Variable(),
                int64_t stride = 1, int64_t padding = 0, int64_t dilation = 1);
Variable max_pool2d(const Variable& x, int64_t kernel, int64_t stride = -1 /* = kernel */, int64_t padding = 0);
Variable avg_pool2d(const Variable& x, int64_t kernel, int64_t stride = -1 /* = kernel */, int64_t padding = 0);

// ---- attention (ops/attention_ops.cpp) -------------------------------------------------------
// Causal attention: q, k, v all [B, H, T, Dh] of one dtype and device (no GQA, no cross-attention);
// out [B, H, T, Dh] in that dtype, out_i = sum over j <= i of softmax_j(q_i . k_j / sqrt(Dh)) v_j.
// CUDA: f32, f16, bf16 and Dh <= 256 (64 and 128 take the fastest kernels); CPU: f32, f64, f16,
// bf16 (f64 math). Strided views (e.g. [B, T, H, Dh] transposed) are copied to contiguous first.
Variable causal_attention(const Variable& q, const Variable& k, const Variable& v);

// ---- dtype conversion (ops/cast_ops.cpp) -----------------------------------------------------
// x converted to `dtype` (f16/bf16 round to nearest even); backward converts the gradient back
// to x's dtype, so gradients of f32 master weights used in bf16/f16 compute land in f32. x
// itself when it already has that dtype.
Variable cast(const Variable& x, DType dtype);

}  // namespace pit::ops
