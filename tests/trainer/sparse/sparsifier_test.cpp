// Sparsifier (trainer/sparse/sparsifier.h) on a three-layer MLP trained with AdamW: gradual
// magnitude pruning follows the cubic schedule at every step and keeps the units of largest
// norm (per layer, or over all layers with a global threshold); SET and RigL keep each layer's
// number of units exactly, grow what their rule says (new units and their optimizer state at
// zero); budgets, kept-dense first and last layers, and the errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "core/random.h"
#include "ops/functional.h"
#include "ops/kernels.h"
#include "tests/core/expect_error.h"
#include "trainer/nn/layers.h"
#include "trainer/nn/sparse_linear.h"
#include "trainer/optim/adamw.h"
#include "trainer/sparse/mask.h"
#include "trainer/sparse/sparsifier.h"

namespace pit::sparse_train {
namespace {

using test::expect_error_contains;

Tensor random_tensor(const Shape& shape, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 2.f * philox_uniform(seed, 0, i) - 1.f;
  return from_vector(v, shape);
}

std::vector<float> host(const Tensor& t) { return t.to(DType::f32).to_vector<float>(); }

// 45 -> 70 -> 64 -> 10, ReLU between.
struct Mlp {
  std::shared_ptr<nn::ModuleList> net = std::make_shared<nn::ModuleList>();
  std::vector<nn::Linear*> layers;
  Mlp() {
    Generator gen(3);
    for (const auto& [in, out] : {std::pair{45, 70}, {70, 64}, {64, 10}})
      layers.push_back(net->push_back(std::make_shared<nn::Linear>(in, out, true, gen)).get());
  }
  Variable loss(uint64_t seed) {
    Variable h(random_tensor({8, 45}, seed));
    for (size_t i = 0; i < layers.size(); ++i) {
      h = (*layers[i])(h);
      if (i + 1 < layers.size()) h = ops::relu(h);
    }
    return ops::sum(ops::mul(h, Variable(random_tensor({8, 10}, seed + 1))));
  }
};

// Runs steps [0, steps) of training with the sparsifier, calling check(step) after each.
template <typename Check>
void train(Mlp& m, Sparsifier& s, optim::Optimizer& opt, int64_t steps, Check&& check) {
  for (int64_t step = 0; step < steps; ++step) {
    s.before_step(step);
    m.loss(1000 + static_cast<uint64_t>(step)).backward();
    opt.step(1e-2);
    check(step, [&] { return s.after_step(step, opt); });
    opt.zero_grad();
  }
}

TEST(Sparsifier, GradualMagnitudePruningFollowsTheCubicScheduleAndKeepsTheLargestUnits) {
  for (const bool global : {false, true}) {
    Mlp m;
    const SparsifierOptions o{.method = Method::magnitude, .unit = {16, 1}, .sparsity = 0.8, .initial_sparsity = 0.1,
                              .start = 2, .end = 10, .every = 3, .global = global};
    Sparsifier s(*m.net, o);
    optim::AdamW opt(optim::with_default_decay(m.net->named_parameters()));
    const CubicSchedule cubic({.initial = 0.1, .final = 0.8, .start = 2, .end = 10, .every = 3});
    train(m, s, opt, 13, [&](int64_t step, auto&& update) {
      std::vector<Tensor> norms;
      for (nn::Linear* l : m.layers) norms.push_back(tile_scores(l->sparse()->dense_weight(), 16, 1));
      const MaskChanges c = update();
      EXPECT_EQ(c.updated, cubic.is_update_step(step)) << step;
      const double target = step < 2 ? 0.0 : cubic.sparsity_at(step);
      int64_t kept = 0, units = 0;
      float min_kept = INFINITY, max_pruned = 0;
      for (size_t i = 0; i < m.layers.size(); ++i) {
        const nn::SparseLinear& l = *m.layers[i]->sparse();
        kept += l.kept_units();
        units += l.total_units();
        if (!global) {
          EXPECT_EQ(l.kept_units(), std::llround((1.0 - target) * l.total_units())) << step;
        }
        if (!c.updated) continue;
        const std::vector<float> on = host(l.tile_mask()), n = host(norms[i]);
        for (size_t j = 0; j < on.size(); ++j) {
          if (on[j] != 0.f) {
            min_kept = std::min(min_kept, n[j]);
          } else {
            max_pruned = std::max(max_pruned, n[j]);
          }
        }
        if (!global) {
          EXPECT_EQ(on, host(top_tiles(norms[i], l.kept_units()))) << step;
        }
      }
      if (global) {
        EXPECT_EQ(kept, std::llround((1.0 - target) * units)) << step;
      }
      if (c.updated && global) {
        EXPECT_GE(min_kept, max_pruned) << "step " << step;  // one threshold over all layers
      }
    });
    EXPECT_NEAR(s.sparsity(), 0.8, 0.05);  // of the weights: units at the edges are smaller
    // What the kernels run: the listed units, or all of a layer on the dense path (on the CPU from
    // density 0.4; a global threshold can leave a layer that dense).
    double run = 0, all = 0;
    for (nn::Linear* l : m.layers) {
      const sparse::CompactLayout& layout = l->sparse()->layout();
      const double n = static_cast<double>(l->out_features() * l->in_features());
      run += (layout.dense_path() ? 1.0 : layout.density()) * n;
      all += n;
      if (!layout.dense_path()) EXPECT_LT(layout.density(), 0.4);
    }
    EXPECT_NEAR(s.flops_saved(), 1.0 - run / all, 1e-12);
    if (!global) EXPECT_GT(s.flops_saved(), 0.7);  // every layer at 80%: none on the dense path
    // The schedule ends at step 10: a run of 11 steps reaches 80%, a shorter one does not.
    EXPECT_EQ(s.shortfall(11), "");
    // Ten steps: the last (step 9) keeps step 8's target, 0.8 - 0.7 (1 - 6/8)^3 = 0.789.
    EXPECT_EQ(s.shortfall(10), "sparse.end_step (10) is not before run.steps (10): the run ends at 79% sparsity, not "
                               "the 80% of sparse.sparsity; set sparse.end_step (and start_step) below run.steps to "
                               "reach it");
    EXPECT_NE(s.shortfall(2).find("the run ends at 0% sparsity"), std::string::npos) << s.shortfall(2);
  }
}

TEST(Sparsifier, StartingMasksShareNoDrawsWithTheWeightsOrEachOther) {
  // Two layers of one shape, initialised from the seed the sparsifier is given (pit-train passes
  // run.seed to both). A mask drawn from the weights' own draws would keep exactly the largest
  // initial weights at 1x1 units (all positive), and layers whose draws overlap would get one
  // pattern shifted by a few positions.
  auto net = std::make_shared<nn::ModuleList>();
  Generator gen(3);
  std::vector<nn::Linear*> layers;
  for (int i = 0; i < 2; ++i) layers.push_back(net->push_back(std::make_shared<nn::Linear>(64, 64, false, gen)).get());
  Sparsifier s(*net, {.method = Method::set, .unit = {1, 1}, .sparsity = 0.5, .update_end = 100, .seed = 3});
  std::vector<std::vector<float>> masks;
  for (nn::Linear* l : layers) {
    const std::vector<float> w = host(l->sparse()->dense_weight()), mask = host(l->sparse()->tile_mask());
    int64_t kept = 0, positive = 0;
    for (size_t j = 0; j < w.size(); ++j)
      if (mask[j] != 0) {
        ++kept;
        positive += w[j] > 0;
      }
    ASSERT_EQ(kept, 2048);
    EXPECT_NEAR(static_cast<double>(positive) / static_cast<double>(kept), 0.5, 0.1) << "kept weights' signs";
    masks.push_back(mask);
  }
  for (const size_t shift : {0, 4, 8}) {
    int64_t same = 0;
    for (size_t j = 0; j + shift < masks[0].size(); ++j) same += masks[1][j] == masks[0][j + shift];
    EXPECT_LT(static_cast<double>(same) / static_cast<double>(masks[0].size() - shift), 0.6) << "shift " << shift;
  }
}

TEST(Sparsifier, RigLSkipsAnUpdateWhoseGradientsOverflowed) {
  Mlp m;
  Sparsifier s(*m.net, {.method = Method::rigl, .unit = {16, 1}, .sparsity = 0.7, .drop_fraction = 0.4,
                        .update_every = 2, .update_end = 9, .seed = 5});
  optim::AdamW opt(optim::with_default_decay(m.net->named_parameters()));
  const DropFraction drop({.initial = 0.4, .end = 9, .every = 2});
  int64_t step = 0;
  while (!drop.is_update_step(step)) ++step;
  std::vector<std::vector<float>> before;
  for (nn::Linear* l : m.layers) before.push_back(host(l->sparse()->tile_mask()));
  s.before_step(step);
  m.loss(7).backward();
  const MaskChanges skipped = s.after_step(step, opt, /*gradients_finite=*/false);  // a loss scaler's overflow
  EXPECT_EQ(skipped.updated, 0);
  EXPECT_TRUE(skipped.skipped);
  for (size_t i = 0; i < m.layers.size(); ++i) EXPECT_EQ(host(m.layers[i]->sparse()->tile_mask()), before[i]) << i;
  // The kept gradients finite but the dense gradient RigL grows from overflowed (it covers the
  // pruned positions: f16 under a loss scale): skipped too, every layer's mask unchanged (the
  // last layer's gradient is the one at fault: no earlier layer may have changed either), where it
  // used to stop the run as diverged.
  Tensor g = m.layers.back()->sparse()->dense_weight_grad();
  ASSERT_TRUE(g.defined());
  g.slice(0, 1, 2).fill_(std::numeric_limits<double>::infinity());
  const MaskChanges overflowed = s.after_step(step, opt);
  EXPECT_EQ(overflowed.updated, 0);
  EXPECT_TRUE(overflowed.skipped);
  for (size_t i = 0; i < m.layers.size(); ++i) {
    EXPECT_EQ(host(m.layers[i]->sparse()->tile_mask()), before[i]) << i;
    EXPECT_FALSE(m.layers[i]->sparse()->dense_weight_grad().defined()) << i;  // released as after an update
  }
  // The same step with finite gradients updates.
  s.before_step(step);
  m.loss(7).backward();
  const MaskChanges ran = s.after_step(step, opt);
  EXPECT_EQ(ran.updated, 1);
  EXPECT_FALSE(ran.skipped);
}

TEST(Sparsifier, SetAndRigLKeepEveryLayersCountAndStartNewUnitsAtZero) {
  for (const Method method : {Method::set, Method::rigl}) {
    Mlp m;
    const SparsifierOptions o{.method = method, .unit = {16, 1}, .sparsity = 0.7, .budget = Budget::erk,
                              .drop_fraction = 0.4, .update_every = 2, .update_end = 9, .seed = 5};
    Sparsifier s(*m.net, o);
    std::vector<int64_t> counts;
    const std::vector<double> d = layer_densities(
        {{"0", {70, 45}}, {"1", {64, 70}}, {"2", {10, 64}}}, 0.7, Budget::erk);
    for (size_t i = 0; i < m.layers.size(); ++i) {
      counts.push_back(m.layers[i]->sparse()->kept_units());
      EXPECT_EQ(counts.back(), std::llround(d[i] * m.layers[i]->sparse()->total_units())) << method_name(method);
    }
    optim::AdamW opt(optim::with_default_decay(m.net->named_parameters()));
    const DropFraction drop({.initial = 0.4, .end = 9, .every = 2});
    int64_t updates = 0;
    train(m, s, opt, 11, [&](int64_t step, auto&& update) {
      std::vector<Tensor> before, norms, grads;
      for (nn::Linear* l : m.layers) {
        before.push_back(l->sparse()->tile_mask());
        norms.push_back(tile_scores(l->sparse()->dense_weight(), 16, 1));
        grads.push_back(l->sparse()->dense_weight_grad());
        EXPECT_EQ(grads.back().defined(), method == Method::rigl && drop.is_update_step(step)) << step;
      }
      const MaskChanges c = update();
      EXPECT_EQ(c.updated, drop.is_update_step(step)) << step;
      updates += c.updated;
      const train::StateDict os = opt.state_dict();
      for (size_t i = 0; i < m.layers.size(); ++i) {
        const nn::SparseLinear& l = *m.layers[i]->sparse();
        EXPECT_EQ(l.kept_units(), counts[i]) << method_name(method) << " step " << step;
        if (!c.updated) continue;
        // The rule's own inputs give this mask (the rule itself: mask_test.cpp).
        const int64_t n = std::llround(drop.at(step) * static_cast<double>(counts[i]));
        const MaskUpdate want = drop_and_grow(before[i], norms[i], n, method == Method::rigl ? Grow::gradient : Grow::random,
                                              method == Method::rigl ? tile_scores(grads[i], 16, 1) : Tensor(), 5,
                                              sparse_stream(SparseDraw::growth, static_cast<uint64_t>(step), i));
        EXPECT_EQ(host(l.tile_mask()), host(want.mask)) << step;
        // Grown units start at zero, and so does their optimizer state.
        const Tensor grown = expand_tiles(want.grown_mask, l.out_features(), l.in_features(), 16, 1).to(DType::f32);
        const std::string p = std::to_string(i) + "/sparse/values/";
        const std::vector<float> g = host(grown);
        for (const Tensor& t : {l.dense_weight(), compact_to_dense(l.layout(), os.tensors.at(p + "exp_avg")),
                                compact_to_dense(l.layout(), os.tensors.at(p + "exp_avg_sq"))}) {
          const std::vector<float> v = host(t);
          double inside_grown = 0;
          for (size_t j = 0; j < v.size(); ++j) inside_grown += g[j] * std::abs(v[j]);
          EXPECT_EQ(inside_grown, 0.0) << method_name(method) << " step " << step << " layer " << i;
        }
      }
    });
    EXPECT_EQ(updates, 4);  // steps 2, 4, 6, 8
  }
}

TEST(Sparsifier, FirstAndLastLayersCanStayDense) {
  Mlp m;
  Sparsifier s(*m.net, {.method = Method::set, .sparsity = 0.5, .dense_first_last = true, .update_end = 10});
  EXPECT_TRUE(m.layers[0]->weight().defined());
  EXPECT_EQ(m.layers[1]->sparse() != nullptr, true);
  EXPECT_TRUE(m.layers[2]->weight().defined());
  ASSERT_EQ(s.layers().size(), 1u);
  EXPECT_EQ(s.layers()[0].name, "1");
}

// flops_saved counts what the kernels run: a layer on the dense path (on the CPU from density 0.4)
// computes every weight, so at 50% sparsity it saves nothing; at 80% its listed units are all it runs.
TEST(Sparsifier, FlopsSavedCountsADensePathLayerAsDense) {
  for (const double sparsity : {0.5, 0.8}) {
    Mlp m;
    Sparsifier s(*m.net, {.method = Method::set, .sparsity = sparsity, .dense_first_last = true, .update_end = 10});
    ASSERT_EQ(s.layers().size(), 1u);
    const bool dense_path = m.layers[1]->sparse()->layout().dense_path();
    EXPECT_EQ(dense_path, sparsity == 0.5);
    EXPECT_NEAR(s.sparsity(), sparsity, 0.02);
    if (dense_path) {
      EXPECT_EQ(s.flops_saved(), 0.0);
    } else {
      EXPECT_NEAR(s.flops_saved(), sparsity, 0.02);
    }
  }
}

// A global threshold can empty a layer (its weights all small): the update says which, for the
// trainer to warn, and the threshold stays one over all layers.
TEST(Sparsifier, GlobalThresholdSaysWhichLayerItEmptied) {
  Mlp m;
  Sparsifier s(*m.net, {.sparsity = 0.5, .start = 0, .end = 0, .every = 1, .global = true});
  Tensor v = m.layers[1]->sparse()->values().data();
  v.copy_(kernels::unary(UnaryOp::mul_scalar, v, 1e-4));
  optim::AdamW opt(optim::with_default_decay(m.net->named_parameters()));
  const MaskChanges c = s.after_step(0, opt);
  ASSERT_TRUE(c.updated);
  EXPECT_EQ(c.emptied, std::vector<std::string>{"1"});
  EXPECT_EQ(s.layers()[1].kept_units, 0);
  Mlp per_layer;
  Sparsifier p(*per_layer.net, {.sparsity = 0.5, .start = 0, .end = 0, .every = 1});
  optim::AdamW opt2(optim::with_default_decay(per_layer.net->named_parameters()));
  EXPECT_TRUE(p.after_step(0, opt2).emptied.empty());
}

// A per-layer budget can round to no unit of a small layer: 32 x 32 units at 90% keep
// round(0.1 * 6) = 1 unit of the [70, 45] and [64, 70] layers (3 x 2 and 2 x 3 units) but
// round(0.1 * 2) = 0 of the [10, 64] head (1 x 2): said, as a global threshold's emptied layer is.
TEST(Sparsifier, PerLayerBudgetThatRoundsToNoUnitSaysWhichLayer) {
  Mlp m;
  Sparsifier s(*m.net, {.unit = {32, 32}, .sparsity = 0.9, .start = 0, .end = 0, .every = 1});
  optim::AdamW opt(optim::with_default_decay(m.net->named_parameters()));
  const MaskChanges c = s.after_step(0, opt);
  ASSERT_TRUE(c.updated);
  EXPECT_EQ(c.emptied, std::vector<std::string>{"2"});
  const std::vector<LayerSparsity> l = s.layers();
  EXPECT_EQ(l[0].kept_units, 1);
  EXPECT_EQ(l[1].kept_units, 1);
  EXPECT_EQ(l[2].kept_units, 0);
}

// SET / RigL update at the multiples of update_every below update_end and run.steps: when there
// is none, the run trains its random starting mask, and shortfall says so.
TEST(Sparsifier, SetAndRigLShortfallWhenNoUpdateStepFallsInTheRun) {
  for (const Method method : {Method::set, Method::rigl}) {
    Mlp m;
    Sparsifier s(*m.net, {.method = method, .sparsity = 0.5, .update_every = 100, .update_end = 90});
    EXPECT_EQ(s.shortfall(120), std::string("sparse.update_every (100) is not below sparse.update_end (90) and "
                                            "run.steps (120): ") +
                                    method_name(method) +
                                    " never updates the mask in this run, which trains its random starting mask; "
                                    "lower sparse.update_every");
    EXPECT_NE(s.shortfall(100).find("never updates"), std::string::npos);  // steps 0..99: 100 is not in the run
    Mlp m2;
    Sparsifier t(*m2.net, {.method = method, .sparsity = 0.5, .update_every = 100, .update_end = 101});
    EXPECT_EQ(t.shortfall(101), "");  // step 100 updates
  }
}

// Scores that are not finite (weights that diverged) stop the update with the layer and the
// step named, where they used to order the units arbitrarily.
TEST(Sparsifier, DivergedScoresNameTheLayerAndStep) {
  for (const bool global : {false, true}) {
    Mlp m;
    Sparsifier s(*m.net, {.sparsity = 0.5, .start = 0, .end = 0, .every = 1, .global = global});
    Tensor v = m.layers[2]->sparse()->values().data();
    v.fill_(std::nan(""));
    optim::AdamW opt(optim::with_default_decay(m.net->named_parameters()));
    expect_error_contains([&] { s.after_step(0, opt); }, "sparsifier: layer '2' at step 0: sparse masks:");
  }
  Mlp m;
  Sparsifier s(*m.net, {.method = Method::set, .sparsity = 0.5, .update_every = 1, .update_end = 10});
  Tensor v = m.layers[0]->sparse()->values().data();
  v.fill_(std::numeric_limits<double>::infinity());
  optim::AdamW opt(optim::with_default_decay(m.net->named_parameters()));
  expect_error_contains([&] { s.after_step(1, opt); }, "layer '0' at step 1");
}

TEST(Sparsifier, ErrorsNameTheProblem) {
  Mlp m;
  expect_error_contains([&] { Sparsifier(*m.net, {.layers = {"blocks/*"}}); }, "its Linear layers are: 0, 1, 2");
  expect_error_contains([&] { Sparsifier(*m.net, {.layers = {"1", "lm_haed"}}); },
                        "sparse.layers pattern 'lm_haed' matches no Linear layer of the model (a typo?); its Linear "
                        "layers are: 0, 1, 2");
  expect_error_contains([&] { Sparsifier(*m.net, {.sparsity = 1.0}); }, "sparse.sparsity must be in [0, 1)");
  expect_error_contains([&] { Sparsifier(*m.net, {.unit = {8, 8}}); }, "use 1x1, 16x1");
  expect_error_contains([&] { Sparsifier(*m.net, {.layers = {"1"}, .dense_first_last = true}); }, "leaves no sparse layer");
  expect_error_contains([] { parse_method("lottery"); }, "allowed: magnitude, set, rigl");
  // SET / RigL with update_end left at 0: no update would ever come (a static random mask).
  expect_error_contains([&] { Sparsifier(*m.net, {.method = Method::rigl}); },
                        "SparsifierOptions::update_end) is 0, so rigl would never update the mask");
  // A second Sparsifier on the same model: its layers are sparse already.
  Mlp twice;
  Sparsifier first(*twice.net, {.sparsity = 0.5});
  expect_error_contains([&] { Sparsifier(*twice.net, {.sparsity = 0.5}); }, "matches only layers that are sparse already (0, 1, 2)");
}

}  // namespace
}  // namespace pit::sparse_train
