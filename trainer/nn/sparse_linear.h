#pragma once
// SparseLinear: y = x W^T + b with W [out, in] pruned in micro-tiles and really sparse: the
// parameter is `values`, the compact values of the kept micro-tiles (ops/pit/compact.h), so the
// weight, its gradient and the optimizer's state all scale with the density, and forward and
// backward run the PIT kernels over the layout's index (ops::sparse_linear). The pattern is the
// buffer `tile_mask` (u8, one entry per pruning unit); changing it (set_tile_mask) rebuilds the
// index on the weight's device and re-lays out the values and anything shaped like them.
//
// Above a density where the dense GEMMs win (per device and micro-tile kind, measured: see
// dense_path_from in the .cpp) the layout takes compact.h's dense path; storage stays compact.
//
// The pruning unit is the mask's granularity: 16x1, 32x1, 64x1, 128x1 (rows of out by one input
// column), 16x16, 32x32, 64x64, or 1x1 (element masks). The kernels run on the unit itself,
// except 1x1, which is covered by 32x1 micro-tiles holding the kept elements (the others stay 0):
// its values take the cover's size and its mask a byte per weight.
#include <cstdint>
#include <functional>
#include <memory>

#include "ops/pit/compact.h"
#include "ops/pit/pit_ops.h"
#include "trainer/nn/module.h"

namespace pit::nn {

// The micro-tile the kernels run a pruning unit on (1x1 -> 32x1, else the unit); throws for a
// unit the kernels do not take, naming the ones they do.
sparse::MicroTile kernel_tile(sparse::MicroTile unit);

class SparseLinear : public Module {
 public:
  // A tensor laid out like the values before a mask change, re-laid out for the new mask:
  // kept units keep their entries, new units (and units named `zeroed`) start at 0.
  using Relayout = std::function<Tensor(const Tensor&)>;

  // Starts dense (every unit kept) with `weight` [out, in] and `bias` [out] (or undefined): the
  // values of a Linear, so that a sparse run starts from the dense run's weights.
  SparseLinear(const Tensor& weight, const Tensor& bias, sparse::MicroTile unit);
  const char* type_name() const override { return "SparseLinear"; }
  Variable forward(const Variable& x) override { return forward(x, false); }  // (..., in) -> (..., out), compute dtype
  Variable forward(const Variable& x, bool relu);  // relu: relu(forward(x)), fused (ops::sparse_linear)
  // proj.forward(forward(x, relu = true)) as one op (ops::sparse_relu_ffn: on CUDA with 64 x 64
  // blocks the ReLU's derivative travels as bits, and its backward pass over h is gone).
  Variable forward_relu_into(SparseLinear& proj, const Variable& x);

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  sparse::MicroTile unit() const { return unit_; }
  const Variable& values() const { return values_; }
  const Variable& bias() const { return bias_; }
  const Tensor& tile_mask() const { return buffer("tile_mask"); }  // u8 [ceil(out/ur), ceil(in/uc)]
  int64_t kept_units() const { return kept_; }
  int64_t total_units() const { return unit_.count_in(out_, in_); }
  double density() const;  // kept weights / all weights (edge units counted by their size)
  const sparse::CompactLayout& layout() const { return layout_; }

  // Export: W as a dense f32 [out, in] (zeros where pruned), on the module's device.
  Tensor dense_weight() const;
  // Import: W from a dense [out, in] weight (any floating dtype and device). With keep_pattern
  // the mask stays and the values are w's at the kept units (w's other values are ignored);
  // otherwise the mask becomes w's pattern (the units holding a non-zero) first. The layout may
  // change: re-lay out the optimizer's state with the returned map (Optimizer::relayout_state).
  Relayout load_dense(const Tensor& w, bool keep_pattern = true);
  // The L2 norm of W in every unit: f32, tile_mask's shape (0 where pruned).
  Tensor unit_norms() const;

  // Makes `mask` (any dtype, tile_mask's shape, non-zero = kept) the pattern: rebuilds the index,
  // re-lays out the values (new units start at zero; `zeroed`, when given, names kept units that
  // restart at zero too: RigL's regrown ones) and returns the map for the optimizer's state.
  Relayout set_tile_mask(const Tensor& mask, const Tensor& zeroed = {});

  // While on, each backward also stores the dense gradient of W, [out, in] in the compute dtype
  // (dense_weight_grad()): RigL turns it on for its update steps only.
  void request_dense_grad(bool on) {
    want_dense_grad_ = on;
    if (!on) dense_grad_.reset();
  }
  Tensor dense_weight_grad() const { return dense_grad_ ? *dense_grad_ : Tensor(); }

 protected:
  std::vector<std::pair<std::string, Shape>> state_shapes(const train::StateDict& own) const override;
  void adopt_state_layout(const train::StateDict& own) override;

 private:
  // This layer's operands for the ops, in the compute dtype (the layout rebuilt where the module
  // moved; a fresh dense-gradient slot while one is requested).
  ops::SparseLayer as_layer();
  // The layout of the mask on `device` (the values' device).
  sparse::CompactLayout layout_of(const Tensor& unit_mask, Device device) const;
  sparse::CompactLayout layout_of_elements(const Tensor& elements) const;  // bool [out, in], its device
  Tensor element_mask(const Tensor& unit_mask) const;  // bool [out, in]
  void rebuild_layout();  // from tile_mask, on the values' device

  int64_t in_ = 0, out_ = 0, kept_ = 0, kept_weights_ = 0;
  sparse::MicroTile unit_;
  Variable values_, bias_;
  sparse::CompactLayout layout_;
  bool want_dense_grad_ = false;
  std::shared_ptr<Tensor> dense_grad_;
};

}  // namespace pit::nn
