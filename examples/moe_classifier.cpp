// A research prototype on pit's library, start to finish: a classifier with a mixture-of-experts
// layer (nn::MoE: softmax router, top-2 of 4 experts, the dropless experts on the PIT engine, the
// load-balancing loss), trained with AdamW on generated data, on the first GPU when there is one
// (bf16 compute, f32 master weights) and on the CPU otherwise (f32).
//
//   build/examples/pit-example-moe [steps]
//
// Prints the loss every 50 steps with the tokens each expert took, then the held-out accuracy;
// exits non-zero when it did not learn (the loss over the last 50 steps not below a fifth of the
// first step's, or the held-out accuracy under 90%; the classes overlap, so about 96% is the
// most there is).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/core.h"
#include "ops/functional.h"
#include "ops/operators.h"
#include "trainer/nn/init.h"
#include "trainer/nn/layers.h"
#include "trainer/nn/moe.h"
#include "trainer/optim/adamw.h"

using namespace pit;

namespace {

constexpr int64_t kFeatures = 16, kDim = 64, kClasses = 8, kBatch = 256;

// x -> Linear -> h + MoE(h) -> Linear: logits over the classes.
class MoeClassifier : public nn::Module {
 public:
  explicit MoeClassifier(Generator& gen) {
    embed_ = register_module("embed", std::make_shared<nn::Linear>(kFeatures, kDim, true, gen));
    nn::MoE::Options o;
    o.dim = kDim;
    o.hidden = 2 * kDim;
    o.experts = 4;
    o.top_k = 2;
    moe_ = register_module("moe", std::make_shared<nn::MoE>(o, gen));
    head_ = register_module("head", std::make_shared<nn::Linear>(kDim, kClasses, true, gen));
  }
  const char* type_name() const override { return "MoeClassifier"; }
  Variable forward(const Variable& x) override {
    const Variable h = (*embed_)(x);
    return (*head_)(h + (*moe_)(h));
  }
  const nn::MoE& moe() const { return *moe_; }

 private:
  std::shared_ptr<nn::Linear> embed_, head_;
  std::shared_ptr<nn::MoE> moe_;
};

// A batch of the task: each class is a point in feature space (fixed by the generator's seed);
// an example is its class's point plus Gaussian noise. Drawn on the host, moved to `device`.
struct Batch {
  Tensor x, labels;
};

Batch make_batch(const std::vector<float>& centers, uint64_t seed, Device device) {
  Generator gen(seed);
  const std::vector<float> noise = nn::init::normal({kBatch, kFeatures}, 0.0, 1.0, gen).to_vector<float>();
  std::vector<float> x(static_cast<size_t>(kBatch * kFeatures));
  std::vector<int64_t> labels(static_cast<size_t>(kBatch));
  for (int64_t i = 0; i < kBatch; ++i) {
    const int64_t c = (i * 7 + static_cast<int64_t>(seed)) % kClasses;
    labels[static_cast<size_t>(i)] = c;
    for (int64_t f = 0; f < kFeatures; ++f) {
      const size_t at = static_cast<size_t>(i * kFeatures + f);
      x[at] = centers[static_cast<size_t>(c * kFeatures + f)] + noise[at];
    }
  }
  return {from_vector(x, {kBatch, kFeatures}, device), from_vector(labels, device)};
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 300;
  const Device device = cuda_available() ? Device::cuda() : Device::cpu();
  Generator data(1234), init(42);
  const std::vector<float> centers = nn::init::normal({kClasses, kFeatures}, 0.0, 1.0, data).to_vector<float>();

  MoeClassifier model(init);
  model.to(device);
  if (device.is_cuda()) model.set_compute_dtype(DType::bf16);
  optim::AdamW opt(optim::with_default_decay(model.named_parameters()), {.weight_decay = 0.01});
  std::printf("pit-example-moe: %lld parameters on %s (%s compute), %d steps of %lld examples\n",
              static_cast<long long>(model.num_parameters()), device.str().c_str(),
              dtype_name(model.compute_dtype()), steps, static_cast<long long>(kBatch));

  double first = 0.0, recent = 0.0;  // the first step's loss; the sum over the last 50 steps
  const int window = std::min(50, steps);
  for (int step = 1; step <= steps; ++step) {
    const Batch b = make_batch(centers, 1000 + static_cast<uint64_t>(step), device);
    const Variable logits = model(Variable(b.x));
    const Variable task = ops::cross_entropy(ops::cast(logits, DType::f32), b.labels);
    const Variable loss = task + 0.01 * model.moe().last_routing().aux_loss;  // keep the experts in use
    opt.zero_grad();
    loss.backward();
    opt.step(3e-3);
    const double value = task.data().item<float>();
    if (step == 1) first = value;
    if (step > steps - window) recent += value;
    if (step % 50 == 0 || step == 1) {
      const std::vector<float> per_expert = model.moe().last_routing().tokens_per_expert.to_vector<float>();
      std::string load;
      for (const float n : per_expert) {
        if (!load.empty()) load += ' ';
        load += std::to_string(static_cast<int>(n));
      }
      std::printf("step %4d  loss %.4f  tokens per expert: %s\n", step, value, load.c_str());
    }
  }

  // Held-out accuracy, without the tape.
  model.train(false);
  const NoGradGuard no_grad;
  const Batch test = make_batch(centers, 7, device);
  const std::vector<float> logits = ops::cast(model(Variable(test.x)), DType::f32).data().to_vector<float>();
  const std::vector<int64_t> labels = test.labels.to_vector<int64_t>();
  int correct = 0;
  for (int64_t i = 0; i < kBatch; ++i) {
    const float* row = logits.data() + i * kClasses;
    correct += (std::max_element(row, row + kClasses) - row) == labels[static_cast<size_t>(i)];
  }
  const double accuracy = 100.0 * correct / kBatch;
  recent /= window;
  std::printf("loss %.4f at the first step, %.4f over the last %d; held-out accuracy %.1f%%\n", first, recent,
              window, accuracy);
  if (!(recent < first / 5) || accuracy < 90.0) {
    std::fprintf(stderr, "pit-example-moe: it did not learn (the loss must fall below a fifth of its start and "
                         "the held-out accuracy reach 90%%)\n");
    return 1;
  }
  return 0;
}
