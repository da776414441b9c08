#pragma once
// A pruned weight W [rows, cols] kept compactly: the values of its listed micro-tiles only, in
// the order the PIT GEMMs read them, with a compact index (entries known on the host, arrays
// sized to them: ops/pit/index.h). Weights, gradients and optimizer state laid out like the
// values all scale with the density. The kernel's micro-tile is r x 1 (r rows, one column: K
// lists; r in {16, 32, 64, 128} on CUDA) or b x b (blocks; b in {16, 32, 64} on CUDA).
//
// Values: [entries, tile elements]; entry j holds its micro-tile column-vector (r x 1) or its
// block row-major (b x b); elements past the matrix edge are 0. Entries run by row block, then
// by ascending column: the order of detection (ops/pit/detect.h).
//
// A pattern finer than the micro-tile (element masks: 1x1 pruning) is covered: every micro-tile
// holding a kept element is listed, and `inside` (0/1, laid out like the values) marks the kept
// elements, so gradients and values stay 0 elsewhere.
//
// Dense path: above some density the dense GEMMs beat the PIT kernels; a layout made with
// dense_from <= its density carries `positions`, and sparse_linear then computes with the
// weight scattered to dense and gathers the values' gradient back (compact_gather).
#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "ops/pit/index.h"

namespace pit::sparse {

struct CompactLayout {
  MicroTile tile;         // r x 1 (K lists) or b x b (blocks)
  KListIndex lists;       // r x 1: offsets and k of the listed micro-tiles (values undefined)
  BlockListIndex blocks;  // b x b: offsets and col, and the transposed lists (values undefined)
  Tensor inside;          // f32 [entries, tile elements] 0/1 when the pattern is finer; else undefined
  Tensor positions;       // dense path: i64 [entries * tile elements], flat index into [rows, cols]
                          // of each value (0 past the edge); undefined: PIT kernels
  Tensor positions_inside;  // dense path, micro-tiles crossing the edge: f32 0/1 like the values
  int64_t rows = 0, cols = 0, entries = 0;

  bool is_blocks() const { return tile.cols > 1; }
  int64_t tile_elements() const { return tile.rows * tile.cols; }
  Shape values_shape() const { return {entries, tile_elements()}; }
  Device device() const { return is_blocks() ? blocks.offsets.device() : lists.offsets.device(); }
  bool dense_path() const { return positions.defined(); }
  // The listed micro-tiles over all of them (1 when dense, 0 when empty).
  double density() const;
  std::string str() const;  // "compact 4096x1024, 32x1 micro-tiles, 1234 of 131072 listed, cpu"
};

// The layout of the pattern `mask` ([rows, cols], any dtype, non-zero = kept; on the device the
// layout is wanted) on micro-tile `tile` (r x 1 or b x b). `elements`: the mask is finer than the
// micro-tile, keep `inside`. dense_from: take the dense path (build `positions`) when the listed
// micro-tiles are at least this fraction of all (> 1: never). One host read of the count.
CompactLayout compact_layout(const Tensor& mask, MicroTile tile, bool elements, double dense_from = 2.0);

// The values of w ([rows, cols], w's dtype and device) at the layout's micro-tiles, where `mask`
// (the layout's pattern) keeps them: [entries, tile elements].
Tensor compact_values(const CompactLayout& layout, const Tensor& w, const Tensor& mask);

// The values of a dense [rows, cols] matrix at a dense-path layout's micro-tiles, by its
// positions (no detection): [entries, tile elements], zeros past the edge.
Tensor compact_gather(const CompactLayout& layout, const Tensor& dense);

// Values laid out by `layout` back to the dense [rows, cols] matrix (zeros outside).
Tensor compact_to_dense(const CompactLayout& layout, const Tensor& values);

// The layout's index with `values` attached, ready for the PIT GEMMs.
KListIndex lists_with(const CompactLayout& layout, const Tensor& values);
BlockListIndex blocks_with(const CompactLayout& layout, const Tensor& values);
// W^T [cols, rows] as a block index (blocks layouts): the transposed lists, with `values`
// transposed block by block into their order (one gather and one transpose copy of the values).
BlockListIndex transposed_blocks_with(const CompactLayout& layout, const Tensor& values);

}  // namespace pit::sparse
