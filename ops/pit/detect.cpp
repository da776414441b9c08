// Detection entry points: validate, view the operand as [rows, cols], then run the CPU
// reference (ops/pit/cpu/detect.cpp) or the CUDA kernels (ops/pit/cuda/detect.cu).
#include "ops/pit/detect.h"

#include <atomic>
#include <limits>

#include "ops/pit/cpu/detect.h"
#if PIT_WITH_CUDA
#include "ops/pit/cuda/detect.h"
#endif

namespace pit::sparse {
namespace {

std::atomic<uint64_t> g_detections{0};

// a as a contiguous [rows, cols] matrix.
Tensor as_matrix(const Tensor& a, const char* op, const char* what) {
  PIT_CHECK(a.defined(), op, ": ", what, " is undefined");
  PIT_CHECK(a.dim() >= 1, op, ": ", what, " must have at least one dimension");
  PIT_CHECK(a.numel() < std::numeric_limits<int32_t>::max(), op, ": ", what, " of shape ",
            shape_str(a.shape()), " has 2^31 elements or more; PIT indices are int32: split it");
  return a.contiguous().view({leading_rows(a.shape()), a.size(-1)});
}

// The mask as bytes (bool or u8; other dtypes become bool: non-zero = kept), shaped `shape`.
Tensor mask_bytes(const Tensor& mask, const Tensor& a, const Shape& shape, const char* op) {
  PIT_CHECK(mask.device() == a.device(), op, ": the mask is on ", mask.device().str(),
            " but the operand is on ", a.device().str(), "; move one of them (Tensor::to)");
  const Tensor m = (mask.dtype() == DType::u8 || mask.dtype() == DType::boolean)
                       ? mask
                       : mask.to(DType::boolean);
  return m.contiguous().view(shape);
}

void check_values_dtype(const Tensor& a, bool values, const char* op) {
  if (!values) return;
  PIT_CHECK(is_floating(a.dtype()), op, ": condensed values need a floating operand, got ",
            dtype_name(a.dtype()), "; pass DetectOptions{.values = false} for a pattern only");
}

template <typename Fn>
auto on_device(const Tensor& a, const char* op, Fn&& fn) {
  (void)op;
  check_device(a.device());
  ++g_detections;
  return fn(a.is_cuda());
}

cpu::TileLists detect_tiles(const Tensor& a_in, int64_t tr, int64_t tc, const DetectOptions& o,
                            const char* op) {
  const Tensor a = as_matrix(a_in, op, "the operand");
  check_values_dtype(a, o.values, op);
  Tensor mask;
  if (o.mask.defined()) {
    PIT_CHECK(o.mask.shape() == a_in.shape(), op, ": mask of shape ", shape_str(o.mask.shape()),
              " does not match the operand's shape ", shape_str(a_in.shape()));
    mask = mask_bytes(o.mask, a_in, a.shape(), op);
  }
  return on_device(a, op, [&](bool cuda) {
    if (!cuda) return cpu::detect_tiles(a, mask, tr, tc, o.values, o.transposed);
#if PIT_WITH_CUDA
    return cuda::detect_tiles(a, mask, tr, tc, o.values, o.transposed, current_stream(a.device()));
#else
    PIT_THROW(op, ": built without CUDA");
#endif
  });
}

}  // namespace

uint64_t detection_calls() { return g_detections.load(); }

RowSetIndex detect_rows(const Tensor& a_in, int64_t segment_cols, const Tensor& mask) {
  const char* op = "detect_rows";
  PIT_CHECK(segment_cols >= 0, op, ": segment_cols must be >= 0 (0: one segment), got ", segment_cols);
  const Tensor a = as_matrix(a_in, op, "the operand");
  Tensor pattern = a;
  if (mask.defined()) {
    const bool row_mask = mask.numel() == a.size(0) && (mask.dim() == 1 || mask.shape() != a_in.shape());
    PIT_CHECK(mask.shape() == a_in.shape() || row_mask, op, ": mask of shape ",
              shape_str(mask.shape()), " must have the operand's shape ", shape_str(a_in.shape()),
              " or be a row mask of ", a.size(0), " elements");
    pattern = mask_bytes(mask, a_in, row_mask ? Shape{a.size(0), 1} : a.shape(), op);
  }
  return on_device(a, op, [&](bool cuda) {
    if (!cuda) return cpu::detect_rows(pattern, a.size(1), segment_cols);
#if PIT_WITH_CUDA
    return cuda::detect_rows(pattern, a.size(1), segment_cols, current_stream(a.device()));
#else
    PIT_THROW(op, ": built without CUDA");
#endif
  });
}

RowSetIndex rows_from_routing(const Tensor& expert_of, int64_t num_experts, const Tensor& gates) {
  const char* op = "rows_from_routing";
  PIT_CHECK(expert_of.defined() && expert_of.dim() == 2, op, ": expert_of must be [T, k], got ",
            expert_of.defined() ? shape_str(expert_of.shape()) : std::string("undefined"));
  PIT_CHECK(expert_of.dtype() == DType::i32 || expert_of.dtype() == DType::i64, op,
            ": expert_of must be i32 or i64, got ", dtype_name(expert_of.dtype()));
  PIT_CHECK(num_experts >= 1, op, ": num_experts must be >= 1, got ", num_experts);
  PIT_CHECK(expert_of.numel() < std::numeric_limits<int32_t>::max(), op, ": too many assignments");
  if (gates.defined()) {
    PIT_CHECK(gates.shape() == expert_of.shape(), op, ": gates of shape ", shape_str(gates.shape()),
              " must match expert_of's shape ", shape_str(expert_of.shape()));
    PIT_CHECK(is_floating(gates.dtype()), op, ": gates must be floating, got ", dtype_name(gates.dtype()));
    PIT_CHECK(gates.device() == expert_of.device(), op, ": gates on ", gates.device().str(),
              " but expert_of on ", expert_of.device().str());
  }
  return on_device(expert_of, op, [&](bool cuda) {
    if (!cuda) return cpu::rows_from_routing(expert_of, num_experts, gates);
#if PIT_WITH_CUDA
    const Tensor ids = expert_of.to(DType::i32).contiguous();
    const Tensor g = gates.defined() ? gates.to(DType::f32).contiguous() : Tensor();
    return cuda::rows_from_routing(ids, num_experts, g, current_stream(ids.device()));
#else
    PIT_THROW(op, ": built without CUDA");
#endif
  });
}

KListIndex detect_k_lists(const Tensor& a, int64_t r, const DetectOptions& options) {
  const char* op = "detect_k_lists";
  PIT_CHECK(r >= 1, op, ": the micro-tile height r must be >= 1, got ", r);
  PIT_CHECK(!a.defined() || !a.is_cuda() || r == 16 || r == 32 || r == 64 || r == 128, op,
            ": on CUDA the micro-tile is r x 1 with r in {16, 32, 64, 128}, got r = ", r);
  cpu::TileLists t = detect_tiles(a, r, 1, options, op);
  KListIndex idx;
  idx.offsets = t.offsets;
  idx.k = t.cols;
  idx.values = t.values;
  idx.t_offsets = t.t_offsets;
  idx.t_blocks = t.t_rows;
  idx.t_pos = t.t_pos;
  idx.cols = a.size(-1);
  idx.rows = leading_rows(a.shape());
  idx.block_rows = r;
  return idx;
}

BlockListIndex detect_blocks(const Tensor& a, int64_t b, const DetectOptions& options) {
  const char* op = "detect_blocks";
  PIT_CHECK(b >= 1, op, ": the block size b must be >= 1, got ", b);
  PIT_CHECK(!a.defined() || !a.is_cuda() || b == 16 || b == 32 || b == 64, op,
            ": on CUDA the block is b x b with b in {16, 32, 64}, got b = ", b);
  cpu::TileLists t = detect_tiles(a, b, b, options, op);
  BlockListIndex idx;
  idx.offsets = t.offsets;
  idx.col = t.cols;
  if (t.values.defined()) idx.values = t.values.view({t.values.size(0), b, b});
  idx.t_offsets = t.t_offsets;
  idx.t_rows = t.t_rows;
  idx.t_pos = t.t_pos;
  idx.cols = a.size(-1);
  idx.rows = leading_rows(a.shape());
  idx.block = b;
  return idx;
}

// ---- counts ------------------------------------------------------------------------------------
namespace {
Tensor last_offset(const Tensor& offsets, const char* what) {
  PIT_CHECK(offsets.defined() && offsets.numel() >= 1, "count: the ", what, " index is empty");
  return offsets.slice(0, offsets.numel() - 1, offsets.numel());
}
}  // namespace

Tensor count_tensor(const RowSetIndex& idx) { return last_offset(idx.offsets, "row set"); }
Tensor count_tensor(const KListIndex& idx) { return last_offset(idx.offsets, "K list"); }
Tensor count_tensor(const BlockListIndex& idx) { return last_offset(idx.offsets, "block list"); }
int64_t read_count(const RowSetIndex& idx) { return count_tensor(idx).item<int32_t>(); }
int64_t read_count(const KListIndex& idx) { return count_tensor(idx).item<int32_t>(); }
int64_t read_count(const BlockListIndex& idx) { return count_tensor(idx).item<int32_t>(); }

namespace {
// What the counts read: the operand as a matrix, or its mask as bytes; tiles checked.
Tensor counting_pattern(const Tensor& a_in, const std::vector<MicroTile>& tiles, const Tensor& mask, const char* op) {
  const Tensor a = as_matrix(a_in, op, "the operand");
  for (const MicroTile& t : tiles)
    PIT_CHECK(t.rows >= 1 && t.cols >= 1, op, ": invalid micro-tile ", t.str());
  check_device(a.device());
  if (!mask.defined()) return a;
  PIT_CHECK(mask.shape() == a_in.shape(), op, ": mask of shape ", shape_str(mask.shape()),
            " does not match the operand's shape ", shape_str(a_in.shape()));
  return mask_bytes(mask, a_in, a.shape(), op);
}
}  // namespace

Tensor count_micro_tiles(const Tensor& a, const std::vector<MicroTile>& tiles, const Tensor& mask) {
  const Tensor pattern = counting_pattern(a, tiles, mask, "count_micro_tiles");
  if (!pattern.is_cuda()) return cpu::count_micro_tiles(pattern, tiles);
#if PIT_WITH_CUDA
  return cuda::count_micro_tiles(pattern, tiles, current_stream(pattern.device()));
#else
  PIT_THROW("count_micro_tiles: built without CUDA");
#endif
}

TileCounts planner_counts(const Tensor& a, const std::vector<MicroTile>& tiles, const Tensor& mask,
                          int64_t sample_bytes) {
  const Tensor pattern = counting_pattern(a, tiles, mask, "planner_counts");
  if (pattern.is_cuda()) {
#if PIT_WITH_CUDA
    return cuda::count_for_planner(pattern, tiles, sample_bytes, current_stream(pattern.device()));
#else
    (void)sample_bytes;
    PIT_THROW("planner_counts: built without CUDA");
#endif
  }
  TileCounts r;
  r.nonzero = cpu::count_micro_tiles(pattern, tiles).to_vector<int64_t>();
  for (const MicroTile& t : tiles)
    r.looked.push_back(t.count_in(pattern.size(0), pattern.size(1)));
  return r;
}

std::optional<TileCounts> planner_counts_ahead(CountsAhead& ahead, const Tensor& a, const std::vector<MicroTile>& tiles,
                                               const Tensor& mask, int64_t sample_bytes, bool wait) {
  const Tensor pattern = counting_pattern(a, tiles, mask, "planner_counts");
  if (!pattern.is_cuda()) return planner_counts(a, tiles, mask, sample_bytes);
#if PIT_WITH_CUDA
  const int device = pattern.device().index;
  if (!ahead.slots || ahead.device != device) {
    ahead.slots = cuda::make_count_slots(device);
    ahead.device = device;
    wait = true;
  }
  const StreamRef stream = current_stream(pattern.device());
  cuda::launch_planner_counts(*ahead.slots, pattern, tiles, sample_bytes, stream);
  return cuda::planner_counts_back(*ahead.slots, wait, stream);
#else
  (void)ahead, (void)sample_bytes, (void)wait;
  PIT_THROW("planner_counts: built without CUDA");
#endif
}

std::vector<int64_t> read_micro_tile_counts(const Tensor& a, const std::vector<MicroTile>& tiles,
                                            const Tensor& mask) {
  const Tensor counts = count_micro_tiles(a, tiles, mask);
  if (!counts.is_cuda()) return counts.to_vector<int64_t>();
#if PIT_WITH_CUDA
  return cuda::read_back_i64(counts, current_stream(counts.device()));
#else
  PIT_THROW("read_micro_tile_counts: built without CUDA");
#endif
}

// ---- back to dense -----------------------------------------------------------------------------
namespace {
template <typename Fn>
Tensor tiles_op(const Tensor& probe, Fn&& fn) {
  if (!probe.is_cuda()) return fn(false);
  return fn(true);
}

// An index made on one device and values on another would hand a kernel foreign pointers.
void check_same_device(const Tensor& offsets, const Tensor& cols, const Tensor& values) {
  PIT_CHECK(offsets.device() == values.device() && cols.device() == values.device(), "to_dense: the index is on ",
            offsets.device().str(), " but its values on ", values.device().str(),
            "; detect the index on the values' device");
}
}  // namespace

Tensor to_dense(const KListIndex& idx) {
  PIT_CHECK(idx.values.defined(), "to_dense: the K-list index has no values (detect with values)");
  check_same_device(idx.offsets, idx.k, idx.values);
  return tiles_op(idx.values, [&](bool cuda) {
    if (!cuda) return cpu::tiles_to_dense(idx.offsets, idx.k, idx.values, idx.rows, idx.cols, idx.block_rows, 1);
#if PIT_WITH_CUDA
    return cuda::tiles_to_dense(idx.offsets, idx.k, idx.values, idx.rows, idx.cols, idx.block_rows, 1,
                                current_stream(idx.values.device()));
#else
    PIT_THROW("to_dense: built without CUDA");
#endif
  });
}

Tensor to_dense(const BlockListIndex& idx) {
  PIT_CHECK(idx.values.defined(), "to_dense: the block index has no values (detect with values)");
  check_same_device(idx.offsets, idx.col, idx.values);
  return tiles_op(idx.values, [&](bool cuda) {
    if (!cuda)
      return cpu::tiles_to_dense(idx.offsets, idx.col, idx.values.view({idx.values.size(0), idx.block * idx.block}),
                                 idx.rows, idx.cols, idx.block, idx.block);
#if PIT_WITH_CUDA
    return cuda::tiles_to_dense(idx.offsets, idx.col, idx.values.view({idx.values.size(0), idx.block * idx.block}),
                                idx.rows, idx.cols, idx.block, idx.block,
                                current_stream(idx.values.device()));
#else
    PIT_THROW("to_dense: built without CUDA");
#endif
  });
}

Tensor cover_mask(const KListIndex& idx) {
  if (!idx.offsets.is_cuda()) return cpu::tiles_cover(idx.offsets, idx.k, idx.rows, idx.cols, idx.block_rows, 1);
  return cpu::tiles_cover(idx.offsets.to(Device::cpu()), idx.k.to(Device::cpu()), idx.rows, idx.cols,
                          idx.block_rows, 1)
      .to(idx.offsets.device());
}

Tensor cover_mask(const BlockListIndex& idx) {
  if (!idx.offsets.is_cuda()) return cpu::tiles_cover(idx.offsets, idx.col, idx.rows, idx.cols, idx.block, idx.block);
  return cpu::tiles_cover(idx.offsets.to(Device::cpu()), idx.col.to(Device::cpu()), idx.rows, idx.cols,
                          idx.block, idx.block)
      .to(idx.offsets.device());
}

KListIndex with_new_values(const KListIndex& idx, DType dtype) {
  KListIndex out = idx;
  const int64_t nb = idx.block_rows > 0 ? (idx.rows + idx.block_rows - 1) / idx.block_rows : 0;
  out.values = Tensor::empty({idx.entries >= 0 ? idx.entries : nb * idx.cols, idx.block_rows}, dtype,
                             idx.offsets.device());
  return out;
}

BlockListIndex with_new_values(const BlockListIndex& idx, DType dtype) {
  BlockListIndex out = idx;
  const BlockListView v = idx.view();
  out.values = Tensor::empty({idx.entries >= 0 ? idx.entries : v.capacity, idx.block, idx.block}, dtype,
                             idx.offsets.device());
  return out;
}

}  // namespace pit::sparse
