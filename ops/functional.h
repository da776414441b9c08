#pragma once
// pit::ops: the differentiable functional API. Each op computes its forward with pit::kernels
// and, when an input requires grad (and grad mode is on), records a Node whose backward saves
// only what it needs. Operators (+ - * /) are in ops/operators.h.
#include <cstdint>
#include <vector>

#include "autograd/variable.h"
#include "ops/elementwise_op.h"

namespace pit::ops {

// ---- elementwise (ops/arith.cpp); binary ops broadcast like numpy --------------------------
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
Variable index_select(const Variable& x, int64_t dim, const Tensor& index);
Variable gather(const Variable& x, int64_t dim, const Tensor& index);
// self with src added at index along dim (differentiable in self and src).
Variable scatter_add(const Variable& self, int64_t dim, const Tensor& index, const Variable& src);
// Rows of weight (num_embeddings, dim) picked by ids of any shape: ids.shape + [dim]. Ids go through
// index_select: one in [-num_embeddings, 0) counts from the end (so a padding id of -1 reads the
// last row; map padding to a row of its own), one outside [-num_embeddings, num_embeddings) is an
// error.
Variable embedding(const Tensor& ids, const Variable& weight);

// ---- reductions with indices, variance (ops/reduction_ops.cpp) ------------------------------
struct MaxOutput {
  Variable values;
  Tensor indices;  // i64, non-differentiable
};
MaxOutput max(const Variable& x, int64_t dim, bool keepdim = false);
Variable var(const Variable& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1,
             bool keepdim = false);

// ---- normalisation (ops/norm_ops.cpp) --------------------------------------------------------
Variable layernorm(const Variable& x, const Variable& weight, const Variable& bias, double eps = 1e-5);
Variable rmsnorm(const Variable& x, const Variable& weight, double eps = 1e-6);

// ---- losses and dropout (ops/loss_ops.cpp) ---------------------------------------------------
enum class Reduction { mean, sum, none };
// Mean over non-ignored rows by default (0 when every row is ignored).
Variable cross_entropy(const Variable& logits, const Tensor& targets, int64_t ignore_index = -100,
                       double label_smoothing = 0.0, Reduction reduction = Reduction::mean);
// Identity when !training or p == 0. Draws its mask from the default generator.
Variable dropout(const Variable& x, double p, bool training = true);

// ---- convolution and pooling (ops/conv_ops.cpp) ----------------------------------------------
Variable conv2d(const Variable& x, const Variable& weight, const Variable& bias = Variable(),
                int64_t stride = 1, int64_t padding = 0, int64_t dilation = 1);
Variable max_pool2d(const Variable& x, int64_t kernel, int64_t stride = -1 /* = kernel */, int64_t padding = 0);
Variable avg_pool2d(const Variable& x, int64_t kernel, int64_t stride = -1 /* = kernel */, int64_t padding = 0);

// ---- attention (ops/attention_ops.cpp) -------------------------------------------------------
// Causal attention over (B, H, T, Dh) q, k, v.
Variable causal_attention(const Variable& q, const Variable& k, const Variable& v);

// ---- dtype conversion (ops/cast_ops.cpp) -----------------------------------------------------
// x converted to `dtype` (f16/bf16 round to nearest even); backward converts the gradient back
// to x's dtype, so gradients of f32 master weights used in bf16/f16 compute land in f32. x
// itself when it already has that dtype.
Variable cast(const Variable& x, DType dtype);

}  // namespace pit::ops
