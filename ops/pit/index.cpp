// PitIndex views and descriptions (ops/pit/index.h).
#include "ops/pit/index.h"

#include <sstream>

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
