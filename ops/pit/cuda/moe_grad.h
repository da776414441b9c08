#pragma once
// CUDA moe_activation_backward (ops/pit/cuda/moe_grad.cu): the contract of ops/pit/moe_grad.h, on
// `stream`, without host synchronisation. Inputs are validated by ops/pit/moe_grad.cpp (shapes,
// dtypes f32/bf16/f16, devices, contiguity); expert_of is undefined exactly when dgates is.
#include "core/device.h"
#include "ops/pit/moe_grad.h"

namespace pit::sparse::cuda {

void moe_activation_backward(UnaryOp act, const Tensor& gu, const Tensor& pre, const RowSetIndex& idx,
                             const Tensor& expert_of, Tensor& dpre, Tensor& dgates, StreamRef stream);

}  // namespace pit::sparse::cuda
