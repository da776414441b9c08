#pragma once
// CPU moe_activation_backward: the reference (and CPU path) of ops/pit/moe_grad.h, with the same
// contract. Inputs are validated by ops/pit/moe_grad.cpp (shapes, dtypes, devices, contiguity);
// expert_of is undefined exactly when dgates is; gated_h undefined: not written.
#include "ops/pit/moe_grad.h"

namespace pit::sparse::cpu {

void moe_activation_backward(UnaryOp act, const Tensor& gu, const Tensor& pre, const Tensor& h,
                             const RowSetIndex& idx, const Tensor& expert_of, Tensor& dpre, Tensor& dgates,
                             Tensor& gated_h);

}  // namespace pit::sparse::cpu
