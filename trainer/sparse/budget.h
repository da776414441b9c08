#pragma once
// Per-layer density budgets of sparse training (issue #6): how a global sparsity is spread over
// the sparse layers.
// - uniform: every sparse layer at the same density 1 - sparsity;
// - ERK (Erdos-Renyi-Kernel, Evci et al. 2020): a layer's density is proportional to
//   sum(shape) / prod(shape) ((out + in) / (out * in) for a Linear weight, plus the kernel sizes
//   for a convolution), scaled so that the sparse layers hold (1 - sparsity) of their weights in
//   all; a layer that would exceed density 1 is made dense and the scale recomputed for the rest.
// Layers kept dense by choice (first / last) are outside the budget: density 1, and the sparsity
// applies to the other layers' weights.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pit::sparse_train {

enum class Budget { uniform, erk };
Budget parse_budget(std::string_view name);  // "uniform", "erk"; anything else throws naming both
const char* budget_name(Budget b);

struct LayerShape {
  std::string name;
  std::vector<int64_t> shape;  // the weight's: [out, in] or [out, in, kh, kw]
  bool keep_dense = false;
};

// The density of every layer, in order. sparsity in [0, 1).
std::vector<double> layer_densities(const std::vector<LayerShape>& layers, double sparsity, Budget budget);

}  // namespace pit::sparse_train
