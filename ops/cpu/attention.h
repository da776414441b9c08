#pragma once
// CPU causal attention (ops/cpu/attention.cpp): the exact reference the CUDA kernels are tested
// against. Every tensor is dense: q, k, v, out and the gradients are [bh][t][dh] (bh = B * H),
// lse is [bh][t] f32. Row i attends to keys 0..i with scale 1 / sqrt(dh).
//
// Math in f64 for every dtype (f32, f64, f16, bf16 are accepted; results are rounded once on
// store), so the CPU's own rounding is negligible next to any GPU kernel's. The products run on
// OpenBLAS (dgemm) over blocks of query rows.
#include <cstdint>

#include "core/dtype.h"

namespace pit::cpu {

struct AttentionDims {
  int64_t bh = 0;  // batch * heads
  int64_t t = 0;   // sequence length
  int64_t dh = 0;  // head dim
};

// out[i] = sum_j softmax_j(q_i . k_j * scale) v_j over j <= i; lse[i] = log sum_j exp(...).
void causal_attention(DType dtype, const AttentionDims& dims, const void* q, const void* k,
                      const void* v, void* out, float* lse);

// Gradients of sum(dout * out). P is recomputed block by block with the forward's own calls, in
// f64 (the f32 lse saved by the forward would cap f64 gradients at ~1e-7 relative accuracy), and
// D_i = dout_i . out_i uses the saved forward output. Deterministic: dk and dv accumulate over the
// query blocks in order, and no result depends on the thread count.
void causal_attention_backward(DType dtype, const AttentionDims& dims, const void* dout,
                               const void* q, const void* k, const void* v, const void* out,
                               void* dq, void* dk, void* dv);

}  // namespace pit::cpu
