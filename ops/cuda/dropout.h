#pragma once
// CUDA dropout kernels (ops/cuda/dropout.cu), as plain C++: the same contract as
// ops/cpu/dropout.h (the masks are identical to the CPU's, bit for bit), on f32, f16, bf16 and
// f64. Every launch goes on `stream`; nothing synchronizes.
#include <cstdint>

#include "core/device.h"
#include "ops/cpu/dropout.h"

namespace pit::cuda {

void dropout(const cpu::DropoutArgs& a, const void* x, void* y, uint8_t* mask, uint64_t seed,
             uint64_t offset, StreamRef stream);
void dropout_backward(const cpu::DropoutArgs& a, const void* dy, const uint8_t* mask, void* dx,
                      StreamRef stream);

}  // namespace pit::cuda
