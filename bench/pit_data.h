#pragma once
// Sparse benchmark operands made on the GPU (bench/pit_data.cu): random values in [-1, 1) whose
// micro-tiles tr x tc are kept with probability `density` (a counter-based hash of the seed and
// the tile, so the pattern is random and reproducible), and the cuSPARSE Blocked-ELL arrays of a
// block index.
#include <cstdint>

#include "core/tensor.h"
#include "ops/pit/index.h"

namespace pit::bench {

// a: a contiguous CUDA matrix [rows, cols] (f32, f16 or bf16), overwritten.
void fill_sparse(Tensor& a, int64_t tr, int64_t tc, double density, uint64_t seed);

// Blocked-ELL (block b = idx.block) of a block index with values: col_ind [rows / b, slots]
// (-1 for an empty slot), values [rows, slots * b]; slots = the largest blocks per block row.
// rows and cols must be multiples of b.
void blocked_ell(const sparse::BlockListIndex& idx, int64_t slots, Tensor& col_ind, Tensor& values);

}  // namespace pit::bench
