#pragma once
// Tensor maps for the TMA loads of ops/cuda/tma_ptx.cuh, built on the host: a row-major 2-D matrix
// of 16-bit elements read in boxes of `box_rows` rows x 64 columns (128 bytes) with the 128-byte
// swizzle of the wgmma tiles. cuTensorMapEncodeTiled is a driver function: it is looked up through
// the runtime (cudaGetDriverEntryPointByVersion), so nothing links libcuda directly.
#include <cuda.h>

#include <cstdint>

#include "core/dtype.h"

namespace pit::cuda {

// The map of `rows` x `cols` elements at `base` (row stride `ld` elements) in boxes of `box_rows`
// (1 to 256) x 64. dtype f16 or bf16; base 16-byte aligned and ld * 2 bytes a multiple of 16
// (else it throws, naming the operand `what`). Coordinates outside rows x cols read as zeros.
CUtensorMap tensor_map_2d(DType dtype, const void* base, int64_t rows, int64_t cols, int64_t ld, int box_rows,
                          const char* what);

// The same over `mats` matrices of rows x cols, `mat_stride` elements apart (a stack [mats, rows,
// cols], e.g. experts' weights), in boxes of box_rows x 64 of one matrix: coordinates (column, row,
// matrix); rows past a matrix's own read as zeros, not as the next matrix's. mat_stride * 2 bytes
// a multiple of 16.
CUtensorMap tensor_map_3d(DType dtype, const void* base, int64_t mats, int64_t rows, int64_t cols, int64_t ld,
                          int64_t mat_stride, int box_rows, const char* what);

}  // namespace pit::cuda
