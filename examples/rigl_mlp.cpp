// Dynamic sparse training on pit's library: an MLP whose two Linear layers are trained at 90%
// sparsity with RigL (sparse_train::Sparsifier: 32x1 units, ERK budget, the masks changed every
// 50 steps by dropping the smallest units and growing where the dense gradient is largest). The
// layers store only their kept units, with their gradients and AdamW state, and compute on the
// PIT kernels where they are faster. The first line gives the parameters stored: 9,480 against
// 37,384 dense, a quarter rather than a tenth, as a 32x1 unit of the 8-class output layer holds
// 32 rows for its 8 (a model this small pays for its units' padding). Generated data (examples/blobs.h); the first
// GPU when there is one, else the CPU (f32).
//
//   build/examples/pit-example-rigl [steps]
//
// Prints the loss, the sparsity and the units changed every 50 steps, then each layer's density
// and the held-out accuracy;
// exits non-zero when the layers are not at 90% sparsity or it did not learn (held-out accuracy
// under 85%).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "autograd/grad_mode.h"
#include "core/core.h"
#include "examples/blobs.h"
#include "ops/functional.h"
#include "trainer/nn/layers.h"
#include "trainer/optim/adamw.h"
#include "trainer/sparse/sparsifier.h"

using namespace pit;

namespace {

constexpr int64_t kFeatures = 64, kHidden = 512, kClasses = 8, kBatch = 256;

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 400;
  const Device device = cuda_available() ? Device::cuda() : Device::cpu();
  const examples::Blobs task(kFeatures, kClasses, 2.0, 4321);
  Generator init(7);
  nn::MLP::Options mo;
  mo.dim = kFeatures;
  mo.hidden = kHidden;
  mo.out = kClasses;
  mo.activation = nn::Activation::relu;
  nn::MLP model(mo, init);
  model.to(device);

  sparse_train::SparsifierOptions so;
  so.method = sparse_train::Method::rigl;
  so.unit = {32, 1};
  so.sparsity = 0.9;
  so.budget = sparse_train::Budget::erk;
  so.update_every = 50;
  so.update_end = steps * 3 / 4;
  so.seed = 1;
  sparse_train::Sparsifier sparsifier(model, so);  // before the optimizer takes the parameters
  optim::AdamW opt(optim::with_default_decay(model.named_parameters()), {.weight_decay = 0.0});
  std::printf("pit-example-rigl: %s; %lld parameters stored on %s, %d steps\n", sparsifier.describe().c_str(),
              static_cast<long long>(model.num_parameters()), device.str().c_str(), steps);

  int64_t changed = 0;  // units dropped and grown since the last line
  for (int step = 0; step < steps; ++step) {
    const examples::Blobs::Batch b = task.batch(kBatch, 1000 + static_cast<uint64_t>(step), device);
    sparsifier.before_step(step);
    const Variable loss = ops::cross_entropy(model(Variable(b.x)), b.labels);
    opt.zero_grad();
    loss.backward();
    opt.step(2e-3);
    changed += sparsifier.after_step(step, opt).changed;
    if ((step + 1) % 50 == 0 || step == 0) {
      std::printf("step %4d  loss %.4f  sparsity %.1f%%  units changed %lld\n", step + 1, loss.data().item<float>(),
                  100.0 * sparsifier.sparsity(), static_cast<long long>(changed));
      changed = 0;
    }
  }

  model.train(false);
  const NoGradGuard no_grad;
  const examples::Blobs::Batch test = task.batch(1024, 7, device);
  const double accuracy = 100.0 * task.accuracy(model(Variable(test.x)).data(), test.labels);
  for (const sparse_train::LayerSparsity& l : sparsifier.layers())
    std::printf("%s: %lld x %lld, %.1f%% of its weights kept\n", l.name.c_str(), static_cast<long long>(l.out),
                static_cast<long long>(l.in), 100.0 * l.density);
  std::printf("held-out accuracy %.1f%% at %.1f%% sparsity\n", accuracy, 100.0 * sparsifier.sparsity());
  if (std::abs(sparsifier.sparsity() - 0.9) > 0.01 || accuracy < 85.0) {
    std::fprintf(stderr, "pit-example-rigl: expected 90%% sparsity and at least 85%% held-out accuracy\n");
    return 1;
  }
  return 0;
}
