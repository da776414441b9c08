#pragma once
// The backward of a K-condense GEMM over its active columns. A [M, K] sparse by k micro-tiles
// (K lists), C = A B: the gradients dB = A^T G and dA = G B^T (kept at A's non-zeros) involve only
// the columns k of A with at least one listed micro-tile: dB's other rows are 0, and so is A there.
// Those columns, as rows of A^T, are an M-gather row set, so both gradients run on the M-gather
// GEMM (gather_gemm: one segment, tensor cores, count on the device) over the active columns only:
//   dB[set] = At G            At = A^T's rows of the set, compact ([K, M], row e = A[:, rows[e]])
//   dA^T[set] = B[set] G^T    then dA = rows_to_columns(that, set, mask = At): A's layout again.
// Why not per micro-tile: a K-list A^T G adds each listed tile's contribution to a row of dB
// that other tiles share (atomics: 1.4 ms of 3.5 for activation sparsity's pass on an H200), and
// the sampled dA scatters tiles into a zeroed matrix. On a ReLU output with skewed neuron rates
// (the case K lists win, 99% zeros) the active columns hold about as much work as the tiles'
// best grouping: 9.0% of the dense product against 9.1% for the union of row blocks over groups
// of 128 columns sorted by tile count (a simulation of pit-bench sparse's h, 128x1 tiles).
// No host synchronisation: the set's size stays on the device; buffers are sized for all K.
#include "core/tensor.h"
#include "ops/pit/index.h"

namespace pit::sparse {

struct ColumnSet {
  RowSetIndex set;  // one segment: the active columns k, ascending; num_rows = K
  Tensor pos;       // i32 [K]: the entry of column k in set.rows, -1 for an inactive column
};

// The columns of A with at least one listed micro-tile (reads the index only).
ColumnSet column_set(const KListIndex& a);

// At [K, M], A's dtype: row e < count is column set.rows[e] of A (from the index's values; rows of
// A no micro-tile lists are 0); rows from count on are not written. cs must be column_set(a): with
// a set of another index, a column of A outside it is an error on the CPU and left out on CUDA
// (never written out of bounds).
Tensor set_columns_t(const KListIndex& a, const ColumnSet& cs);

// out [L, K] from compact rows [K, L] (row e for column set.rows[e]):
//   out[l, k] = rows[pos[k], l] where pos[k] >= 0 and (mask undefined or mask[pos[k], l] != 0), else 0.
// mask: laid out like `rows` (same shape and dtype), e.g. At to keep A's non-zeros.
Tensor rows_to_columns(const Tensor& rows, const ColumnSet& cs, const Tensor& mask = {});

}  // namespace pit::sparse
