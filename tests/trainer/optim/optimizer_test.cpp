// SGD and AdamW through the Optimizer interface: values by hand, weight-decay flags, skipped
// parameters, state dicts (round trip and errors); the CUDA path against the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/random.h"
#include "tests/core/expect_error.h"
#include "tests/gpu.h"
#include "tests/ops/check.h"
#include "trainer/optim/adamw.h"
#include "trainer/optim/sgd.h"

namespace pit::optim {
namespace {

using test::expect_close;
using test::expect_error_contains;
using test::expect_error_contains_all;

Variable param(const std::vector<float>& v, const Shape& shape, const std::string& name) {
  return Variable(from_vector(v, shape), true, name);
}

void set_grad(Variable& p, const std::vector<float>& g) { p.set_grad(from_vector(g, p.shape())); }

TEST(Optimizer, DefaultDecaySkipsVectors) {
  const std::vector<Param> ps = with_default_decay({{"w", param({1, 2, 3, 4}, {2, 2}, "w")},
                                                    {"b", param({1, 2}, {2}, "b")},
                                                    {"e", param({1, 2}, {1, 2}, "e")}});
  ASSERT_EQ(ps.size(), 3u);
  EXPECT_TRUE(ps[0].weight_decay);
  EXPECT_FALSE(ps[1].weight_decay);
  EXPECT_TRUE(ps[2].weight_decay);
  EXPECT_EQ(ps[1].name, "b");
}

TEST(Optimizer, SgdMomentumByHand) {
  Variable w = param({1.0f, -2.0f}, {1, 2}, "w");
  SgdOptions o;
  o.momentum = 0.9;
  SGD sgd({{"w", w, true}}, o);
  set_grad(w, {0.5f, 1.0f});
  sgd.step(0.1);  // buf = g: w = (1 - 0.05, -2 - 0.1)
  set_grad(w, {0.5f, 1.0f});
  sgd.step(0.1);  // buf = 0.9 g + g = 1.9 g: w -= 0.19 g
  const std::vector<float> got = w.data().to_vector<float>();
  EXPECT_NEAR(got[0], 1.0f - 0.05f - 0.095f, 1e-6);
  EXPECT_NEAR(got[1], -2.0f - 0.1f - 0.19f, 1e-6);
  EXPECT_EQ(sgd.steps(), 2);
}

TEST(Optimizer, AdamWDecaysFlaggedParametersOnly) {
  Variable w = param({1.0f, 1.0f}, {1, 2}, "w"), b = param({1.0f}, {1}, "b");
  AdamWOptions o;
  o.weight_decay = 0.5;
  AdamW adam(with_default_decay({{"w", w}, {"b", b}}), o);
  set_grad(w, {0.0f, 0.0f});  // zero gradients: only the decay moves anything
  set_grad(b, {0.0f});
  adam.step(0.1);
  EXPECT_NEAR(w.data().to_vector<float>()[0], 1.0f * (1 - 0.1f * 0.5f), 1e-7);
  EXPECT_EQ(b.data().item<float>(), 1.0f);
}

TEST(Optimizer, SkipsParametersWithoutGradient) {
  Variable a = param({1.0f}, {1}, "a"), c = param({1.0f}, {1}, "c");
  AdamWOptions o;
  o.weight_decay = 0.0;
  AdamW adam({{"a", a, false}, {"c", c, false}}, o);
  set_grad(a, {0.5f});
  adam.step(0.1);  // c has no gradient: untouched, and its update count stays 0
  EXPECT_NEAR(a.data().item<float>(), 0.9f, 1e-6);
  EXPECT_EQ(c.data().item<float>(), 1.0f);
  set_grad(c, {0.5f});
  a.zero_grad();
  adam.step(0.1);  // c's first update: bias-corrected as step 1, so a full lr step
  EXPECT_NEAR(c.data().item<float>(), 0.9f, 1e-6);
  EXPECT_NEAR(a.data().item<float>(), 0.9f, 1e-6);
  const train::StateDict sd = adam.state_dict();
  EXPECT_EQ(sd.ints.at("a/step"), 1);
  EXPECT_EQ(sd.ints.at("c/step"), 1);
  EXPECT_EQ(sd.ints.at("step"), 2);
}

TEST(Optimizer, ZeroGradClearsGradients) {
  Variable w = param({1.0f}, {1}, "w");
  SGD sgd({{"w", w, true}});
  set_grad(w, {1.0f});
  sgd.zero_grad();
  EXPECT_FALSE(w.grad().defined());
}

// Two identical runs, one interrupted after two steps and resumed from state dicts (parameters
// copied by value, optimizer state loaded), agree bit for bit at step three.
template <typename Opt, typename Options>
void expect_resume_matches(const Options& o) {
  manual_seed(5);
  const Tensor w0 = randn({3, 4}), b0 = randn({4});
  std::vector<Tensor> grads;
  for (int i = 0; i < 3; ++i) {
    grads.push_back(randn({3, 4}));
    grads.push_back(randn({4}));
  }
  auto fresh = [&](Variable& w, Variable& b) {
    w = Variable(w0.clone(), true, "w");
    b = Variable(b0.clone(), true, "b");
  };
  Variable w, b;
  fresh(w, b);
  Opt first(with_default_decay({{"layer/w", w}, {"layer/b", b}}), o);
  for (int s = 0; s < 2; ++s) {
    w.set_grad(grads[2 * s]);
    b.set_grad(grads[2 * s + 1]);
    first.step(0.05);
  }
  const train::StateDict saved = first.state_dict();
  EXPECT_EQ(saved.ints.at("step"), 2);
  Variable w2, b2;
  fresh(w2, b2);
  w2.set_data(w.data().clone());
  b2.set_data(b.data().clone());
  Opt second(with_default_decay({{"layer/w", w2}, {"layer/b", b2}}), o);
  second.load_state_dict(saved);
  EXPECT_EQ(second.steps(), 2);
  for (Variable* v : {&w, &w2}) v->set_grad(grads[4]);
  for (Variable* v : {&b, &b2}) v->set_grad(grads[5]);
  first.step(0.05);
  second.step(0.05);
  EXPECT_EQ(w.data().to_vector<float>(), w2.data().to_vector<float>());
  EXPECT_EQ(b.data().to_vector<float>(), b2.data().to_vector<float>());
}

TEST(Optimizer, StateDictRoundTripResumesExactly) {
  AdamWOptions a;
  a.weight_decay = 0.1;
  expect_resume_matches<AdamW>(a);
  SgdOptions s;
  s.momentum = 0.9;
  s.nesterov = true;
  s.weight_decay = 0.01;
  expect_resume_matches<SGD>(s);
}

TEST(Optimizer, StateDictNamesEntriesByParameterPath) {
  Variable w = param({1, 2, 3, 4}, {2, 2}, "w");
  AdamW adam({{"blocks/0/attn/qkv/weight", w, true}});
  const train::StateDict sd = adam.state_dict();
  EXPECT_EQ(sd.tensors.count("blocks/0/attn/qkv/weight/exp_avg"), 1u);
  EXPECT_EQ(sd.tensors.count("blocks/0/attn/qkv/weight/exp_avg_sq"), 1u);
  EXPECT_EQ(sd.ints.count("blocks/0/attn/qkv/weight/step"), 1u);
  SGD plain({{"w", w, true}});  // no momentum: no state tensors
  EXPECT_TRUE(plain.state_dict().tensors.empty());
}

TEST(Optimizer, LoadStateDictNamesWhatIsWrong) {
  Variable w = param({1, 2, 3, 4}, {2, 2}, "w"), b = param({1, 2}, {2}, "b");
  AdamW adam({{"w", w, true}, {"b", b, false}});
  const train::StateDict good = adam.state_dict();

  train::StateDict missing = good;
  missing.tensors.erase("b/exp_avg");
  expect_error_contains_all([&] { adam.load_state_dict(missing); }, {"missing", "'b/exp_avg'"});

  train::StateDict extra = good;
  extra.tensors["c/exp_avg"] = zeros({1});
  expect_error_contains_all([&] { adam.load_state_dict(extra); }, {"unexpected", "'c/exp_avg'"});

  train::StateDict shaped = good;
  shaped.tensors["w/exp_avg_sq"] = ones({4});
  shaped.tensors["w/exp_avg"] = ones({2, 2});  // well formed, but must not be loaded
  expect_error_contains_all([&] { adam.load_state_dict(shaped); },
                            {"wrong shape", "'w/exp_avg_sq' ([4] given, [2, 2] expected)",
                             "nothing was loaded"});
  EXPECT_EQ(adam.state_dict().tensors.at("w/exp_avg").to_vector<float>(),
            std::vector<float>(4, 0.0f));

  train::StateDict no_step = good;
  no_step.ints.erase("w/step");
  expect_error_contains([&] { adam.load_state_dict(no_step); }, "'w/step'");

  // A count of a parameter it does not hold: another parameter set (SGD without momentum keeps
  // nothing else, so this is all there is to tell).
  train::StateDict other = good;
  other.ints["old/step"] = 3;
  expect_error_contains_all([&] { adam.load_state_dict(other); }, {"unexpected", "'old/step'"});
  SGD plain({{"w", w, true}});
  train::StateDict plain_other = plain.state_dict();
  plain_other.ints["old/step"] = 3;
  expect_error_contains([&] { plain.load_state_dict(plain_other); }, "unexpected: 'old/step'");
}

TEST(Optimizer, RejectsBadParameters) {
  Variable w = param({1, 2}, {2}, "w");
  expect_error_contains([&] { SGD s({{"w", w, true}, {"w", w, true}}); }, "appears twice");
  // One Variable under two names (two modules' lists of a tied weight) would be stepped twice.
  expect_error_contains([&] { SGD s({{"a", w, true}, {"b", w, true}}); }, "'a' and 'b' are one Variable");
  Variable frozen(zeros({2}), false, "frozen");
  expect_error_contains([&] { SGD s({{"frozen", frozen, true}}); }, "requires grad");
  SgdOptions o;
  o.nesterov = true;
  expect_error_contains([&] { SGD s({{"w", w, true}}, o); }, "Nesterov");
}

TEST(Optimizer, StateOfAnotherShapeNamesRelayoutState) {
  // A sparse layer's values re-laid out (a mask change) without relayout_state: the step says so,
  // not the update kernel with a shape mismatch of its own.
  // The parameter before it is left as it was, so that a step after relayout_state applies its
  // gradient once.
  Variable b = param({5, 6}, {2}, "bias"), w = param({1, 2, 3, 4}, {4}, "values");
  AdamW opt({{"bias", b, false}, {"values", w, true}});
  set_grad(b, {1, 1});
  set_grad(w, {1, 1, 1, 1});
  opt.step(0.1);
  w.set_data(from_vector(std::vector<float>{1, 2, 3}, {3}));
  set_grad(w, {1, 1, 1});
  const std::vector<float> before = b.data().to_vector<float>();
  expect_error_contains([&] { opt.step(0.1); },
                        "AdamW: the state 'exp_avg' of 'values' has shape [4] but the parameter now has shape [3]");
  EXPECT_EQ(b.data().to_vector<float>(), before);
  EXPECT_EQ(opt.state_dict().ints.at("bias/step"), 1);
}

TEST(OptimizerCuda, MatchesCpuOverSteps) {
  PIT_REQUIRE_CUDA();
  manual_seed(9);
  const Tensor w0 = randn({64, 33}), b0 = randn({33});
  Variable wc(w0.clone(), true), bc(b0.clone(), true);
  Variable wg(w0.to(Device::cuda()), true), bg(b0.to(Device::cuda()), true);
  AdamW cpu(with_default_decay({{"w", wc}, {"b", bc}}));
  AdamW gpu(with_default_decay({{"w", wg}, {"b", bg}}));
  for (int s = 0; s < 3; ++s) {
    const Tensor gw = randn({64, 33}), gb = randn({33});
    wc.set_grad(gw);
    bc.set_grad(gb);
    wg.set_grad(gw.to(Device::cuda()));
    bg.set_grad(gb.to(Device::cuda()));
    cpu.step(1e-2);
    gpu.step(1e-2);
  }
  EXPECT_TRUE(wg.data().is_cuda());
  expect_close(wg.data(), wc.data(), 1e-5, 1e-6, "w");
  expect_close(bg.data(), bc.data(), 1e-5, 1e-6, "b");
  // The state comes back on the host and loads into the CPU optimizer.
  const train::StateDict sd = gpu.state_dict();
  EXPECT_FALSE(sd.tensors.at("w/exp_avg").is_cuda());
  cpu.load_state_dict(sd);
}

}  // namespace
}  // namespace pit::optim
