#pragma once
// CUDA moe_activation_backward (ops/pit/cuda/moe_grad.cu): the contract of ops/pit/moe_grad.h, on
// `stream`, without host synchronisation. Inputs are validated by ops/pit/moe_grad.cpp (shapes,
// dtypes f32/bf16/f16, devices, contiguity); expert_of is undefined exactly when dgates is;
// gated_h undefined: not written.
#include "core/device.h"
#include "ops/pit/moe_grad.h"

namespace pit::sparse::cuda {

void moe_activation_backward(UnaryOp act, const Tensor& gu, const Tensor& pre, const Tensor& h,
                             const RowSetIndex& idx, const Tensor& expert_of, Tensor& dpre, Tensor& dgates,
                             Tensor& gated_h, StreamRef stream);

}  // namespace pit::sparse::cuda
