#pragma once
// CUDA cross-entropy kernels (ops/cuda/loss.cu), as plain C++: the same layout and contract as
// ops/cpu/loss.h (CrossEntropyArgs), on f32, f16, bf16 and f64 logits with i64 or i32 targets.
// Math in f32 (f64 for f64). A kernel cannot throw: a target outside [0, classes) that is not
// ignore_index makes that row's loss, lse and gradient NaN (instead of reading out of bounds),
// and the forward records it in the device's error slot (core/device_error.h), so the host's
// next read (to(cpu), item(), a stream synchronisation) throws a pit::Error naming the target,
// its row and the class count; kernels::cross_entropy checks CPU targets on the host before
// launching. Every launch goes on `stream`; nothing synchronizes; results are deterministic
// (fixed merge orders, no atomics on the data).
#include <cstdint>

#include "core/device.h"
#include "ops/cpu/loss.h"

namespace pit::cuda {

void cross_entropy(const cpu::CrossEntropyArgs& a, const void* logits, int64_t stride,
                   const void* targets, void* loss, void* lse, StreamRef stream);
void cross_entropy_backward(const cpu::CrossEntropyArgs& a, const void* grad_loss,
                            const void* logits, int64_t stride, const void* targets,
                            const void* lse, void* dlogits, StreamRef stream);

}  // namespace pit::cuda
