// A research prototype on pit's library, start to finish: a classifier with a mixture-of-experts
// layer (nn::MoE: softmax router, top-2 of 4 experts, the dropless experts on the PIT engine, the
// load-balancing loss), trained with AdamW on generated data (examples/blobs.h), on the first GPU
// when there is one (bf16 compute, f32 master weights) and on the CPU otherwise (f32).
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
#include "examples/blobs.h"
#include "ops/functional.h"
#include "ops/operators.h"
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

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 300;
  const Device device = cuda_available() ? Device::cuda() : Device::cpu();
  const examples::Blobs task(kFeatures, kClasses, 1.0, 1234);
  Generator init(42);
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
    const examples::Blobs::Batch b = task.batch(kBatch, 1000 + static_cast<uint64_t>(step), device);
    const Variable logits = model(Variable(b.x));
    const Variable loss = ops::cross_entropy(ops::cast(logits, DType::f32), b.labels);
    const Variable total = loss + 0.01 * model.moe().last_routing().aux_loss;  // keeps the experts in use
    opt.zero_grad();
    total.backward();
    opt.step(3e-3);
    const double value = loss.data().item<float>();
    if (step == 1) first = value;
    if (step > steps - window) recent += value;
    if (step % 50 == 0 || step == 1) {
      std::string load;
      for (const float n : model.moe().last_routing().tokens_per_expert.to_vector<float>()) {
        if (!load.empty()) load += ' ';
        load += std::to_string(static_cast<int>(n));
      }
      std::printf("step %4d  loss %.4f  tokens per expert: %s\n", step, value, load.c_str());
    }
  }

  // Held-out accuracy, without the tape.
  model.train(false);
  const NoGradGuard no_grad;
  const examples::Blobs::Batch test = task.batch(kBatch, 7, device);
  const double accuracy = 100.0 * task.accuracy(model(Variable(test.x)).data(), test.labels);
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
