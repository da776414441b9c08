#pragma once
// CUDA causal attention (ops/cuda/attention.cu), as plain C++. Same dense layout and contract as
// ops/cpu/attention.h: q, k, v, out and the gradients are [bh][t][dh] in `dtype`, lse is
// [bh][t] f32. Every launch goes on `stream`; nothing synchronizes.
//
// dtypes f32, f16, bf16; head dims 1..kMaxAttentionHeadDim. f16/bf16 with dh 64 or 128 and 16-byte
// aligned pointers run fused tensor-core kernels (mma.sync, f32 accumulation); anything else
// runs the CUDA-core kernels (f32 math). Both are deterministic: no atomics, fixed orders.
#include <cstdint>

#include "core/device.h"
#include "core/dtype.h"
#include "ops/cpu/attention.h"

namespace pit::cuda {

inline constexpr int64_t kMaxAttentionHeadDim = 256;

// Whether the tensor-core path takes this dtype and head dim (pointers aligned aside).
bool attention_uses_tensor_cores(DType dtype, int64_t dh);

void causal_attention(DType dtype, const cpu::AttentionDims& dims, const void* q, const void* k,
                      const void* v, void* out, float* lse, StreamRef stream);

// delta: workspace of bh * t floats (receives D_i = dout_i . out_i).
void causal_attention_backward(DType dtype, const cpu::AttentionDims& dims, const void* dout,
                               const void* q, const void* k, const void* v, const void* out,
                               const float* lse, float* delta, void* dq, void* dk, void* dv,
                               StreamRef stream);

}  // namespace pit::cuda
