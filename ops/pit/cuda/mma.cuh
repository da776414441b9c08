#pragma once
// Tensor-core and async-copy primitives of the PIT GEMMs: the shared PTX wrappers of
// ops/cuda/mma_ptx.cuh (cp.async, ldmatrix, mma.sync.m16n8k16), seen from dev::. Device-only.
#include "ops/cuda/mma_ptx.cuh"

namespace pit::sparse::cuda::dev {
using namespace pit::cuda::ptx;
}  // namespace pit::sparse::cuda::dev
