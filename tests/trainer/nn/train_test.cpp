// End to end on the CPU: a tiny TransformerLM overfits one fixed batch with AdamW, and the MLP
// and CNN classifiers learn generated image tasks; on CUDA the transformer's first steps match
// the CPU's.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/random.h"
#include "ops/functional.h"
#include "ops/kernels.h"
#include "tests/gpu.h"
#include "trainer/nn/model.h"
#include "trainer/optim/adamw.h"
#include "trainer/optim/clip.h"
#include "trainer/optim/schedule.h"
#include "trainer/optim/sgd.h"

namespace pit::nn {
namespace {

ModelOptions tiny_lm() {
  ModelOptions o;
  o.kind = ModelKind::transformer;
  o.seed = 1;
  o.vocab_size = 16;
  o.block_size = 8;
  o.n_layer = 2;
  o.n_head = 2;
  o.n_embd = 32;
  o.activation = Activation::gelu_tanh;
  return o;
}

// Token ids (b, t + 1) from Philox: inputs are the first t columns, targets the last t.
struct LmBatch {
  Tensor ids, targets;
};

LmBatch lm_batch(int64_t b, int64_t t, int64_t vocab) {
  Generator gen(77);
  const uint64_t seed = gen.seed(), offset = gen.reserve(static_cast<uint64_t>(b * (t + 1)));
  std::vector<int64_t> seq(static_cast<size_t>(b * (t + 1)));
  for (size_t i = 0; i < seq.size(); ++i)
    seq[i] = static_cast<int64_t>(philox_uniform(seed, offset, i) * static_cast<float>(vocab));
  const Tensor all = from_vector(seq, {b, t + 1});
  return {all.slice(1, 0, t).contiguous(), all.slice(1, 1, t + 1).contiguous()};
}

Variable lm_loss(Module& lm, const LmBatch& batch) {
  const Variable logits = lm.forward(Variable(batch.ids));
  return ops::cross_entropy(ops::reshape(logits, {-1, logits.size(-1)}), batch.targets.reshape({-1}));
}

ModelOptions tiny_moe_lm() {
  ModelOptions o = tiny_lm();
  o.experts = 4;
  o.top_k = 2;
  return o;
}

TEST(Training, TinyTransformerOverfitsOneBatch) {
  for (const ModelOptions& options : {tiny_lm(), tiny_moe_lm()}) {
  const auto lm = make_model(options);
  const LmBatch batch = lm_batch(4, 8, 16);
  optim::AdamWOptions ao;
  ao.weight_decay = 0.0;
  optim::AdamW opt(optim::with_default_decay(lm->named_parameters()), ao);
  const std::vector<Variable> params = lm->parameters();
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    const Variable loss = lm_loss(*lm, batch);
    (step == 0 ? first : last) = loss.data().item<float>();
    loss.backward();
    optim::clip_grad_norm(params, 1.0);
    opt.step(1e-2);
    opt.zero_grad();
  }
  EXPECT_NEAR(first, std::log(16.0), 0.3);  // small init: near uniform predictions
  EXPECT_LT(last, first / 5) << "loss " << first << " -> " << last << (options.experts ? " (MoE)" : "");
  }
}

// Images (n, 1, 28, 28): class k is a bright 6x6 square at one of ten places, on noise.
struct ImageBatch {
  Tensor x, y;
};

ImageBatch squares(int64_t n, uint64_t seed) {
  Generator gen(seed);
  const uint64_t s = gen.seed(), off = gen.reserve(static_cast<uint64_t>(n * (784 + 1)));
  std::vector<float> x(static_cast<size_t>(n * 784));
  std::vector<int64_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = static_cast<int64_t>(philox_uniform(s, off, i * 785) * 10.0f) % 10;
    y[i] = k;
    const int64_t r0 = 2 + 13 * (k / 5), c0 = 1 + 5 * (k % 5);
    for (int64_t p = 0; p < 784; ++p) {
      const int64_t r = p / 28, c = p % 28;
      const bool on = r >= r0 && r < r0 + 6 && c >= c0 && c < c0 + 4;
      x[i * 784 + p] = (on ? 1.0f : 0.0f) + 0.3f * (philox_uniform(s, off, i * 785 + 1 + p) - 0.5f);
    }
  }
  return {from_vector(x, {n, 1, 28, 28}), from_vector(y, {n})};
}

double accuracy(Module& m, const ImageBatch& b) {
  NoGradGuard no_grad;
  m.train(false);
  const Tensor pred = kernels::max(m.forward(Variable(b.x)).data(), 1).indices;
  m.train(true);
  const std::vector<int64_t> p = pred.to_vector<int64_t>(), y = b.y.to_vector<int64_t>();
  int64_t right = 0;
  for (size_t i = 0; i < p.size(); ++i) right += p[i] == y[i] ? 1 : 0;
  return static_cast<double>(right) / static_cast<double>(p.size());
}

void train_classifier(Module& m, optim::Optimizer& opt, const ImageBatch& train, int steps,
                      double lr) {
  for (int step = 0; step < steps; ++step) {
    const Variable loss = ops::cross_entropy(m.forward(Variable(train.x)), train.y);
    loss.backward();
    opt.step(lr);
    opt.zero_grad();
  }
}

TEST(Training, MlpClassifierLearnsSquares) {
  ModelOptions o;
  o.hidden = {64};
  o.dropout = 0.1;
  const auto mlp = make_model(o);
  const ImageBatch train = squares(200, 1), test = squares(200, 2);
  EXPECT_LT(accuracy(*mlp, test), 0.5);
  optim::SgdOptions so;
  so.momentum = 0.9;
  optim::SGD opt(optim::with_default_decay(mlp->named_parameters()), so);
  train_classifier(*mlp, opt, train, 40, 0.05);
  EXPECT_GT(accuracy(*mlp, test), 0.9);
}

TEST(Training, CnnClassifierLearnsSquares) {
  ModelOptions o;
  o.kind = ModelKind::cnn;
  o.channels = {4, 8};
  o.hidden = {32};
  const auto cnn = make_model(o);
  const ImageBatch train = squares(100, 3), test = squares(200, 4);
  optim::AdamW opt(optim::with_default_decay(cnn->named_parameters()));
  train_classifier(*cnn, opt, train, 30, 1e-2);
  EXPECT_GT(accuracy(*cnn, test), 0.9);
}

void expect_steps_match_the_cpu(const ModelOptions& options) {
  const auto cpu = make_model(options), gpu = make_model(options);
  gpu->to(Device::cuda());
  const LmBatch batch = lm_batch(4, 8, 16);
  const LmBatch on_gpu{batch.ids.to(Device::cuda()), batch.targets.to(Device::cuda())};
  optim::AdamW oc(optim::with_default_decay(cpu->named_parameters()));
  optim::AdamW og(optim::with_default_decay(gpu->named_parameters()));
  for (int step = 0; step < 5; ++step) {
    const Variable lc = lm_loss(*cpu, batch), lg = lm_loss(*gpu, on_gpu);
    EXPECT_NEAR(lg.data().item<float>(), lc.data().item<float>(), 1e-4 * (1 + step)) << step;
    lc.backward();
    lg.backward();
    const Tensor nc = optim::clip_grad_norm(cpu->parameters(), 0.5);
    const Tensor ng = optim::clip_grad_norm(gpu->parameters(), 0.5);
    EXPECT_NEAR(ng.item<float>(), nc.item<float>(), 1e-4 * nc.item<float>());
    oc.step(1e-2);
    og.step(1e-2);
    oc.zero_grad();
    og.zero_grad();
  }
}

TEST(TrainingCuda, TransformerStepsMatchTheCpu) {
  PIT_REQUIRE_CUDA();
  expect_steps_match_the_cpu(tiny_lm());
}

// With MoE layers (routing on each device from its own router probabilities: a near tie could
// route one token differently, which these weights and inputs do not produce).
TEST(TrainingCuda, MoeTransformerStepsMatchTheCpu) {
  PIT_REQUIRE_CUDA();
  expect_steps_match_the_cpu(tiny_moe_lm());
}

}  // namespace
}  // namespace pit::nn
