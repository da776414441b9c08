// Module: registration, recursive paths, tied parameters, train/eval, zero_grad, state dicts
// (round trip and error messages), moving to CUDA.
#include "trainer/nn/module.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/random.h"
#include "ops/functional.h"
#include "tests/core/expect_error.h"
#include "tests/gpu.h"
#include "tests/ops/check.h"
#include "trainer/nn/model.h"

namespace pit::nn {
namespace {

using test::expect_close;
using test::expect_error_contains;
using test::expect_error_contains_all;

// A module with a parameter, a buffer and a child, to test registration directly.
class Leaf : public Module {
 public:
  explicit Leaf(int64_t n) {
    w_ = register_parameter("w", full({n}, 2.0));
    register_buffer("count", zeros({1}, DType::i64));
  }
  const char* type_name() const override { return "Leaf"; }
  Variable forward(const Variable& x) override { return ops::mul(x, w_); }
  void add_twice() { register_parameter("w", zeros({1})); }
  const Variable& w() const { return w_; }

 private:
  Variable w_;
};

class Tree : public Module {
 public:
  Tree() {
    register_parameter("scale", ones({1}));
    a = register_module("a", std::make_shared<Leaf>(3));
    list = register_module("list", std::make_shared<ModuleList>());
    list->push_back(std::make_shared<Leaf>(2));
    list->push_back(a);  // shared: its parameter appears once, under "a"
  }
  const char* type_name() const override { return "Tree"; }
  std::shared_ptr<Leaf> a;
  std::shared_ptr<ModuleList> list;
};

std::vector<std::string> names_of(const NamedParameters& ps) {
  std::vector<std::string> out;
  for (const auto& [name, v] : ps) out.push_back(name);
  return out;
}

ModelOptions tiny_lm(uint64_t seed, bool tie = true) {
  ModelOptions o;
  o.kind = ModelKind::transformer;
  o.seed = seed;
  o.vocab_size = 11;
  o.block_size = 6;
  o.n_layer = 2;
  o.n_head = 2;
  o.n_embd = 8;
  o.tie_embeddings = tie;
  return o;
}

Tensor ids_for(int64_t b, int64_t t, int64_t vocab, Device device = Device::cpu()) {
  std::vector<int64_t> v(static_cast<size_t>(b * t));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>((i * 7 + 3) % vocab);
  return from_vector(v, {b, t}, device);
}

TEST(Module, RecursivePathsInRegistrationOrder) {
  Tree tree;
  EXPECT_EQ(names_of(tree.named_parameters()),
            (std::vector<std::string>{"scale", "a/w", "list/0/w"}));
  EXPECT_EQ(tree.num_parameters(), 1 + 3 + 2);
  EXPECT_EQ(tree.parameters().size(), 3u);
  const NamedBuffers buffers = tree.named_buffers();
  ASSERT_EQ(buffers.size(), 3u);  // buffers are listed per path, shared modules included
  EXPECT_EQ(buffers[0].first, "a/count");
  EXPECT_EQ(buffers[1].first, "list/0/count");
  for (const Variable& p : tree.parameters()) {
    EXPECT_TRUE(p.requires_grad());
    EXPECT_EQ(p.dtype(), DType::f32);
  }
}

TEST(Module, TransformerPathsAndTiedHead) {
  const auto tied = make_model(tiny_lm(1));
  const std::vector<std::string> names = names_of(tied->named_parameters());
  const std::vector<std::string> first{"wte/weight",         "wpe/weight",
                                       "blocks/0/ln_1/weight", "blocks/0/ln_1/bias",
                                       "blocks/0/attn/qkv/weight", "blocks/0/attn/qkv/bias",
                                       "blocks/0/attn/proj/weight"};
  ASSERT_GE(names.size(), first.size());
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + first.size()), first);
  EXPECT_EQ(names.back(), "ln_f/bias");
  const auto untied = make_model(tiny_lm(1, false));
  EXPECT_EQ(names_of(untied->named_parameters()).back(), "lm_head/weight");
  EXPECT_EQ(untied->num_parameters(), tied->num_parameters() + 11 * 8);
}

TEST(Module, RegistrationErrorsNameTheModule) {
  Leaf leaf(2);
  expect_error_contains([&] { leaf.add_twice(); }, "Leaf: the name 'w' is registered twice");
  expect_error_contains([&] { ModuleList().forward(Variable(zeros({1}))); },
                        "ModuleList has no one-input forward()");
}

TEST(Module, TrainEvalAndZeroGrad) {
  Tree tree;
  EXPECT_TRUE(tree.is_training());
  tree.train(false);
  EXPECT_FALSE(tree.a->is_training());
  EXPECT_FALSE(tree.list->is_training());
  tree.train();
  EXPECT_TRUE((*tree.list)[0].is_training());

  const Variable y = ops::sum(tree.a->forward(Variable(ones({3}))));
  y.backward();
  EXPECT_TRUE(tree.a->w().grad().defined());
  tree.zero_grad();
  for (const Variable& p : tree.parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(Module, DropoutOnlyWhileTraining) {
  ModelOptions o = tiny_lm(3);
  o.dropout = 0.5;
  const auto lm = make_model(o);
  const Variable ids(ids_for(2, 6, 11));
  lm->train(false);
  const Tensor a = lm->forward(ids).data(), b = lm->forward(ids).data();
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  lm->train(true);
  EXPECT_NE(lm->forward(ids).data().to_vector<float>(), a.to_vector<float>());
}

TEST(Module, StateDictRoundTrip) {
  const auto a = make_model(tiny_lm(1)), b = make_model(tiny_lm(2));
  const Variable ids(ids_for(2, 5, 11));
  const Tensor ya = a->forward(ids).data();
  EXPECT_NE(b->forward(ids).data().to_vector<float>(), ya.to_vector<float>());
  const train::StateDict sd = a->state_dict();
  EXPECT_EQ(sd.tensors.size(), a->named_parameters().size());
  b->load_state_dict(sd);
  EXPECT_EQ(b->forward(ids).data().to_vector<float>(), ya.to_vector<float>());
  // The state dict is a copy: changing the model later leaves it alone.
  Tensor w = a->named_parameters().front().second.data();
  w.fill_(0.0);
  EXPECT_NE(sd.tensors.at("wte/weight").to_vector<float>()[0], 0.0f);
  // Buffers take part too.
  Tree t1, t2;
  Tensor(t1.a->w().data()).fill_(5.0);
  train::StateDict st = t1.state_dict();
  EXPECT_EQ(st.tensors.count("a/count"), 1u);
  t2.load_state_dict(st);
  EXPECT_EQ(t2.a->w().data().to_vector<float>(), std::vector<float>(3, 5.0f));
}

TEST(Module, LoadStateDictNamesWhatIsWrong) {
  const auto m = make_model(tiny_lm(1));
  const train::StateDict good = m->state_dict();
  const std::vector<float> before = m->named_parameters().front().second.data().to_vector<float>();

  train::StateDict missing = good;
  missing.tensors.erase("blocks/1/attn/qkv/weight");
  missing.tensors.at("wte/weight").fill_(7.0);
  expect_error_contains_all([&] { m->load_state_dict(missing); },
                            {"TransformerLM.load_state_dict", "missing: 'blocks/1/attn/qkv/weight' [24, 8]",
                             "nothing was loaded"});
  // Nothing was loaded, not even the entries that were fine.
  EXPECT_EQ(m->named_parameters().front().second.data().to_vector<float>(), before);

  train::StateDict extra = good;
  extra.tensors["lm_head/weight"] = zeros({11, 8});
  expect_error_contains([&] { m->load_state_dict(extra); }, "unexpected: 'lm_head/weight'");

  train::StateDict shaped = good;
  shaped.tensors["ln_f/weight"] = ones({9});
  expect_error_contains([&] { m->load_state_dict(shaped); },
                        "wrong shape: 'ln_f/weight' ([9] given, [8] expected)");
}

TEST(ModuleCuda, ToMovesParametersAndGradients) {
  PIT_REQUIRE_CUDA();
  const auto cpu = make_model(tiny_lm(4)), gpu = make_model(tiny_lm(4));
  const Variable ids(ids_for(2, 6, 11));
  const Variable loss = ops::sum(gpu->forward(ids));
  loss.backward();
  gpu->to(Device::cuda());
  EXPECT_TRUE(gpu->device().is_cuda());
  for (const Variable& p : gpu->parameters()) {
    EXPECT_TRUE(p.data().is_cuda());
    EXPECT_TRUE(p.grad().is_cuda());
  }
  const Tensor y = gpu->forward(Variable(ids.data().to(Device::cuda()))).data();
  expect_close(y.to(Device::cpu()), cpu->forward(ids).data(), 1e-4, 1e-5, "logits");
  // The state dict comes back on the host and loads into the CPU model.
  const train::StateDict sd = gpu->state_dict();
  EXPECT_FALSE(sd.tensors.at("wte/weight").is_cuda());
  cpu->load_state_dict(sd);
  // GPU ids into the model left on the CPU: refused, rather than training on the CPU unnoticed.
  expect_error_contains([&] { (void)cpu->forward(Variable(ids.data().to(Device::cuda()))); },
                        "Embedding: the ids are on cuda:0 but the table is on cpu; move the model");
}

}  // namespace
}  // namespace pit::nn
