#pragma once
#include "ops/gemm_args.h"

namespace pit::cpu {
// OpenBLAS for f32/f64; f16/bf16 are widened to f32, multiplied and rounded back. The first call
// checks OpenBLAS's kernels for this CPU, every call its thread count (ops/cpu/blas_setup.h).
void gemm(const GemmArgs& args);
}  // namespace pit::cpu
