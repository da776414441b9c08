#include "trainer/nn/sparse_linear.h"

#include <algorithm>
#include <vector>

#include "ops/functional.h"
#include "ops/pit/pattern.h"
#include "ops/pit/pit_ops.h"
#include "trainer/sparse/mask.h"

namespace pit::nn {
namespace {

using sparse::MicroTile;

Shape unit_grid(int64_t out, int64_t in, MicroTile u) {
  return {(out + u.rows - 1) / u.rows, (in + u.cols - 1) / u.cols};
}

// From which density of listed micro-tiles the dense GEMMs (on W scattered to dense) beat the PIT
// kernels, forward + backward of a layer (compact.h's dense path). CPU: 1024 x 1024, 64 rows,
// 32x1 micro-tiles, 2-core machine: PIT 4.1 ms vs dense 13-25 (noisy) at 10%, 12.1 vs 13.5 at
// 30%, 19.5 vs 16.6 at 50%.
// CUDA (H200, 4096 -> 16384, 8192 tokens, bf16; `pit-bench sparse`): with K lists the dense path
// was faster at every density measured, down to 5% (32x1: 11.1 vs 4.2 ms), so K-list layers take
// it always until the PIT backward kernels (sampled dW, K-list dx) catch up; 64x64 blocks were
// faster on the PIT kernels at 5% (2.83 vs 4.18 ms) and about even at 10% (4.39 vs 4.28).
// 64 x 64 blocks run on block_linear / block_linear_dx / block_sampled (no transposes, TMA; 256-token
// tiles, dW in items of four blocks): on the H200 the layer above took 0.71 / 1.11 / 1.99 / 2.83 /
// 4.42 ms at 5 / 10 / 20 / 30 / 50% against 4.09-4.77 ms on the dense path: the dense path from
// 50%, where the two are close (docs/BENCHMARKS.md, 2026-12-05).
double dense_path_from(Device device, sparse::MicroTile tile) {
  if (!device.is_cuda()) return 0.4;
  if (tile.rows == 64 && tile.cols == 64) return 0.5;
  return tile.cols > 1 ? 0.08 : 0.0;
}

std::vector<uint8_t> host_mask(const Tensor& mask) {
  return (mask.dtype() == DType::u8 ? mask : mask.to(DType::boolean).to(DType::u8)).to(Device::cpu()).contiguous()
      .to_vector<uint8_t>();
}

}  // namespace

MicroTile kernel_tile(MicroTile unit) {
  if (unit.rows == 1 && unit.cols == 1) return {32, 1};
  const auto one_of = [](int64_t v, std::initializer_list<int64_t> ok) { return std::find(ok.begin(), ok.end(), v) != ok.end(); };
  const bool lists = unit.cols == 1 && one_of(unit.rows, {16, 32, 64, 128});
  const bool blocks = unit.cols == unit.rows && one_of(unit.rows, {16, 32, 64});
  PIT_CHECK(lists || blocks, "SparseLinear: the pruning unit ", unit.str(),
            " is not supported; use 1x1, 16x1, 32x1, 64x1, 128x1, 16x16, 32x32 or 64x64");
  return unit;
}

SparseLinear::SparseLinear(const Tensor& weight, const Tensor& bias, MicroTile unit) : unit_(unit) {
  kernel_tile(unit);
  PIT_CHECK(weight.defined() && weight.dim() == 2 && weight.numel() > 0, "SparseLinear: the weight must be a ",
            "non-empty [out, in] matrix, got ", shape_of(weight));
  out_ = weight.size(0);
  in_ = weight.size(1);
  const Shape grid = unit_grid(out_, in_, unit_);
  const Tensor all = from_vector(std::vector<uint8_t>(static_cast<size_t>(grid[0] * grid[1]), 1), grid)
                         .to(weight.device());
  register_buffer("tile_mask", all);
  kept_ = total_units();
  kept_weights_ = out_ * in_;
  layout_ = layout_of(all, weight.device());
  values_ = register_parameter("values", sparse::compact_values(layout_, weight.to(DType::f32).contiguous(),
                                                                element_mask(all)));
  if (bias.defined()) {
    PIT_CHECK(bias.dim() == 1 && bias.size(0) == out_, "SparseLinear: bias must be [", out_, "], got ",
              shape_str(bias.shape()));
    bias_ = register_parameter("bias", bias);
  }
}

Tensor SparseLinear::element_mask(const Tensor& unit_mask) const {
  return sparse_train::expand_tiles(unit_mask, out_, in_, unit_.rows, unit_.cols);
}

sparse::CompactLayout SparseLinear::layout_of(const Tensor& unit_mask, Device device) const {
  return layout_of_elements(element_mask(unit_mask.to(device)));
}

sparse::CompactLayout SparseLinear::layout_of_elements(const Tensor& elements) const {
  const MicroTile tile = kernel_tile(unit_);
  return sparse::compact_layout(elements, tile, !(tile == unit_), dense_path_from(elements.device(), tile));
}

void SparseLinear::rebuild_layout() { layout_ = layout_of(tile_mask(), values_.device()); }

double SparseLinear::density() const {
  return static_cast<double>(kept_weights_) / static_cast<double>(out_ * in_);
}

ops::SparseLayer SparseLinear::as_layer() {
  if (layout_.device() != values_.device()) rebuild_layout();  // the module moved
  ops::SparseLayer l{to_compute(values_), bias_.defined() ? to_compute(bias_) : Variable(), layout_};
  if (want_dense_grad_) {
    dense_grad_ = std::make_shared<Tensor>();
    l.dense_weight_grad = dense_grad_;
  }
  return l;
}

Variable SparseLinear::forward(const Variable& x, bool relu) {
  const ops::SparseLayer l = as_layer();
  ops::SparseLinearOptions o;
  o.relu = relu;
  o.dense_weight_grad = l.dense_weight_grad;
  return ops::sparse_linear(to_compute(x), l.values, l.bias, l.layout, o);
}

Variable SparseLinear::forward_relu_into(SparseLinear& proj, const Variable& x) {
  return ops::sparse_relu_ffn(to_compute(x), as_layer(), proj.as_layer());
}

Tensor SparseLinear::dense_weight() const {
  const sparse::CompactLayout l = layout_.device() == values_.device() ? layout_ : layout_of(tile_mask(), values_.device());
  return sparse::compact_to_dense(l, values_.data());
}

SparseLinear::Relayout SparseLinear::load_dense(const Tensor& w, bool keep_pattern) {
  PIT_CHECK(w.defined() && w.dim() == 2 && w.size(0) == out_ && w.size(1) == in_, type_name(), ": load_dense takes a [",
            out_, ", ", in_, "] weight, got ", shape_of(w));
  const Device dev = values_.device();
  const Tensor dense = w.to(dev, DType::f32).contiguous();
  Relayout relayout = [](const Tensor& t) { return t; };
  if (!keep_pattern) {
    const Tensor norms = sparse_train::tile_norms(dense, unit_.rows, unit_.cols);
    relayout = set_tile_mask(norms.to(DType::boolean));
  }
  if (layout_.device() != dev) rebuild_layout();
  values_.set_data(sparse::compact_values(layout_, dense, element_mask(tile_mask())));
  return relayout;
}

Tensor SparseLinear::unit_norms() const { return sparse_train::tile_norms(dense_weight(), unit_.rows, unit_.cols); }

SparseLinear::Relayout SparseLinear::set_tile_mask(const Tensor& mask, const Tensor& zeroed) {
  const Shape grid = unit_grid(out_, in_, unit_);
  PIT_CHECK(mask.defined() && mask.shape() == grid, type_name(), ": a mask of ", unit_.str(), " units for a ", out_,
            "x", in_, " weight must be ", shape_str(grid), ", got ", shape_of(mask));
  PIT_CHECK(!zeroed.defined() || zeroed.shape() == grid, type_name(), ": `zeroed` must have the mask's shape ",
            shape_str(grid));
  const Device dev = values_.device();
  std::vector<uint8_t> on = host_mask(mask), fresh = on;  // fresh: kept and not restarted
  if (zeroed.defined()) {
    const std::vector<uint8_t> z = host_mask(zeroed);
    for (size_t i = 0; i < on.size(); ++i) fresh[i] = on[i] && !z[i];
  }
  int64_t kept = 0, weights = 0;
  for (int64_t i = 0; i < grid[0]; ++i)
    for (int64_t j = 0; j < grid[1]; ++j)
      if (on[static_cast<size_t>(i * grid[1] + j)]) {
        ++kept;
        weights += std::min(unit_.rows, out_ - i * unit_.rows) * std::min(unit_.cols, in_ - j * unit_.cols);
      }
  const Tensor m = from_vector(on, grid).to(dev);
  const Tensor carry = element_mask(from_vector(fresh, grid).to(dev));  // what keeps its value
  const Tensor elements = element_mask(m);
  sparse::CompactLayout before = layout_.device() == dev ? layout_ : layout_of(tile_mask(), dev);
  sparse::CompactLayout after = layout_of_elements(elements);
  Relayout relayout = [before, after, carry, elements](const Tensor& t) {
    const Tensor dense = sparse::apply_pattern(sparse::compact_to_dense(before, t), carry);
    return sparse::compact_values(after, dense, elements);
  };
  values_.set_data(relayout(values_.data()));
  values_.zero_grad();
  set_buffer("tile_mask", m);
  layout_ = std::move(after);
  kept_ = kept;
  kept_weights_ = weights;
  return relayout;
}

// ---- checkpoints: the values' shape follows the mask ---------------------------------------------

std::vector<std::pair<std::string, Shape>> SparseLinear::state_shapes(const train::StateDict& own) const {
  const auto it = own.tensors.find("tile_mask");
  const Shape grid = unit_grid(out_, in_, unit_);
  if (it == own.tensors.end() || it->second.shape() != grid) return {};  // the check names the mask
  const std::vector<uint8_t> on = host_mask(it->second);
  const MicroTile tile = kernel_tile(unit_);
  // Units per kernel micro-tile along rows (1x1 units under r x 1 tiles); the same tile otherwise.
  const int64_t per = tile.rows / unit_.rows;
  std::vector<uint8_t> cover(static_cast<size_t>(((grid[0] + per - 1) / per) * grid[1]), 0);
  for (int64_t i = 0; i < grid[0]; ++i)
    for (int64_t j = 0; j < grid[1]; ++j)
      if (on[static_cast<size_t>(i * grid[1] + j)]) cover[static_cast<size_t>((i / per) * grid[1] + j)] = 1;
  const auto listed = static_cast<int64_t>(std::count(cover.begin(), cover.end(), uint8_t{1}));
  return {{"values", {listed, tile.rows * tile.cols}}};
}

void SparseLinear::adopt_state_layout(const train::StateDict& own) { set_tile_mask(own.tensors.at("tile_mask")); }

}  // namespace pit::nn
