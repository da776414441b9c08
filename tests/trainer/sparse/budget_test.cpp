// Layer budgets: uniform and ERK hold exactly the global density over the budgeted layers; ERK
// follows (sum of dims) / (product of dims) and caps at dense; kept-dense layers stay out.
#include "trainer/sparse/budget.h"

#include <gtest/gtest.h>

#include "tests/core/expect_error.h"

namespace pit::sparse_train {
namespace {

using test::expect_error_contains;

double numel(const LayerShape& l) {
  double n = 1;
  for (const int64_t v : l.shape) n *= static_cast<double>(v);
  return n;
}

double raw(const LayerShape& l) {
  double s = 0;
  for (const int64_t v : l.shape) s += static_cast<double>(v);
  return s / numel(l);
}

// sum density * numel over the budgeted layers / their weights.
double overall(const std::vector<LayerShape>& layers, const std::vector<double>& d) {
  double kept = 0, total = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].keep_dense) continue;
    kept += d[i] * numel(layers[i]);
    total += numel(layers[i]);
  }
  return kept / total;
}

const std::vector<LayerShape> kMlp = {{"fc1", {1024, 784}, true}, {"fc2", {1024, 1024}}, {"fc3", {512, 1024}},
                                      {"fc4", {10, 512}, true}};

TEST(LayerBudget, UniformGivesEveryBudgetedLayerTheSameDensity) {
  const std::vector<double> d = layer_densities(kMlp, 0.9, Budget::uniform);
  EXPECT_EQ(d, (std::vector<double>{1.0, 1.0 - 0.9, 1.0 - 0.9, 1.0}));
}

TEST(LayerBudget, ErkHoldsTheGlobalDensityAndFollowsTheShapes) {
  const std::vector<LayerShape> convs = {{"conv1", {32, 3, 3, 3}}, {"conv2", {64, 32, 3, 3}},
                                         {"conv3", {128, 64, 3, 3}}, {"fc", {10, 2048}}};
  for (const auto* layers : {&kMlp, &convs})
    for (const double s : {0.5, 0.8, 0.9, 0.95, 0.99}) {
      const std::vector<double> d = layer_densities(*layers, s, Budget::erk);
      EXPECT_NEAR(overall(*layers, d), 1.0 - s, 1e-12) << "sparsity " << s;
      // Uncapped layers share one scale: density / raw is the same for all of them.
      double scale = -1;
      for (size_t i = 0; i < layers->size(); ++i) {
        const LayerShape& l = (*layers)[i];
        EXPECT_LE(d[i], 1.0) << l.name;
        EXPECT_GT(d[i], 0.0) << l.name;
        if (l.keep_dense || d[i] == 1.0) continue;
        const double r = d[i] / raw(l);
        if (scale < 0) scale = r;
        EXPECT_NEAR(r, scale, 1e-9 * scale) << l.name << " at sparsity " << s;
      }
    }
  // At 50% the small first convolution (raw 38/864 against 105/18432 for conv2) would exceed
  // density 1: it is made dense and the others share what is left.
  const std::vector<double> d = layer_densities(convs, 0.5, Budget::erk);
  EXPECT_EQ(d[0], 1.0);
  EXPECT_LT(d[1], 1.0);
}

TEST(LayerBudget, ChecksItsArguments) {
  expect_error_contains([] { layer_densities(kMlp, 1.0, Budget::erk); }, "sparsity must be in [0, 1)");
  expect_error_contains([] { layer_densities({{"x", {0, 3}}}, 0.5, Budget::uniform); }, "positive sizes");
  expect_error_contains([] { parse_budget("erdos"); }, "allowed: uniform, erk");
  EXPECT_EQ(parse_budget("erk"), Budget::erk);
}

}  // namespace
}  // namespace pit::sparse_train
