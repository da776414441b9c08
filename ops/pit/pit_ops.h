#pragma once
// pit::ops::pit_matmul and pit_linear: differentiable matrix products with a sparse operand,
// computed by the PIT engine. Forward detects the sparse operand's micro-tiles once and saves
// the index on the tape; backward reuses it (SRead/SWrite over the same micro-tiles) and runs
// no detection of its own. Index, mask and row-set inputs are non-differentiable.
//
// Semantics (what the gradients are). The sparse operand has a pattern P that is a constant of
// the step: the mask when one is given, else its non-zero elements (pit_matmul) or its row set
// (pit_linear with rows). The op computes the same value as the dense op, and with
// sparse_grad (the default) the sparse operand's gradient is the dense gradient times P: what
// dense autograd gives for matmul(a * P, b) with P constant. For an operand that comes out of a
// ReLU (or is padded, or routed) this changes nothing upstream, since those zeros carry no
// gradient there anyway. sparse_grad = false gives the full dense gradient (dense GEMM).
#include <cstdint>

#include <memory>

#include "autograd/variable.h"
#include "ops/pit/compact.h"
#include "ops/pit/index.h"
#include "ops/pit/planner.h"

namespace pit::ops {

struct PitMatmulOptions {
  // The index kind and micro-tile: Kernel::dense / k_lists / blocks / rows, or nullopt: on CUDA
  // the planner decides (ops/pit/planner.h), on the CPU K lists 32x1; dense on either where the
  // PIT kernels cannot take A (sparse::pit_kernels_refuse: 2^31 elements or more, f64 on CUDA).
  std::optional<sparse::Kernel> kernel = {};
  int64_t tile = 32;           // r of K lists, b of blocks (when `kernel` is given)
  Tensor mask = {};            // declared pattern of A, A's shape (non-zero = kept)
  bool sparse_grad = true;     // dA = dense gradient * P (see above); false: dense dA
  double density = -1.0;       // caller-given micro-tile density for the planner (no read-back)
  // The caller's planning state for this operand (a layer's, kept across steps): the planner
  // then plans from the previous call's counts and does not wait (ops/pit/planner.h PlanSite).
  sparse::PlanSite* site = nullptr;
};

// C = A B for A (..., K) sparse and B [K, N] dense.
Variable pit_matmul(const Variable& a, const Variable& b, const PitMatmulOptions& options = {});

struct PitLinearOptions {
  // Row-sparse input (M-gather): only these rows of x (flattened to [rows, in]) are computed;
  // the others are structurally zero and give y = bias. Unset: detected from x's non-zero rows.
  std::optional<sparse::RowSetIndex> rows = {};
  // Pruned weight: W's declared pattern [out, in]; W is indexed by b x b blocks (block = b).
  Tensor weight_mask = {};
  int64_t block = 32;
  bool sparse_grad = true;  // dW * mask (pruned W), dX on the row set only (row-sparse x)
};

// y = x W^T + b for x (..., in), W [out, in], b [out] or undefined.
Variable pit_linear(const Variable& x, const Variable& weight, const Variable& bias = Variable(),
                    const PitLinearOptions& options = {});

struct SparseLinearOptions {
  // When set, backward also stores the dense weight gradient dy^T x ([out, in], dy's dtype)
  // here: what RigL's growth scores at a mask update (the compact gradient is computed anyway).
  std::shared_ptr<Tensor> dense_weight_grad = {};
  // y = relu(x W^T + b), the ReLU fused: on CUDA the 64 x 64 blocks take it in their GEMM's
  // epilogue, and the backward reads its derivative from y and sums the bias gradient in the same
  // pass (kernels::relu_backward_from_output); elsewhere a ReLU after the layer.
  bool relu = false;
};

// y = x W^T + b for a weight kept compactly (ops/pit/compact.h): `values` [entries, tile elements]
// in layout's order, x (..., in) with in = layout.cols, y (..., out) with out = layout.rows.
// Computed transposed so that every gather reads whole rows: y^T = W x^T (condense_gemm or
// block_gemm over the layout's index), dx^T = W^T dy^T (blocks: block_gemm over the transposed
// lists; K lists: condense_gemm_tn over the same index, which adds its partial sums atomically
// on CUDA, so its rounding order may vary from run to run) and the
// values' gradient dy^T x only at the listed micro-tiles (sampled_gemm), times layout.inside when
// the pattern is finer than the micro-tiles. The gradient has the values' shape: compact. A
// layout on the dense path (compact.h, dense_from) runs the dense GEMMs on W scattered to dense
// and gathers the values' gradient from the dense one.
Variable sparse_linear(const Variable& x, const Variable& values, const Variable& bias,
                       const sparse::CompactLayout& layout, const SparseLinearOptions& options = {});

// One layer of sparse_relu_ffn: sparse_linear's operands and its dense_weight_grad option.
struct SparseLayer {
  Variable values, bias;  // bias may be undefined
  sparse::CompactLayout layout;
  std::shared_ptr<Tensor> dense_weight_grad = {};
};

// y = relu(x W1^T + b1) W2^T + b2, an FFN of two compact weights with the ReLU between: the same
// function and gradients as sparse_linear(sparse_linear(x, fc, relu), proj), as one node. On CUDA,
// where both layers are 64 x 64 blocks (bf16/f16, W1's outputs a multiple of 8), the ReLU's
// derivative travels as bits: the first GEMM's epilogue writes them (1/16 of h's bytes), and the
// epilogue of the second layer's dx GEMM applies them and sums the first bias's gradient, so the
// backward has no ReLU pass over h (sparse::block_linear_relu_bits). Elsewhere the two ops.
// PIT_RELU_FFN=pair forces the two ops (to compare).
Variable sparse_relu_ffn(const Variable& x, const SparseLayer& fc, const SparseLayer& proj);
// Whether sparse_relu_ffn takes the bits' way for x flattened to [T, in] (x2).
bool sparse_relu_ffn_fuses(const Tensor& x2, const SparseLayer& fc, const SparseLayer& proj);

}  // namespace pit::ops
