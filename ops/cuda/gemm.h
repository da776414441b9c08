#pragma once
#include "core/device.h"
#include "ops/gemm_args.h"

namespace pit::cuda {
// cuBLAS: f32 (full f32, no TF32), f64, and f16/bf16 with f32 accumulation on tensor cores.
void gemm(const GemmArgs& args, StreamRef stream);
}  // namespace pit::cuda
