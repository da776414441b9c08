#pragma once
// CPU dropout kernels over n contiguous elements. Element i is kept iff
// philox_uniform(seed, offset, i) >= p (core/random.h), the same rule as the CUDA kernels, so the
// masks agree bit for bit. Kept elements are scaled by `scale` (= 1 / (1 - p)) in f32 (f64 for
// f64) and rounded once; dropped ones are 0. mask: n u8 of 0 / 1.
#include <cstdint>

#include "core/dtype.h"

namespace pit::cpu {

struct DropoutArgs {
  DType dtype = DType::f32;
  int64_t n = 0;
  float p = 0.0f;       // keep iff uniform >= p (compared in f32, as on the GPU)
  double scale = 1.0;   // 1 / (1 - p)
};

void dropout(const DropoutArgs& a, const void* x, void* y, uint8_t* mask, uint64_t seed,
             uint64_t offset);
// dx = mask ? dy * scale : 0.
void dropout_backward(const DropoutArgs& a, const void* dy, const uint8_t* mask, void* dx);

}  // namespace pit::cpu
