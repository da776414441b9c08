#pragma once
// PitIndex: where the non-zero micro-tiles of a sparse operand are, in the layout the PIT
// kernels consume. Built by detection (ops/pit/detect.h) on the operand's device; every count
// and offset stays on that device so a consumer launches without a host synchronisation. The
// host knows only capacities (worst cases), which size the buffers and the launch grids.
//
// All index arrays are int32 (shapes up to 2^31 elements per operand). The operand is a
// row-major matrix [rows, cols]; a batched or higher-rank operand is viewed as one.
//
// The raw *View structs below are what kernels take (device or host pointers, no ownership);
// the owning structs hold Tensors and hand out views.
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pit::sparse {

// The unit of sparsity: `rows` x `cols` elements. A micro-tile is zero when all its elements
// are zero. 1 x cols: row micro-tiles; r x 1: k micro-tiles (column vectors); b x b: blocks.
struct MicroTile {
  int64_t rows = 1;
  int64_t cols = 1;
  std::string str() const;  // "32x1"
  // How many of these tiles cover a rows x cols matrix (partial ones at the edges included).
  int64_t count_in(int64_t r, int64_t c) const { return ((r + rows - 1) / rows) * ((c + cols - 1) / cols); }
  bool operator==(const MicroTile&) const = default;
};

// Counts of non-zero micro-tiles per candidate shape, over the micro-tiles looked at: all of the
// operand (stride 1) or a sample of 1 / stride of it (the planner's estimate, detect.h).
struct TileCounts {
  std::vector<int64_t> nonzero, looked;
  int64_t stride = 1;
};

// ---- row sets (M-gather) -----------------------------------------------------------------
// Rows of a [num_rows, K] operand, grouped in segments. A segment is an expert (MoE, from a
// routing assignment), a K-chunk (row micro-tiles 1 x w: segment s covers columns
// [s*w, (s+1)*w)), or the whole operand (one segment).
//   rows[offsets[s] .. offsets[s+1])  the rows of segment s, ascending within a segment
//   offsets[num_segments]             the total number of entries (<= capacity)
//   weights (optional, f32)           one scale per entry (MoE gate weights for the combine)
struct RowSetView {
  const int32_t* rows = nullptr;
  const int32_t* offsets = nullptr;
  const float* weights = nullptr;
  int64_t num_rows = 0;
  int64_t num_segments = 0;
  int64_t capacity = 0;
};

struct RowSetIndex {
  Tensor rows;     // i32 [capacity]
  Tensor offsets;  // i32 [num_segments + 1]
  Tensor weights;  // f32 [capacity] or undefined
  int64_t num_rows = 0;
  int64_t num_segments = 0;
  int64_t segment_cols = 0;  // w for K-chunk segments; 0 when segments are not K-chunks
  RowSetView view() const;
  std::string str() const;  // sizes and device; reads nothing back from the device
};

// Checks shared by the ops that take an index; each message names the op, the array and `fix`
// (where a right index comes from, e.g. "build the index with rows_from_routing").
// t: a contiguous 1-D i32 array of at least min_numel entries on `device`.
void check_index_array(const Tensor& t, int64_t min_numel, Device device, const char* op, const char* what,
                       const char* fix);
// idx.offsets (num_segments + 1 entries) and idx.rows by check_index_array, and a segment at least.
void check_row_set(const RowSetIndex& idx, Device device, const char* op, const char* fix);
// idx.weights: contiguous f32, one per entry of idx.rows' capacity, on `device`.
void check_row_set_weights(const RowSetIndex& idx, Device device, const char* op, const char* fix);

// ---- K lists (K-condense) -------------------------------------------------------------------
// Micro-tile r x 1 on A [M, K]: row block b (rows [b*r, b*r+r)) lists the k whose r-vector is
// non-zero.
//   k[offsets[b] .. offsets[b+1])     ascending k of block b; num_blocks = ceil(M / r)
//   values (optional, A's dtype)      condensed A, [capacity, r]: entry j holds A[b*r + i, k[j]]
//                                     for i < r (rows past M are 0), written in the order the
//                                     consumer reads, so SRead stays coalesced
//   transposed (optional)             for each k, the blocks b listing it:
//     t_blocks[t_offsets[k] .. t_offsets[k+1]), and t_pos: that entry's position j in `k`
// Compact index (entries >= 0): the host knows the number of listed entries (an index built
// from a declared pattern, e.g. a pruned weight's mask: ops/pit/compact.h), and k / values hold
// exactly that many entries instead of the capacity. Detection leaves entries = -1.
struct KListView {
  const int32_t* offsets = nullptr;
  const int32_t* k = nullptr;
  const void* values = nullptr;
  const int32_t* t_offsets = nullptr;
  const int32_t* t_blocks = nullptr;
  const int32_t* t_pos = nullptr;
  int64_t rows = 0, cols = 0;  // M, K
  int64_t block_rows = 0;      // r
  int64_t num_blocks = 0;      // ceil(M / r)
  int64_t capacity = 0;        // num_blocks * K
};

struct KListIndex {
  Tensor offsets;  // i32 [num_blocks + 1]
  Tensor k;        // i32 [capacity]
  Tensor values;   // [capacity, r] or undefined
  Tensor t_offsets, t_blocks, t_pos;  // i32 [K + 1], [capacity], [capacity] or undefined
  int64_t rows = 0, cols = 0, block_rows = 0;
  int64_t entries = -1;  // listed entries when known on the host (k, values sized to it); else -1
  KListView view() const;
  std::string str() const;
};

// ---- block lists (BSR-like) -----------------------------------------------------------------
// Micro-tile b x b on [M, K]: block row i lists the block columns with a non-zero block.
//   col[offsets[i] .. offsets[i+1])   ascending block columns of block row i
//   values (optional)                 [capacity, b, b], block j row-major (elements past the
//                                     matrix edge are 0)
//   transposed (optional)             for block column c: t_rows[t_offsets[c] .. t_offsets[c+1])
//                                     ascending block rows, t_pos the entry's position in `col`
// entries >= 0: a compact index (col and values hold exactly that many entries), as K lists.
struct BlockListView {
  const int32_t* offsets = nullptr;
  const int32_t* col = nullptr;
  const void* values = nullptr;
  const int32_t* t_offsets = nullptr;
  const int32_t* t_rows = nullptr;
  const int32_t* t_pos = nullptr;
  int64_t rows = 0, cols = 0;
  int64_t block = 0;
  int64_t block_rows = 0, block_cols = 0;  // ceil(rows / b), ceil(cols / b)
  int64_t capacity = 0;                    // block_rows * block_cols
};

struct BlockListIndex {
  Tensor offsets, col, values;
  Tensor t_offsets, t_rows, t_pos;
  int64_t rows = 0, cols = 0, block = 0;
  int64_t entries = -1;  // listed entries when known on the host; else -1 (arrays at capacity)
  BlockListView view() const;
  std::string str() const;
};

}  // namespace pit::sparse
