#pragma once
// CPU detection (the reference and the CPU path). Inputs are validated by ops/pit/detect.cpp:
// 2-D, contiguous, on the CPU; masks are bool/u8 bytes.
#include <cstdint>
#include <vector>

#include "core/convert.h"
#include "core/tensor.h"
#include "ops/pit/index.h"

namespace pit::sparse::cpu {

// Non-zero as detection counts it: -0 is zero, NaN is non-zero (NaN != 0).
template <typename T>
bool nonzero(T v) {
  return convert<double>(v) != 0.0;
}

// The lists of micro-tiles tr x tc of a [rows, cols] in block-row order (the common form of K
// lists, tc = 1, and block lists, tc = tr). `pattern` decides which tiles are listed (a itself,
// or the u8 mask); values (when asked) are `a` where the pattern is non-zero, 0 elsewhere, each
// tile row-major ([capacity, tr * tc]).
struct TileLists {
  Tensor offsets, cols, values, t_offsets, t_rows, t_pos;
};
TileLists detect_tiles(const Tensor& a, const Tensor& mask, int64_t tr, int64_t tc, bool values,
                       bool transposed);

// pattern: [rows, cols] (the operand or its mask) or [rows, 1] (a row mask); w: segment width
// (0: one segment over all `cols`).
RowSetIndex detect_rows(const Tensor& pattern, int64_t cols, int64_t w);

RowSetIndex rows_from_routing(const Tensor& expert_of, int64_t num_experts, const Tensor& gates);

// Counts for each candidate tile shape (i64 [tiles.size()]).
Tensor count_micro_tiles(const Tensor& pattern, const std::vector<MicroTile>& tiles);

// Scatter / cover of tile lists back to dense [rows, cols].
Tensor tiles_to_dense(const Tensor& offsets, const Tensor& cols, const Tensor& values, int64_t rows,
                      int64_t ncols, int64_t tr, int64_t tc);
Tensor tiles_cover(const Tensor& offsets, const Tensor& cols, int64_t rows, int64_t ncols,
                   int64_t tr, int64_t tc);

}  // namespace pit::sparse::cpu
