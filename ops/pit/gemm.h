#pragma once
// The PIT GEMM family: C = A * B where one operand is sparse at micro-tile granularity and a
// PitIndex (ops/pit/index.h) says where its non-zero micro-tiles are. Every function here
// checks shapes, dtypes and devices once, then runs the CPU implementation (ops/pit/cpu, the
// reference) or the CUDA one (ops/pit/cuda, tensor cores), on the current stream, with no host
// synchronisation (counts are read on the device).
//
// Notation: A [M, K], B [K, N], C [M, N], all row-major and contiguous; dtypes f32, bf16, f16
// (one dtype per call; f16/bf16 accumulate in f32 and round once on store). f64 on the CPU.
// "Exact" below means: equal to the dense product of the same operands, up to the summation
// order of the accumulation, for finite operands. Inf and NaN follow only where the sparse
// operand's micro-tiles are listed: the product skips unlisted ones (0 * Inf there is 0, not the
// dense product's NaN), and the CPU reference also skips the zeros inside listed ones, where the
// tensor cores multiply them.
#include <cstdint>

#include "core/tensor.h"
#include "ops/elementwise_op.h"
#include "ops/pit/index.h"

namespace pit::sparse {

// What the epilogue does with an accumulator tile before SWrite puts it in C.
enum class Write : uint8_t {
  store,       // C = result
  accumulate,  // C += result (atomic where several tiles meet one output element)
};
// The tensor-core engine of a PIT GEMM (f16/bf16; f32 always runs on the CUDA cores). automatic:
// the kernel's own rule (gather_gemm: wgmma for long K, mma.sync for short K-chunks;
// condense_gemm: wgmma for 128-row micro-tiles; gather_weight_grad: its lean kernel where it takes
// the case, else wgmma); the others force one, for measuring (pit-bench)
// and tests. wgmma_persistent: the persistent, warp-specialised wgmma engine
// (ops/pit/cuda/ws_core.cuh; condense_gemm, gather_gemm and gather_weight_grad; rows of the
// operands it reads 16-byte aligned, else it throws). wgmma_pingpong (gather_gemm and
// gather_weight_grad): its variant whose two consumer warpgroups take whole tiles in turns
// (ops/pit/cuda/pp_core.cuh), which gather_gemm takes by itself for expert segments that fill the
// GPU. wgmma_deep: the wgmma engine with its loads one stage further ahead, each k-step waiting
// for its own MMAs (gather_gemm and gather_weight_grad). wgmma_tma and wgmma_tma_pingpong
// (gather_gemm over expert segments, gather_weight_grad without use_weights): the persistent
// engine and its ping-pong variant with their stages loaded by TMA (one TMA per gathered row,
// ops/cuda/tma_ptx.cuh); on an H200 about twice as slow on MoE's GEMMs (docs/BENCHMARKS.md).
// wgmma_wide (gather_gemm over expert segments or one shared B, not K-chunks; rows 16-byte
// aligned): 128 x 256 tiles, both consumer warpgroups on each, B and a compact A by TMA
// (ops/pit/cuda/gather_wide.cu); gather_gemm's own choice for experts that fill the GPU.
enum class Engine : uint8_t {
  automatic,
  mma,
  wgmma,
  wgmma_persistent,
  wgmma_deep,
  wgmma_pingpong,
  wgmma_tma,
  wgmma_tma_pingpong,
  wgmma_wide,
};

struct Epilogue {
  Write write = Write::store;
  Tensor bias = {};            // [N] (or [S, N] per segment for segmented GEMMs); store only
  bool activation = false;     // apply `act` after the bias; store only
  UnaryOp act = UnaryOp::relu; // relu, gelu_tanh, gelu_erf, silu
  // With an activation: also store the values before it (after the bias) here, a contiguous
  // tensor of C's shape and dtype that shares no bytes with C (the MoE up GEMM writes pre and
  // act(pre) in one pass: its backward needs both).
  Tensor pre = {};
  // With an activation (M-gather with use_weights): the entry's scale multiplies the activation's
  // output instead of the accumulator, C = scale_e * act(sums), pre (if given) unscaled (the MoE up
  // GEMM writes pre for act' and gate * act(pre) for the down GEMM and W2's gradient; a forward
  // with no backward to follow, gate * act(sums) alone).
  bool scale_after_activation = false;
};

// Throws, naming op, unless act is an activation the PIT kernels fuse: relu, gelu_tanh, gelu_erf
// or silu (the epilogues', MoE's and its backward's).
void check_fused_activation(UnaryOp act, const char* op);

// ---- M-gather: segmented, gathered GEMM over a row set ------------------------------------------
// For every segment s and every entry e of s (idx.rows[offsets[s] .. offsets[s+1])):
//   a_row = a_gathered ? idx.rows[e] : e          (gather A's rows, or A is compact by entry)
//   c_row = c_scattered ? idx.rows[e] : e         (SWrite to the named rows, or compact)
//   C[c_row, :] (=|+=) scale_e * sum_k A[a_row, a_k0(s) + k] * B_s[k, :],   k < K_s
//   scale_e = idx.weights[e] when use_weights, else 1.
// Segments:
//   - experts (idx.segment_cols == 0): B is [S, K, N] (B_s = B[s]) or [K, N] shared; K_s = K.
//   - K-chunks (idx.segment_cols == w > 0): segment s covers k in [s*w, min(K, s*w + w)) of A
//     and the same rows of a [K, N] B; C must be written with Write::accumulate (the dispatcher
//     zero-fills C first when `zero_c`).
// b_trans: B is given as [N, K] (or [S, N, K]): a Linear weight used as is.
// Rows of C that no entry names are not touched unless zero_c (then they are 0).
struct GatherGemmArgs {
  bool a_gathered = true;
  bool c_scattered = true;
  bool b_trans = false;
  bool use_weights = false;
  bool zero_c = false;
  Epilogue epilogue = {};
  Engine engine = Engine::automatic;
};
void gather_gemm(const Tensor& a, const RowSetIndex& idx, const Tensor& b, Tensor& c,
                 const GatherGemmArgs& args);

// The weight gradient of gather_gemm (expert segments): for every segment s
//   dB_s = sum_{e in s} scale_e * A[a_row(e), :]^T  G[g_row(e), :]       ([K, N]; [N, K] if b_trans)
// with a_row / g_row as above (a_gathered, g_gathered), reducing over the segment's entries
// (SRead of A and G with the forward's index). dB: [S, K, N] (or [S, N, K]); Write::store
// writes every segment (an empty segment gives zeros), Write::accumulate adds.
struct GatherWeightGradArgs {
  bool a_gathered = true;
  bool g_gathered = true;
  bool b_trans = false;
  bool use_weights = false;
  Write write = Write::store;
  Engine engine = Engine::automatic;  // CUDA f16/bf16: see Engine
};
void gather_weight_grad(const Tensor& a, const Tensor& g, const RowSetIndex& idx, Tensor& db,
                        const GatherWeightGradArgs& args);

// ---- K-condense: sparse A by k micro-tiles (r x 1) or blocks (b x b) ---------------------------
// C = A * B where A is given by its index with condensed values (idx.values defined); only the
// listed micro-tiles of A and the matching rows of B are read. Every element of C is written
// (store: a row block with an empty list gives 0, or the bias/activation of 0).
void condense_gemm(const KListIndex& a, const Tensor& b, Tensor& c, const Epilogue& epilogue = {});
void block_gemm(const BlockListIndex& a, const Tensor& b, Tensor& c, const Epilogue& epilogue = {});

// A Linear on a block-sparse weight: y [T, V.rows] = x [T, V.cols] V^T, x and y row-major as
// they are (y = (V x^T)^T: block_gemm with the transposes; on CUDA, f16/bf16 with 64 x 64 blocks,
// one kernel that reads x and writes y directly). dx = dy W is the same with V = W^T
// (block_linear_dx). relu: y = max(x V^T + bias, 0) (on CUDA in the same epilogue).
void block_linear(const Tensor& x, const BlockListIndex& v, Tensor& y, const Tensor& bias = {},  // + bias [out]
                  bool relu = false);
// Its backward for x: dx [T, V.cols] = dy [T, V.rows] V, over V's transposed lists (t_offsets,
// t_rows, t_pos, as a compact layout's blocks hold them). On CUDA (f16/bf16, 64 x 64) one kernel
// that reads V's blocks as they lie; elsewhere block_linear over transposed_blocks(v).
void block_linear_dx(const Tensor& dy, const BlockListIndex& v, Tensor& dx);
// V^T as an index of its own: V's transposed lists, each block transposed (a copy of the values).
BlockListIndex transposed_blocks(const BlockListIndex& v);
// The ReLU between two block layers, h = relu(x V^T + b) then h P^T, as bits (ops::sparse_relu_ffn),
// on CUDA where relu_bits_take(x, v): f16/bf16, 64 x 64 blocks, V.rows a multiple of 8.
// - block_linear_relu_bits: block_linear(x, v, y, bias, relu = true) that also returns the mask
//   [T, V.rows / 8] u8, bit i of byte j of row t set where y[t][8 j + i] > 0;
// - block_linear_dx_relu_bits: dx = (dy P) where that mask is set (dx [T, P.cols], P.cols =
//   V.rows): with dy P the gradient of h, the gradient before the ReLU. Returns the column sums of
//   dx (f32 [P.cols]): the bias b's gradient. Needs P's transposed lists (block_linear_dx) and dy
//   16-byte aligned, as x.
bool relu_bits_take(const Tensor& x, const BlockListIndex& v);
// Whether both halves run for x, fc's blocks v and the next layer's blocks p (p.cols == v.rows),
// its backward's dy [T, p.rows] being contiguous and 16-byte aligned: relu_bits_take(x, v), and p
// of v's dtype, 64 x 64 blocks, 16-byte aligned, with its transposed lists and a multiple of 8
// outputs (dy's rows are read in 16-byte units).
bool relu_bits_pair_takes(const Tensor& x, const BlockListIndex& v, const BlockListIndex& p);
Tensor block_linear_relu_bits(const Tensor& x, const BlockListIndex& v, Tensor& y, const Tensor& bias = {});
Tensor block_linear_dx_relu_bits(const Tensor& dy, const BlockListIndex& p, const Tensor& mask, Tensor& dx);

// The gradient for B of the two above: dB = A^T * G for G [M, N], dB [K, N], reading only the
// listed micro-tiles of A (the forward's index; no detection).
void condense_gemm_tn(const KListIndex& a, const Tensor& g, Tensor& db, Write write = Write::store);
void block_gemm_tn(const BlockListIndex& a, const Tensor& g, Tensor& db, Write write = Write::store);

// ---- sampled output --------------------------------------------------------------------------------
// Only the micro-tiles of C = op(A) * op(B) that `out` lists are computed, written compactly into
// out.values in the index's order (the gradient of a sparse operand: dA = G * B^T at A's
// micro-tiles). a_trans / b_trans: A given as [K, M], B given as [N, K].
void sampled_gemm(const Tensor& a, const Tensor& b, KListIndex& out, bool a_trans = false,
                  bool b_trans = false);
void sampled_gemm(const Tensor& a, const Tensor& b, BlockListIndex& out, bool a_trans = false,
                  bool b_trans = false);

// Whether this build dispatches CUDA operands to the CUDA PIT GEMMs (ops/pit/cuda/gemm*.cu);
// when false a CUDA operand throws naming what is missing. (Addition to the contract.)
bool cuda_gemm_built();

}  // namespace pit::sparse
