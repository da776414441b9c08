#pragma once
// Detection: read a tensor (or its mask) once and build the PitIndex (ops/pit/index.h) that the
// PIT kernels consume. Runs on the tensor's device: the CPU version (ops/pit/cpu/detect.cpp) is
// the reference; the CUDA version (ops/pit/cuda/detect.cu) runs on the current stream, keeps
// every count and offset on the GPU and never synchronizes with the host, so the consuming
// kernel launches right behind it.
//
// The operand is viewed as a row-major matrix [rows, cols]: a tensor of rank > 2 as
// [prod(leading dims), last dim]; it need not be contiguous (a copy is made when it is not).
// An element is non-zero when it compares unequal to 0 (NaN is non-zero, -0 is zero).
//
// Capacities: every index is allocated for the worst case (all micro-tiles non-zero) so that
// the host never needs the count; entries past the count are unspecified.
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "core/tensor.h"
#include "ops/pit/index.h"

namespace pit::sparse {

// mask (optional): the declared sparsity pattern, shaped like the operand (any dtype, non-zero
// = kept). With a mask, a micro-tile is listed when its mask has a non-zero element (the
// operand's values do not decide) and condensed values hold the operand where the mask is
// non-zero and 0 elsewhere: the operand is `a * (mask != 0)`.
struct DetectOptions {
  bool values = true;       // write the condensed values (idx.values)
  bool transposed = false;  // also build the transposed lists (for backward), same pass
  Tensor mask = {};
};

// ---- row sets (M-gather) -------------------------------------------------------------------
// segment_cols == 0: one segment listing the rows of `a` with a non-zero element.
// segment_cols == w > 0: ceil(cols / w) segments (row micro-tiles 1 x w); segment s lists the
// rows whose columns [s*w, s*w + w) hold a non-zero. idx.segment_cols = w.
// mask (optional): shaped like `a`, or [rows] (a row mask, e.g. padding: row i is listed in
// every segment when mask[i] != 0); `a`'s values are then not read.
RowSetIndex detect_rows(const Tensor& a, int64_t segment_cols = 0, const Tensor& mask = {});

// MoE routing: expert_of [T, k] (i32 or i64) sends token t to expert expert_of[t, j]. Segment e
// lists the tokens routed to e, ascending (t, then j); idx.num_rows = T; capacity T * k.
// A negative id drops that assignment (capacity overflow). gates [T, k] (optional, floating):
// idx.weights[entry] = gates[t, j] in f32. On the CPU an id >= num_experts throws; a kernel
// cannot throw, so on CUDA such an id is dropped like a negative one.
RowSetIndex rows_from_routing(const Tensor& expert_of, int64_t num_experts,
                              const Tensor& gates = {});

// ---- K lists (micro-tile r x 1), r in {16, 32, 64, 128} on CUDA (any r >= 1 on the CPU) -------
KListIndex detect_k_lists(const Tensor& a, int64_t r, const DetectOptions& options = {});

// ---- block lists (micro-tile b x b), b in {16, 32, 64} on CUDA (any b >= 1 on the CPU) --------
BlockListIndex detect_blocks(const Tensor& a, int64_t b, const DetectOptions& options = {});

// ---- counts and densities ------------------------------------------------------------------
// The number of listed entries (offsets[last]) as a device scalar (i32 [1], a view: no copy, no
// sync) and read back to the host (one synchronization on CUDA).
Tensor count_tensor(const RowSetIndex& idx);
Tensor count_tensor(const KListIndex& idx);
Tensor count_tensor(const BlockListIndex& idx);
int64_t read_count(const RowSetIndex& idx);
int64_t read_count(const KListIndex& idx);
int64_t read_count(const BlockListIndex& idx);

// Non-zero micro-tiles of `a` (or of `mask`, when given) for each candidate tile shape, counted
// in one read of the tensor, without building an index: an i64 tensor [tiles.size()] on a's
// device (no sync). The planner divides by the number of tiles to get each cover's density.
Tensor count_micro_tiles(const Tensor& a, const std::vector<MicroTile>& tiles,
                         const Tensor& mask = {});
// The same counts read back to the host (the planner's one synchronisation; on CUDA through a
// pinned buffer).
std::vector<int64_t> read_micro_tile_counts(const Tensor& a, const std::vector<MicroTile>& tiles,
                                            const Tensor& mask = {});
// The planner's counts on the host, with the number of micro-tiles looked at: on CUDA from a
// sample of the operand when it is larger than sample_bytes (about that many bytes read, in
// regions spread over every band of rows and every strip of columns; 0: all of it), in one
// launch whose result the host picks up from mapped memory; on the CPU always exact.
TileCounts planner_counts(const Tensor& a, const std::vector<MicroTile>& tiles, const Tensor& mask = {},
                          int64_t sample_bytes = 0);

// planner_counts in two steps, for a planner that does not wait (planner.h PlanSite): each call
// launches the counts of `a` into `ahead` and returns the newest counts back: with `wait` this
// call's (as planner_counts), else the previous call's if they are back (else nullopt). On the
// CPU: this call's, exact. `ahead` is made for the first device it sees; on another device the
// call starts it afresh and waits.
namespace cuda {
struct CountSlots;
}
struct CountsAhead {
  std::shared_ptr<cuda::CountSlots> slots;
  int device = -1;
};
std::optional<TileCounts> planner_counts_ahead(CountsAhead& ahead, const Tensor& a, const std::vector<MicroTile>& tiles,
                                               const Tensor& mask, int64_t sample_bytes, bool wait);

// ---- back to dense -------------------------------------------------------------------------
// The dense [rows, cols] matrix that an index with values describes (zeros outside the listed
// micro-tiles), in the values' dtype, on their device: the gradient of a sparse operand.
Tensor to_dense(const KListIndex& idx);
Tensor to_dense(const BlockListIndex& idx);
// The element mask [rows, cols] (u8, 1 inside listed micro-tiles) of an index: what the sparse
// operand's micro-tile cover keeps. For tests and the dense reference of the PIT ops.
Tensor cover_mask(const KListIndex& idx);
Tensor cover_mask(const BlockListIndex& idx);

// A copy of `idx` that shares its index arrays and owns a fresh (uninitialised) values tensor of
// `dtype`: the output of sampled_gemm (the gradient of the sparse operand at its micro-tiles).
KListIndex with_new_values(const KListIndex& idx, DType dtype);
BlockListIndex with_new_values(const BlockListIndex& idx, DType dtype);

// Detection calls made by this process (every detect_* and rows_from_routing call counts one):
// tests use it to prove that backward runs no detection of its own.
uint64_t detection_calls();

}  // namespace pit::sparse
