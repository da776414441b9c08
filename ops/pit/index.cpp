// PitIndex views, descriptions and the checks shared by the ops that take an index (ops/pit/index.h).
#include "ops/pit/index.h"

#include <sstream>
#include <string>

#include "core/error.h"

namespace pit::sparse {
namespace {

template <typename T>
const T* ptr(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.data_ptr()) : nullptr;
}

std::string device_of(const Tensor& t) { return t.defined() ? t.device().str() : "none"; }

}  // namespace

std::string MicroTile::str() const {
  std::ostringstream os;
  os << rows << "x" << cols;
  return os.str();
}

RowSetView RowSetIndex::view() const {
  RowSetView v;
  v.rows = ptr<int32_t>(rows);
  v.offsets = ptr<int32_t>(offsets);
  v.weights = ptr<float>(weights);
  v.num_rows = num_rows;
  v.num_segments = num_segments;
  v.capacity = rows.defined() ? rows.numel() : 0;
  return v;
}

std::string RowSetIndex::str() const {
  std::ostringstream os;
  os << "RowSetIndex(rows " << num_rows << ", segments " << num_segments;
  if (segment_cols > 0) os << " of " << segment_cols << " cols";
  os << ", capacity " << (rows.defined() ? rows.numel() : 0) << (weights.defined() ? ", weights" : "")
     << ", " << device_of(offsets) << ")";
  return os.str();
}

void check_index_array(const Tensor& t, int64_t min_numel, Device device, const char* op, const char* what,
                       const char* fix) {
  PIT_CHECK(t.defined() && t.dtype() == DType::i32 && t.dim() == 1 && t.numel() >= min_numel, op, ": index array ",
            what, " must be 1-D i32 with at least ", min_numel, " entries, got ",
            t.defined() ? std::string(dtype_name(t.dtype())) + " " + shape_str(t.shape()) : std::string("undefined"), "; ", fix);
  PIT_CHECK(t.device() == device, op, ": index array ", what, " is on ", t.device().str(),
            " but the operands are on ", device.str(), "; ", fix);
  PIT_CHECK(t.is_contiguous(), op, ": index array ", what, " must be contiguous; ", fix);
}

void check_row_set(const RowSetIndex& idx, Device device, const char* op, const char* fix) {
  PIT_CHECK(idx.num_segments >= 1, op, ": the row set has no segment, got ", idx.str(), "; ", fix);
  check_index_array(idx.offsets, idx.num_segments + 1, device, op, "offsets", fix);
  check_index_array(idx.rows, 0, device, op, "rows", fix);
}

void check_row_set_weights(const RowSetIndex& idx, Device device, const char* op, const char* fix) {
  const Tensor& w = idx.weights;
  PIT_CHECK(w.defined() && w.dtype() == DType::f32 && w.is_contiguous() && w.numel() >= idx.rows.numel() &&
                w.device() == device,
            op, ": the entries' weights (idx.weights) must be contiguous f32, one per entry (at least ",
            idx.rows.numel(), ") on ", device.str(), ", got ",
            w.defined() ? std::string(dtype_name(w.dtype())) + " " + shape_str(w.shape()) + " on " + w.device().str()
                        : std::string("undefined"),
            "; ", fix);
}

KListView KListIndex::view() const {
  KListView v;
  v.offsets = ptr<int32_t>(offsets);
  v.k = ptr<int32_t>(k);
  v.values = values.defined() ? values.data_ptr() : nullptr;
  v.t_offsets = ptr<int32_t>(t_offsets);
  v.t_blocks = ptr<int32_t>(t_blocks);
  v.t_pos = ptr<int32_t>(t_pos);
  v.rows = rows;
  v.cols = cols;
  v.block_rows = block_rows;
  v.num_blocks = block_rows > 0 ? (rows + block_rows - 1) / block_rows : 0;
  v.capacity = v.num_blocks * cols;
  return v;
}

std::string KListIndex::str() const {
  std::ostringstream os;
  os << "KListIndex(" << rows << "x" << cols << ", micro-tile " << block_rows << "x1, "
     << (block_rows > 0 ? (rows + block_rows - 1) / block_rows : 0) << " row blocks"
     << (values.defined() ? ", values " + std::string(dtype_name(values.dtype())) : "")
     << (t_offsets.defined() ? ", transposed" : "") << ", " << device_of(offsets) << ")";
  return os.str();
}

BlockListView BlockListIndex::view() const {
  BlockListView v;
  v.offsets = ptr<int32_t>(offsets);
  v.col = ptr<int32_t>(col);
  v.values = values.defined() ? values.data_ptr() : nullptr;
  v.t_offsets = ptr<int32_t>(t_offsets);
  v.t_rows = ptr<int32_t>(t_rows);
  v.t_pos = ptr<int32_t>(t_pos);
  v.rows = rows;
  v.cols = cols;
  v.block = block;
  v.block_rows = block > 0 ? (rows + block - 1) / block : 0;
  v.block_cols = block > 0 ? (cols + block - 1) / block : 0;
  v.capacity = v.block_rows * v.block_cols;
  return v;
}

std::string BlockListIndex::str() const {
  std::ostringstream os;
  os << "BlockListIndex(" << rows << "x" << cols << ", micro-tile " << block << "x" << block
     << (values.defined() ? ", values " + std::string(dtype_name(values.dtype())) : "")
     << (t_offsets.defined() ? ", transposed" : "") << ", " << device_of(offsets) << ")";
  return os.str();
}

}  // namespace pit::sparse
