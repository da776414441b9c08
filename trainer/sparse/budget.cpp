#include "trainer/sparse/budget.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace pit::sparse_train {

const char* budget_name(Budget b) { return b == Budget::uniform ? "uniform" : "erk"; }

Budget parse_budget(std::string_view name) {
  for (const Budget b : {Budget::uniform, Budget::erk})
    if (name == budget_name(b)) return b;
  PIT_THROW("unknown layer budget '", name, "'; allowed: uniform, erk");
}

std::vector<double> layer_densities(const std::vector<LayerShape>& layers, double sparsity, Budget budget) {
  PIT_CHECK(sparsity >= 0.0 && sparsity < 1.0, "layer budget: sparsity must be in [0, 1), got ", sparsity);
  std::vector<double> numel(layers.size()), raw(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::vector<int64_t>& s = layers[i].shape;
    PIT_CHECK(!s.empty() && std::all_of(s.begin(), s.end(), [](int64_t v) { return v > 0; }), "layer budget: layer '",
              layers[i].name, "' needs a weight shape of positive sizes");
    numel[i] = std::accumulate(s.begin(), s.end(), 1.0, [](double a, int64_t v) { return a * static_cast<double>(v); });
    raw[i] = std::accumulate(s.begin(), s.end(), 0.0, [](double a, int64_t v) { return a + static_cast<double>(v); }) /
             numel[i];
  }
  std::vector<double> density(layers.size(), 1.0);
  if (budget == Budget::uniform) {
    for (size_t i = 0; i < layers.size(); ++i)
      if (!layers[i].keep_dense) density[i] = 1.0 - sparsity;
    return density;
  }
  // ERK: density_i = min(1, eps * raw_i), eps such that sum density_i * numel_i = (1 - s) * total.
  std::vector<bool> dense(layers.size());
  double total = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    dense[i] = layers[i].keep_dense;
    if (!dense[i]) total += numel[i];
  }
  const double target = (1.0 - sparsity) * total;
  for (;;) {
    double fixed = 0, weighted = 0;  // weights of the layers made dense; sum raw * numel of the others
    for (size_t i = 0; i < layers.size(); ++i) {
      if (layers[i].keep_dense) continue;
      if (dense[i]) fixed += numel[i];
      else weighted += raw[i] * numel[i];
    }
    if (weighted == 0) break;  // every budgeted layer is dense
    const double eps = (target - fixed) / weighted;
    PIT_CHECK(eps > 0, "layer budget: at sparsity ", sparsity, " the layers ERK makes dense already hold more than the ",
              "budget's weights; lower the sparsity or use the uniform budget");
    bool capped = false;
    for (size_t i = 0; i < layers.size(); ++i) {
      if (dense[i]) continue;
      if (eps * raw[i] > 1.0) {
        dense[i] = true;
        capped = true;
      }
    }
    if (capped) continue;
    for (size_t i = 0; i < layers.size(); ++i)
      if (!dense[i]) density[i] = eps * raw[i];
    break;
  }
  return density;
}

}  // namespace pit::sparse_train
