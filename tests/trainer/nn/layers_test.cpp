// The layers and models: initialisation statistics (PyTorch defaults, GPT-2), determinism from
// the seed, the output and parameter shapes of every model, and the argument checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/random.h"
#include "tests/core/expect_error.h"
#include "trainer/nn/classifiers.h"
#include "trainer/nn/layers.h"
#include "trainer/nn/model.h"
#include "trainer/nn/transformer.h"

namespace pit::nn {
namespace {

using test::expect_error_contains;

struct Stats {
  double mean = 0, std = 0, max_abs = 0;
};

Stats stats(const Tensor& t) {
  const std::vector<double> v = t.to(DType::f64).to_vector<double>();
  Stats s;
  for (const double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  for (const double x : v) {
    s.std += (x - s.mean) * (x - s.mean);
    s.max_abs = std::max(s.max_abs, std::abs(x));
  }
  s.std = std::sqrt(s.std / static_cast<double>(v.size()));
  return s;
}

std::map<std::string, Tensor> params_of(const Module& m) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, v] : m.named_parameters()) out[name] = v.data();
  return out;
}

// The sample std of n draws is within a few percent of the true one (its relative standard
// error is about 1 / sqrt(2 n): 0.3% to 1.2% for the sizes below); 5% leaves a wide margin.
constexpr double kStdTol = 0.05;

TEST(Init, PytorchDefaultsForLinearAndConv) {
  Generator gen(1);
  const Linear lin(400, 300, true, gen);
  const double bound = 1.0 / std::sqrt(400.0);
  const Stats w = stats(lin.weight().data()), b = stats(lin.bias().data());
  EXPECT_NEAR(w.std, bound / std::sqrt(3.0), kStdTol * bound / std::sqrt(3.0));
  EXPECT_LE(w.max_abs, bound);
  EXPECT_GT(w.max_abs, 0.99 * bound);
  EXPECT_NEAR(w.mean, 0.0, 3e-4);
  EXPECT_LE(b.max_abs, bound);
  EXPECT_GT(b.std, 0.0);

  const Conv2d conv(4, 64, 3, 1, 1, true, gen);
  const Stats c = stats(params_of(conv).at("weight"));
  const double cb = 1.0 / 6.0;  // fan_in 4 * 3 * 3
  EXPECT_NEAR(c.std, cb / std::sqrt(3.0), kStdTol * cb / std::sqrt(3.0));
  EXPECT_LE(c.max_abs, cb);

  const Embedding emb(100, 64, gen);
  EXPECT_NEAR(stats(emb.weight().data()).std, 1.0, kStdTol);
}

TEST(Init, Gpt2ForTheTransformer) {
  ModelOptions o;
  o.kind = ModelKind::transformer;
  o.vocab_size = 128;
  o.block_size = 64;
  o.n_layer = 4;
  o.n_head = 4;
  o.n_embd = 64;
  const auto p = params_of(*make_model(o));
  const double resid = 0.02 / std::sqrt(2.0 * 4);
  for (const auto& [name, want] : std::vector<std::pair<std::string, double>>{
           {"wte/weight", 0.02}, {"wpe/weight", 0.02}, {"blocks/0/attn/qkv/weight", 0.02},
           {"blocks/3/mlp/fc/weight", 0.02}, {"blocks/0/attn/proj/weight", resid},
           {"blocks/2/mlp/proj/weight", resid}}) {
    SCOPED_TRACE(name);
    const Stats s = stats(p.at(name));
    EXPECT_NEAR(s.std, want, kStdTol * want);
    EXPECT_NEAR(s.mean, 0.0, 0.1 * want);
  }
  for (const char* zero : {"blocks/0/attn/qkv/bias", "blocks/1/mlp/proj/bias", "ln_f/bias"})
    EXPECT_EQ(stats(p.at(zero)).max_abs, 0.0) << zero;
  const Stats ln = stats(p.at("blocks/0/ln_1/weight"));
  EXPECT_EQ(ln.mean, 1.0);
  EXPECT_EQ(ln.std, 0.0);
}

TEST(Init, DeterministicFromTheSeed) {
  ModelOptions o;
  o.kind = ModelKind::cnn;
  o.channels = {4, 8};
  o.hidden = {16};
  o.seed = 42;
  const auto a = params_of(*make_model(o)), b = params_of(*make_model(o));
  o.seed = 43;
  const auto c = params_of(*make_model(o));
  for (const auto& [name, t] : a) {
    EXPECT_EQ(t.to_vector<float>(), b.at(name).to_vector<float>()) << name;
    EXPECT_NE(t.to_vector<float>(), c.at(name).to_vector<float>()) << name;
  }
  // The global generator plays no part.
  manual_seed(1);
  const auto d = params_of(*make_model(o));
  manual_seed(2);
  EXPECT_EQ(d.at("head/weight").to_vector<float>(),
            params_of(*make_model(o)).at("head/weight").to_vector<float>());
}

TEST(Shapes, Classifiers) {
  ModelOptions o;
  o.hidden = {32, 16};
  const auto mlp = make_model(o);
  EXPECT_EQ(mlp->forward(Variable(randn({3, 1, 28, 28}))).shape(), (Shape{3, 10}));
  const auto pm = params_of(*mlp);
  EXPECT_EQ(pm.at("hidden/0/weight").shape(), (Shape{32, 784}));
  EXPECT_EQ(pm.at("hidden/1/weight").shape(), (Shape{16, 32}));
  EXPECT_EQ(pm.at("head/weight").shape(), (Shape{10, 16}));

  o.kind = ModelKind::cnn;
  o.channels = {4, 8};
  o.hidden = {16};
  const auto cnn = make_model(o);
  EXPECT_EQ(cnn->forward(Variable(randn({2, 1, 28, 28}))).shape(), (Shape{2, 10}));
  const auto pc = params_of(*cnn);
  EXPECT_EQ(pc.at("convs/0/weight").shape(), (Shape{4, 1, 3, 3}));
  EXPECT_EQ(pc.at("convs/1/weight").shape(), (Shape{8, 4, 3, 3}));
  EXPECT_EQ(pc.at("hidden/0/weight").shape(), (Shape{16, 8 * 7 * 7}));  // 28 -> 14 -> 7

  o.in_channels = 3;
  o.image_size = 9;  // odd sizes pool down: 9 -> 4 -> 2
  o.num_classes = 5;
  const auto rgb = make_model(o);
  EXPECT_EQ(rgb->forward(Variable(randn({2, 3, 9, 9}))).shape(), (Shape{2, 5}));
  EXPECT_EQ(params_of(*rgb).at("hidden/0/weight").shape(), (Shape{16, 8 * 2 * 2}));
}

TEST(Shapes, Transformers) {
  for (const bool tie : {true, false})
    for (const NormKind norm : {NormKind::layernorm, NormKind::rmsnorm}) {
      SCOPED_TRACE(std::string(tie ? "tied " : "untied ") + norm_name(norm));
      ModelOptions o;
      o.kind = ModelKind::transformer;
      o.vocab_size = 13;
      o.block_size = 8;
      o.n_layer = 2;
      o.n_head = 2;
      o.n_embd = 16;
      o.mlp_ratio = 2;
      o.norm = norm;
      o.tie_embeddings = tie;
      o.activation = Activation::gelu_tanh;
      const auto lm = make_model(o);
      std::vector<int64_t> ids(2 * 5);
      for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i % 13);
      EXPECT_EQ(lm->forward(Variable(from_vector(ids, {2, 5}))).shape(), (Shape{2, 5, 13}));
      const auto p = params_of(*lm);
      EXPECT_EQ(p.at("blocks/1/mlp/fc/weight").shape(), (Shape{32, 16}));
      EXPECT_EQ(p.count("blocks/0/ln_1/bias"), norm == NormKind::layernorm ? 1u : 0u);
      EXPECT_EQ(p.count("lm_head/weight"), tie ? 0u : 1u);
    }
}

TEST(Shapes, Layers) {
  Generator gen(3);
  EXPECT_EQ(Linear(4, 5, false, gen).forward(Variable(randn({2, 3, 4}))).shape(), (Shape{2, 3, 5}));
  EXPECT_EQ(Embedding(7, 6, gen).forward(Variable(from_vector(std::vector<int64_t>{1, 2, 6}, {3, 1})))
                .shape(),
            (Shape{3, 1, 6}));
  EXPECT_EQ(LayerNorm(4).forward(Variable(randn({3, 4}))).shape(), (Shape{3, 4}));
  EXPECT_EQ(RMSNorm(4).forward(Variable(randn({2, 3, 4}))).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(Conv2d(2, 4, 3, 2, 1, true, gen).forward(Variable(randn({1, 2, 8, 8}))).shape(),
            (Shape{1, 4, 4, 4}));
  MLP::Options m;
  m.dim = 6;
  m.hidden = 12;
  m.out = 3;
  EXPECT_EQ(MLP(m, gen).forward(Variable(randn({5, 6}))).shape(), (Shape{5, 3}));
  TransformerOptions t;
  t.vocab_size = 5;
  t.block_size = 4;
  t.n_layer = 1;
  t.n_head = 2;
  t.n_embd = 8;
  EXPECT_EQ(CausalSelfAttention(t, gen).forward(Variable(randn({2, 4, 8}))).shape(), (Shape{2, 4, 8}));
  EXPECT_EQ(TransformerBlock(t, gen).forward(Variable(randn({2, 3, 8}))).shape(), (Shape{2, 3, 8}));
}

TEST(Checks, NameTheProblem) {
  ModelOptions o;
  o.kind = ModelKind::transformer;
  o.vocab_size = 5;
  o.block_size = 4;
  o.n_layer = 1;
  o.n_head = 3;
  o.n_embd = 8;
  expect_error_contains([&] { make_model(o); }, "n_embd 8 must be a multiple of n_head 3");
  o.n_head = 2;
  o.experts = 4;
  o.moe_every = 2;  // of 1 layer: no MoE layer at all
  expect_error_contains([&] { make_model(o); }, "moe_every 2 with 1 layers makes no layer MoE");
  o.experts = 0;
  const auto lm = make_model(o);
  expect_error_contains([&] { lm->forward(Variable(zeros({1, 5}, DType::i64))); },
                        "sequence length 5 must be in [1, block_size = 4]");
  expect_error_contains([&] { lm->forward(Variable(zeros({1, 3}))); }, "ids must be i64 or i32");
  ModelOptions c;
  c.kind = ModelKind::cnn;
  expect_error_contains([&] { make_model(c)->forward(Variable(zeros({2, 1, 14, 14}))); },
                        "the input must be (batch, 1, 28, 28), got [2, 1, 14, 14]");
  c.kind = ModelKind::mlp;
  expect_error_contains([&] { make_model(c)->forward(Variable(zeros({2, 100}))); },
                        "does not flatten to (batch, 784)");
  c.compute_dtype = DType::f64;
  expect_error_contains([&] { make_model(c); }, "compute dtype f64 is not supported");
  expect_error_contains([] { parse_activation("swish"); },
                        "unknown activation 'swish'; allowed: relu, gelu, gelu_tanh, silu, tanh");
  expect_error_contains([] { parse_model_kind("rnn"); }, "allowed: mlp, cnn, transformer");
  EXPECT_EQ(parse_norm("rmsnorm"), NormKind::rmsnorm);
  // An attention layer built on its own (not through TransformerLM's checks): n_head 0, the
  // options' default, divided by zero in forward.
  Generator gen(1);
  TransformerOptions t;
  t.n_embd = 8;
  expect_error_contains([&] { CausalSelfAttention(t, gen); },
                        "CausalSelfAttention: n_embd (8) must be a positive multiple of n_head (0)");
  t.n_head = 3;
  expect_error_contains([&] { TransformerBlock(t, gen, false); }, "multiple of n_head (3)");
}

}  // namespace
}  // namespace pit::nn
