#include "trainer/train/evaluate.h"

#include "autograd/grad_mode.h"
#include "ops/functional.h"
#include "ops/kernels.h"

namespace pit::train {
namespace {

Variable flat_logits(const Variable& logits) {
  const int64_t classes = logits.size(-1);
  return ops::reshape(logits, {logits.numel() / classes, classes});
}

}  // namespace

Variable training_loss(const Variable& logits, const Tensor& targets) {
  return ops::cross_entropy(flat_logits(logits), targets.reshape({-1}));
}

EvalResult evaluate(nn::Module& model, data::Loader& loader, Device device, int64_t max_batches) {
  const bool was_training = model.is_training();
  model.train(false);
  NoGradGuard no_grad;
  loader.restart();
  EvalResult r;
  double loss_sum = 0;
  int64_t correct = 0;
  bool classifier = false;
  while (!loader.exhausted() && (max_batches <= 0 || r.batches < max_batches)) {
    const data::Batch b = loader.next();
    const Tensor targets = b.targets.to(device).reshape({-1});
    const Variable logits = flat_logits(model(Variable(b.inputs.to(device))));
    loss_sum += ops::cross_entropy(logits, targets, -100, 0.0, ops::Reduction::sum).data().item<double>();
    r.count += targets.numel();
    classifier = b.targets.dim() == 1;
    if (classifier) {
      const std::vector<int64_t> pred = kernels::max(logits.data(), 1).indices.to_vector<int64_t>();
      const std::vector<int64_t> want = b.targets.to_vector<int64_t>();
      for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == want[i] ? 1 : 0;
    }
    ++r.batches;
  }
  model.train(was_training);
  if (r.count > 0) {
    r.loss = loss_sum / static_cast<double>(r.count);
    if (classifier) r.accuracy = static_cast<double>(correct) / static_cast<double>(r.count);
  }
  return r;
}

}  // namespace pit::train
