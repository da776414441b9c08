// SparseLinear (trainer/nn/sparse_linear.h): a sparsified Linear computes what the dense Linear
// with the masked weight computes; AdamW on the compact values equals AdamW on the masked dense
// weight; a mask change keeps the kept units' values and optimizer state and zeroes the new
// ones; a checkpoint taken after a mask change resumes exactly into a freshly built model.
#include <gtest/gtest.h>

#include <vector>

#include "core/random.h"
#include "ops/functional.h"
#include "ops/pit/pattern.h"
#include "tests/core/expect_error.h"
#include "trainer/nn/layers.h"
#include "trainer/nn/sparse_linear.h"
#include "trainer/optim/adamw.h"
#include "trainer/sparse/mask.h"

namespace pit::nn {
namespace {

using sparse::MicroTile;
using test::expect_error_contains;
using test::expect_error_contains_all;

const MicroTile kUnits[] = {{32, 1}, {16, 16}, {1, 1}};

Tensor random_tensor(const Shape& shape, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 2.f * philox_uniform(seed, 0, i) - 1.f;
  return from_vector(v, shape);
}

// A unit mask of about `density` for a 70 x 45 weight (u8, the unit grid's shape).
Tensor random_units(MicroTile u, double density, uint64_t seed) {
  const Shape grid{(70 + u.rows - 1) / u.rows, (45 + u.cols - 1) / u.cols};
  std::vector<uint8_t> on(static_cast<size_t>(shape_numel(grid)));
  for (size_t i = 0; i < on.size(); ++i) on[i] = philox_uniform(seed, 1, i) < density;
  return from_vector(on, grid);
}

Tensor elements(const Tensor& units, MicroTile u) {
  return sparse_train::expand_tiles(units, 70, 45, u.rows, u.cols).to(DType::f32);
}

double max_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to(DType::f64).to_vector<double>(), y = b.to(DType::f64).to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double m = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

Variable loss_of(Module& layer, const Tensor& x, const Tensor& g) {
  return ops::sum(ops::mul(layer(Variable(x)), Variable(g)));
}

TEST(SparseLinear, SparsifiedStartsAsTheDenseLayerAndComputesTheMaskedOne) {
  for (const MicroTile u : kUnits) {
    Generator g1(7), g2(7);
    Linear dense(45, 70, true, g1), sparse(45, 70, true, g2);
    SparseLinear& s = sparse.sparsify(u);
    EXPECT_FALSE(sparse.weight().defined());
    EXPECT_EQ(s.kept_units(), s.total_units());
    const Tensor x = random_tensor({3, 5, 45}, 1);
    EXPECT_LT(max_diff(sparse(Variable(x)).data(), dense(Variable(x)).data()), 1e-5) << u.str();
    // Parameters: the compact values and the bias, under "sparse/".
    std::vector<std::string> names;
    for (const auto& [name, v] : sparse.named_parameters()) names.push_back(name);
    EXPECT_EQ(names, (std::vector<std::string>{"sparse/values", "sparse/bias"}));

    const Tensor units = random_units(u, 0.3, 2);
    s.set_tile_mask(units);
    const Tensor m = elements(units, u);
    EXPECT_EQ(max_diff(s.dense_weight(), ops::mul(dense.weight(), Variable(m)).data()), 0.0) << u.str();
    Linear masked(45, 70, true, g1);
    Variable(masked.weight()).set_data(sparse::apply_pattern(dense.weight().data(), m));  // copies share the state
    Variable(masked.bias()).set_data(dense.bias().data());
    EXPECT_LT(max_diff(sparse(Variable(x)).data(), masked(Variable(x)).data()), 1e-5) << u.str();
    const double kept = ops::sum(Variable(m)).data().item<double>();
    EXPECT_NEAR(s.density(), kept / (70.0 * 45.0), 1e-12) << u.str();
    // Values (and so gradients and optimizer state) take the listed micro-tiles only (an element
    // mask: its 32x1 cover, which at 30% random elements lists nearly every tile).
    EXPECT_EQ(s.values().numel(), s.layout().entries * s.layout().tile_elements());
    if (u.rows > 1) {
      EXPECT_EQ(s.layout().entries, s.kept_units()) << u.str();
    }
    EXPECT_LT(s.kept_units(), s.total_units()) << u.str();
  }
}

TEST(SparseLinear, AdamWOnCompactValuesEqualsAdamWOnTheMaskedDenseWeight) {
  for (const MicroTile u : kUnits) {
    Generator g1(11), g2(11);
    Linear dense(45, 70, true, g1), sparse(45, 70, true, g2);
    const Tensor units = random_units(u, 0.4, 3), m = elements(units, u);
    sparse.sparsify(u).set_tile_mask(units);
    Variable w = dense.weight();  // shares the parameter's state
    w.set_data(sparse::apply_pattern(w.data(), m));
    optim::AdamW od(optim::with_default_decay(dense.named_parameters()), {.weight_decay = 0.1});
    optim::AdamW os(optim::with_default_decay(sparse.named_parameters()), {.weight_decay = 0.1});
    for (int step = 0; step < 4; ++step) {
      const Tensor x = random_tensor({6, 45}, 100 + step), g = random_tensor({6, 70}, 200 + step);
      loss_of(dense, x, g).backward();
      w.set_grad(sparse::apply_pattern(w.grad(), m));  // the masked dense step
      loss_of(sparse, x, g).backward();
      od.step(1e-2);
      os.step(1e-2);
      od.zero_grad();
      os.zero_grad();
    }
    EXPECT_LT(max_diff(sparse.sparse()->dense_weight(), dense.weight().data()), 1e-6) << u.str();
    EXPECT_LT(max_diff(sparse.sparse()->bias().data(), dense.bias().data()), 1e-6) << u.str();
  }
}

TEST(SparseLinear, AMaskChangeKeepsKeptUnitsAndStartsNewOnesAtZero) {
  for (const MicroTile u : kUnits) {
    Generator gen(5);
    Linear layer(45, 70, false, gen);
    SparseLinear& s = layer.sparsify(u);
    const Tensor before = random_units(u, 0.5, 4);
    s.set_tile_mask(before);
    optim::AdamW opt(optim::with_default_decay(layer.named_parameters()));
    loss_of(layer, random_tensor({4, 45}, 6), random_tensor({4, 70}, 7)).backward();
    opt.step(1e-2);
    const Tensor w0 = s.dense_weight();
    const Tensor avg0 = compact_to_dense(s.layout(), opt.state_dict().tensors.at("sparse/values/exp_avg"));
    // The new mask: some units dropped, some grown, and one kept unit restarted (`zeroed`).
    const Tensor after = random_units(u, 0.5, 8);
    std::vector<uint8_t> a = after.to_vector<uint8_t>(), b = before.to_vector<uint8_t>(), z(a.size(), 0);
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i] && b[i]) {
        z[i] = 1;
        break;
      }
    const Tensor zeroed = from_vector(z, after.shape());
    opt.relayout_state(s.values(), s.set_tile_mask(after, zeroed));
    std::vector<uint8_t> carry(a.size());
    for (size_t i = 0; i < a.size(); ++i) carry[i] = a[i] && b[i] && !z[i];
    const Tensor c = elements(from_vector(carry, after.shape()), u);
    EXPECT_EQ(max_diff(s.dense_weight(), sparse::apply_pattern(w0, c)), 0.0) << u.str();
    const Tensor avg1 = compact_to_dense(s.layout(), opt.state_dict().tensors.at("sparse/values/exp_avg"));
    EXPECT_EQ(max_diff(avg1, sparse::apply_pattern(avg0, c)), 0.0) << u.str();
    EXPECT_EQ(s.values().shape(), s.layout().values_shape());
    // Training goes on with the new layout.
    loss_of(layer, random_tensor({4, 45}, 9), random_tensor({4, 70}, 10)).backward();
    EXPECT_NO_THROW(opt.step(1e-2));
  }
}

TEST(SparseLinear, CheckpointAfterAMaskChangeResumesExactly) {
  for (const MicroTile u : kUnits) {
    const auto build = [&] {
      Generator gen(21);
      auto list = std::make_shared<ModuleList>();
      list->push_back(std::make_shared<Linear>(45, 70, true, gen))->sparsify(u);
      return list;
    };
    auto model = build();
    auto& layer = static_cast<Linear&>((*model)[0]);
    optim::AdamW opt(optim::with_default_decay(model->named_parameters()));
    const auto train_step = [](ModuleList& m, optim::Optimizer& o, uint64_t seed) {
      loss_of(m[0], random_tensor({4, 45}, seed), random_tensor({4, 70}, seed + 1)).backward();
      o.step(1e-2);
      o.zero_grad();
    };
    train_step(*model, opt, 30);
    opt.relayout_state(layer.sparse()->values(), layer.sparse()->set_tile_mask(random_units(u, 0.3, 31)));
    train_step(*model, opt, 32);
    const train::StateDict ms = model->state_dict(), os = opt.state_dict();

    auto resumed = build();  // dense, as a new run builds it
    optim::AdamW opt2(optim::with_default_decay(resumed->named_parameters()));
    resumed->load_state_dict(ms);
    opt2.load_state_dict(os);
    auto& layer2 = static_cast<Linear&>((*resumed)[0]);
    EXPECT_EQ(layer2.sparse()->kept_units(), layer.sparse()->kept_units());
    train_step(*model, opt, 40);
    train_step(*resumed, opt2, 40);
    EXPECT_EQ(max_diff(layer2.sparse()->values().data(), layer.sparse()->values().data()), 0.0) << u.str();
    EXPECT_EQ(max_diff(layer2.sparse()->tile_mask(), layer.sparse()->tile_mask()), 0.0) << u.str();
  }
}

// A sparse layer registered under two paths (shared, as a tied module) loads its own state: its
// values are written once, under the first path, and its layout is read from there only.
TEST(SparseLinear, ASharedSparseLayerLoadsItsOwnState) {
  Generator gen(22);
  auto list = std::make_shared<ModuleList>();
  const auto layer = list->push_back(std::make_shared<Linear>(45, 70, true, gen));
  list->push_back(layer);
  layer->sparsify({32, 1}).set_tile_mask(random_units({32, 1}, 0.3, 23));
  const train::StateDict saved = list->state_dict();
  EXPECT_EQ(saved.tensors.count("1/sparse/values"), 0u);
  layer->sparse()->set_tile_mask(random_units({32, 1}, 0.6, 24));  // another layout, then back
  ASSERT_NO_THROW(list->load_state_dict(saved));
  EXPECT_EQ(max_diff(layer->sparse()->values().data(), saved.tensors.at("0/sparse/values")), 0.0);
}

// An MLP whose proj skips the ReLU output's zero micro-tiles computes the dense MLP's output and
// gradients (the input made to leave many whole 32-token columns of the activation at zero).
TEST(SparseActivation, MlpEqualsTheDenseMlp) {
  MLP::Options o;
  o.dim = 24;
  o.hidden = 96;
  o.activation = Activation::relu;
  Generator g1(3), g2(3);
  MLP dense(o, g1);
  o.sparse_activation = true;
  MLP sparse(o, g2);
  Tensor x = random_tensor({2, 40, 24}, 4);
  std::vector<float> keep(80);
  for (size_t i = 0; i < keep.size(); ++i) keep[i] = philox_uniform(5, 0, i) < 0.5f;  // about half the tokens 0
  x = sparse::apply_pattern(x, from_vector(keep, {2, 40, 1}).expand({2, 40, 24}).contiguous());
  const Tensor g = random_tensor({2, 40, 24}, 6);
  Variable xd(x, true), xs(x, true);
  Variable yd = dense(xd), ys = sparse(xs);
  yd.backward(g);
  ys.backward(g);
  EXPECT_LT(max_diff(ys.data(), yd.data()), 1e-5);
  EXPECT_LT(max_diff(xs.grad(), xd.grad()), 1e-5);
  const auto pd = dense.named_parameters(), ps = sparse.named_parameters();
  ASSERT_EQ(pd.size(), ps.size());
  for (size_t i = 0; i < pd.size(); ++i)
    EXPECT_LT(max_diff(ps[i].second.grad(), pd[i].second.grad()), 1e-5) << pd[i].first;
  o.activation = Activation::gelu_tanh;
  expect_error_contains([&] { MLP(o, g1); }, "sparse_activation needs the ReLU");
}

TEST(SparseLinear, ExportsToAndImportsFromADenseWeight) {
  for (const MicroTile u : kUnits) {
    Generator gen(9);
    Linear layer(45, 70, true, gen);
    SparseLinear& s = layer.sparsify(u);
    const Tensor units = random_units(u, 0.4, 12);
    s.set_tile_mask(units);
    // Import under the kept pattern: only the kept units' values are taken.
    const Tensor w = random_tensor({70, 45}, 13);
    s.load_dense(w);
    EXPECT_EQ(max_diff(s.dense_weight(), sparse::apply_pattern(w, elements(units, u))), 0.0) << u.str();
    // Import with the weight's own pattern: a weight pruned elsewhere brings its mask along.
    const Tensor other = random_units(u, 0.25, 14);
    const Tensor pruned = sparse::apply_pattern(w, elements(other, u));
    s.load_dense(pruned, /*keep_pattern=*/false);
    EXPECT_EQ(max_diff(s.tile_mask(), other), 0.0) << u.str();
    EXPECT_EQ(max_diff(s.dense_weight(), pruned), 0.0) << u.str();  // the export gives it back
    expect_error_contains([&] { s.load_dense(zeros({45, 70})); }, "load_dense takes a [70, 45] weight");
  }
}

TEST(SparseLinear, ErrorsNameTheProblem) {
  Generator gen(1);
  Linear layer(45, 70, true, gen);
  expect_error_contains([&] { Linear(45, 70, true, gen).sparsify({32, 16}); }, "use 1x1, 16x1, 32x1");
  SparseLinear& s = layer.sparsify({32, 1});
  expect_error_contains([&] { layer.sparsify({32, 1}); }, "sparsify() called twice");
  expect_error_contains([&] { s.set_tile_mask(ones({2, 45})); }, "must be [3, 45]");
  // A checkpoint whose mask does not fit names it, and loads nothing.
  train::StateDict sd = layer.state_dict();
  sd.tensors["sparse/tile_mask"] = ones({2, 45});
  expect_error_contains([&] { layer.load_state_dict(sd); }, "sparse/tile_mask");
}

// An optimizer made before sparsify() holds the dense weight and bias, which the layer no longer
// reads: its step refuses (before updating anything) instead of leaving the layer untrained, and
// an optimizer made from the replaced Variables is refused too. One made afterwards trains.
TEST(SparseLinear, OptimizerMadeBeforeSparsifyRefusesToStep) {
  Generator gen(1);
  Linear layer(45, 70, true, gen);
  const Variable old_weight = layer.weight();
  optim::AdamW early(optim::with_default_decay(layer.named_parameters()));
  layer.sparsify({32, 1});
  const Variable x(random_tensor({5, 45}, 3));
  ops::sum(layer.forward(x)).backward();
  expect_error_contains_all([&] { early.step(0.1); },
                            {"parameter 'weight' was replaced by sparse/values (Linear::sparsify)",
                             "make the optimizer after sparsifying"});
  expect_error_contains([&] { optim::AdamW({{"weight", old_weight, true}}); },
                        "'weight' was replaced by sparse/values");
  optim::AdamW late(optim::with_default_decay(layer.named_parameters()));
  const Tensor before = layer.sparse()->values().data().clone();
  late.step(0.1);
  EXPECT_GT(max_diff(layer.sparse()->values().data(), before), 0.0);
}

}  // namespace
}  // namespace pit::nn
