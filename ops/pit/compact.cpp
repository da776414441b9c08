// Compact weights (ops/pit/compact.h): layouts come from detection on the pattern itself, then
// every array is cut to the entries (one host read of the count), so nothing is sized to the
// capacity once the layout is made.
#include "ops/pit/compact.h"

#include <sstream>
#include <vector>

#include "ops/kernels.h"
#include "ops/pit/detect.h"
#include "ops/pit/gemm.h"

namespace pit::sparse {
namespace {

void check_tile(MicroTile tile, const char* op) {
  PIT_CHECK(tile.rows >= 1 && (tile.cols == 1 || tile.cols == tile.rows), op,
            ": the micro-tile must be r x 1 or b x b, got ", tile.str());
}

void check_matrix(const Tensor& t, const char* op, const char* what) {
  PIT_CHECK(t.defined() && t.dim() == 2, op, ": ", what, " must be a matrix [rows, cols], got ",
            shape_of(t));
}

// The first n entries of a detected array, as a tensor of their own (the capacity freed).
Tensor first(const Tensor& t, int64_t n) { return t.slice(0, 0, n).clone(); }

// The dense path's gather (compact.h): flat dense positions of every value element, and, when some
// micro-tiles cross the matrix edge, the 0/1 factor that zeroes their elements past it (those
// read position 0 instead). Built on the host, once per layout.
void set_positions(CompactLayout& l) {
  const Tensor& offsets_t = l.is_blocks() ? l.blocks.offsets : l.lists.offsets;
  const Tensor& cols_t = l.is_blocks() ? l.blocks.col : l.lists.k;
  const std::vector<int32_t> offsets = offsets_t.to(Device::cpu()).to_vector<int32_t>();
  const std::vector<int32_t> cols = cols_t.to(Device::cpu()).to_vector<int32_t>();
  const int64_t tr = l.tile.rows, tc = l.tile.cols, e = l.tile_elements();
  std::vector<int64_t> pos(static_cast<size_t>(l.entries * e));
  std::vector<float> inside(pos.size(), 1.f);
  bool edge = false;
  for (size_t b = 0; b + 1 < offsets.size(); ++b)
    for (int64_t j = offsets[b]; j < offsets[b + 1]; ++j)
      for (int64_t q = 0; q < e; ++q) {
        // Lists hold a column vector of tr rows; blocks are row-major tr x tc.
        const int64_t r = static_cast<int64_t>(b) * tr + (tc == 1 ? q : q / tc);
        const int64_t c = int64_t{cols[static_cast<size_t>(j)]} * tc + (tc == 1 ? 0 : q % tc);
        const auto at = static_cast<size_t>(j * e + q);
        if (r < l.rows && c < l.cols) {
          pos[at] = r * l.cols + c;
        } else {
          pos[at] = 0;
          inside[at] = 0.f;
          edge = true;
        }
      }
  l.positions = from_vector(pos, offsets_t.device());
  if (edge) l.positions_inside = from_vector(inside, l.values_shape(), offsets_t.device());
}

}  // namespace

double CompactLayout::density() const {
  const int64_t all = tile.count_in(rows, cols);
  return all == 0 ? 1.0 : static_cast<double>(entries) / static_cast<double>(all);
}

std::string CompactLayout::str() const {
  std::ostringstream os;
  os << "compact " << rows << "x" << cols << ", " << tile.str() << " micro-tiles, " << entries << " of "
     << tile.count_in(rows, cols) << " listed" << (inside.defined() ? " (element pattern inside)" : "") << ", "
     << device().str();
  return os.str();
}

CompactLayout compact_layout(const Tensor& mask, MicroTile tile, bool elements, double dense_from) {
  const char* op = "compact_layout";
  check_tile(tile, op);
  check_matrix(mask, op, "the mask");
  // 0/1 whatever the mask holds (non-zero = kept): its condensed values are `inside`.
  const Tensor pattern = mask.to(DType::boolean).to(DType::f32);
  const DetectOptions detect{.values = elements};
  CompactLayout out;
  out.tile = tile;
  out.rows = mask.size(0);
  out.cols = mask.size(1);
  Tensor values;
  if (out.is_blocks()) {
    // Blocks keep the transposed lists too: dx = dy W runs as block_gemm over W^T's blocks.
    BlockListIndex b = detect_blocks(pattern, tile.rows, {.values = elements, .transposed = true});
    out.entries = read_count(b);
    out.blocks.offsets = b.offsets;
    out.blocks.col = first(b.col, out.entries);
    out.blocks.t_offsets = b.t_offsets;
    out.blocks.t_rows = first(b.t_rows, out.entries);
    out.blocks.t_pos = first(b.t_pos, out.entries);
    out.blocks.rows = out.rows;
    out.blocks.cols = out.cols;
    out.blocks.block = tile.rows;
    out.blocks.entries = out.entries;
    if (elements) values = b.values.view({b.values.size(0), tile.rows * tile.cols});
  } else {
    KListIndex l = detect_k_lists(pattern, tile.rows, detect);
    out.entries = read_count(l);
    out.lists.offsets = l.offsets;
    out.lists.k = first(l.k, out.entries);
    out.lists.rows = out.rows;
    out.lists.cols = out.cols;
    out.lists.block_rows = tile.rows;
    out.lists.entries = out.entries;
    values = l.values;
  }
  if (elements) out.inside = first(values, out.entries);
  if (out.density() >= dense_from) set_positions(out);
  return out;
}

Tensor compact_gather(const CompactLayout& layout, const Tensor& dense) {
  PIT_CHECK(layout.dense_path(), "compact_gather: the layout has no positions (make it with dense_from <= ",
            layout.density(), ")");
  PIT_CHECK(dense.defined() && dense.dim() == 2 && dense.size(0) == layout.rows && dense.size(1) == layout.cols,
            "compact_gather: a dense matrix of ", layout.rows, "x", layout.cols, " expected");
  const Tensor v = kernels::index_select(dense.contiguous().view({-1}), 0, layout.positions).view(layout.values_shape());
  return layout.positions_inside.defined()
             ? kernels::binary(BinaryOp::mul, v, layout.positions_inside.to(v.dtype()))
             : v;
}

Tensor compact_values(const CompactLayout& layout, const Tensor& w, const Tensor& mask) {
  const char* op = "compact_values";
  check_matrix(w, op, "the weight");
  PIT_CHECK(w.size(0) == layout.rows && w.size(1) == layout.cols, op, ": a weight of shape ", shape_str(w.shape()),
            " for a layout of ", layout.rows, "x", layout.cols);
  const DetectOptions detect{.values = true, .mask = mask};
  Tensor values;
  int64_t listed = 0;
  if (layout.is_blocks()) {
    const BlockListIndex b = detect_blocks(w, layout.tile.rows, detect);
    listed = read_count(b);
    values = b.values.view({b.values.size(0), layout.tile_elements()});
  } else {
    const KListIndex l = detect_k_lists(w, layout.tile.rows, detect);
    listed = read_count(l);
    values = l.values;
  }
  PIT_CHECK(listed == layout.entries, op, ": the mask lists ", listed, " micro-tiles but the layout ", layout.entries,
            "; pass the mask the layout was made from");
  return first(values, layout.entries);
}

KListIndex lists_with(const CompactLayout& layout, const Tensor& values) {
  PIT_CHECK(!layout.is_blocks(), "lists_with: the layout has ", layout.tile.str(), " blocks; use blocks_with");
  PIT_CHECK(values.defined() && values.shape() == layout.values_shape(), "lists_with: values of shape ",
            shape_of(values), " for a layout of ",
            shape_str(layout.values_shape()));
  KListIndex idx = layout.lists;
  idx.values = values.contiguous();
  return idx;
}

BlockListIndex blocks_with(const CompactLayout& layout, const Tensor& values) {
  PIT_CHECK(layout.is_blocks(), "blocks_with: the layout has ", layout.tile.str(), " micro-tiles; use lists_with");
  PIT_CHECK(values.defined() && values.shape() == layout.values_shape(), "blocks_with: values of shape ",
            shape_of(values), " for a layout of ",
            shape_str(layout.values_shape()));
  BlockListIndex idx = layout.blocks;
  idx.values = values.contiguous().view({layout.entries, layout.tile.rows, layout.tile.cols});
  return idx;
}

BlockListIndex transposed_blocks_with(const CompactLayout& layout, const Tensor& values) {
  return transposed_blocks(blocks_with(layout, values));  // checks
}

Tensor compact_to_dense(const CompactLayout& layout, const Tensor& values) {
  return layout.is_blocks() ? to_dense(blocks_with(layout, values)) : to_dense(lists_with(layout, values));
}

}  // namespace pit::sparse
