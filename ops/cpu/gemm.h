#pragma once
#include "ops/gemm_args.h"

namespace pit::cpu {
// OpenBLAS for f32/f64; f16/bf16 are widened to f32, multiplied and rounded back.
void gemm(const GemmArgs& args);
}  // namespace pit::cpu
