#pragma once
// CPU moe_activation_backward: the reference (and CPU path) of ops/pit/moe_grad.h, with the same
// contract. Inputs are validated by ops/pit/moe_grad.cpp (shapes, dtypes, devices, contiguity);
// expert_of is undefined exactly when dgates is.
#include "ops/pit/moe_grad.h"

namespace pit::sparse::cpu {

void moe_activation_backward(UnaryOp act, const Tensor& gu, const Tensor& pre, const RowSetIndex& idx,
                             const Tensor& expert_of, Tensor& dpre, Tensor& dgates);

}  // namespace pit::sparse::cpu
