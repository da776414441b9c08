// Differentiable cross-entropy and dropout.
//
// cross_entropy returns f32 losses (f64 for f64 logits) whatever the logits' dtype: the per-row
// losses of kernels::cross_entropy, reduced. Backward saves the logits, the targets and the
// per-row log-sum-exp. The mean divides by the number of rows whose target is not ignore_index
// (at least 1, so that an all-ignored batch gives 0); that count is taken on the host for CPU
// targets and on the device for GPU targets, so a GPU batch never waits for the host.
//
// dropout draws (seed, offset) from the default generator, reserving numel values, and saves
// only the u8 mask for backward.
#include <algorithm>
#include <vector>

#include "autograd/node.h"
#include "core/random.h"
#include "ops/functional.h"
#include "ops/kernels.h"

namespace pit::ops {
namespace {

// Rows of `targets` whose target is not ignore_index, as a host number.
int64_t count_valid_host(const Tensor& targets, int64_t ignore_index) {
  const std::vector<int64_t> t = targets.to(DType::i64).to_vector<int64_t>();
  int64_t n = 0;
  for (const int64_t v : t) n += v != ignore_index ? 1 : 0;
  return n;
}

// max(1, rows whose target is not ignore_index) as a 0-d tensor of `dtype` on `device`, computed
// there: with integer targets, min(|t - ignore_index|, 1) is 1 exactly for the counted rows.
Tensor count_valid_device(const Tensor& targets, int64_t ignore_index, DType dtype, Device device) {
  const Tensor t = targets.to(device, dtype);
  const Tensor one = ones({}, dtype, device);
  const Tensor dist = kernels::unary(UnaryOp::abs,
                                     kernels::unary(UnaryOp::add_scalar, t,
                                                    -static_cast<double>(ignore_index)));
  const Tensor count = kernels::sum(kernels::binary(BinaryOp::minimum, dist, one));
  return kernels::binary(BinaryOp::maximum, count, one);
}

}  // namespace

Variable cross_entropy(const Variable& logits, const Tensor& targets, int64_t ignore_index,
                       double label_smoothing, Reduction reduction) {
  const kernels::CrossEntropyResult r =
      kernels::cross_entropy(logits.data(), targets, ignore_index, label_smoothing);
  const Shape loss_shape = r.loss.shape();
  Tensor out;
  double scale = 1.0;  // mean over CPU targets: 1 / count
  Tensor denom;        // mean over GPU targets: max(1, count) on the device
  switch (reduction) {
    case Reduction::none:
      out = r.loss;
      break;
    case Reduction::sum:
      out = kernels::sum(r.loss);
      break;
    case Reduction::mean:
      if (targets.device().is_cpu()) {
        scale = 1.0 / static_cast<double>(std::max<int64_t>(1, count_valid_host(targets, ignore_index)));
        out = kernels::unary(UnaryOp::mul_scalar, kernels::sum(r.loss), scale);
      } else {
        denom = count_valid_device(targets, ignore_index, r.loss.dtype(), r.loss.device());
        out = kernels::binary(BinaryOp::div, kernels::sum(r.loss), denom);
      }
      break;
  }
  if (!needs_grad({logits})) return Variable(out);
  const Tensor x = logits.data();
  const kernels::CrossEntropyResult saved{Tensor(), r.lse};
  return record("cross_entropy", {logits}, out, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor per_row;  // d(output)/d(loss_r) * g, shaped like the per-row losses
    switch (reduction) {
      case Reduction::none:
        per_row = g;
        break;
      case Reduction::sum:
        per_row = g.expand(loss_shape);
        break;
      case Reduction::mean:
        per_row = (denom.defined() ? kernels::binary(BinaryOp::div, g, denom)
                                   : kernels::unary(UnaryOp::mul_scalar, g, scale))
                      .expand(loss_shape);
        break;
    }
    return {kernels::cross_entropy_backward(per_row, x, targets, saved, ignore_index,
                                            label_smoothing)};
  });
}

Variable dropout(const Variable& x, double p, bool training) {
  PIT_CHECK(p >= 0.0 && p < 1.0, "dropout: p must be in [0, 1), got ", p);
  if (!training || p == 0.0) return x;
  Generator& gen = default_generator();
  const auto [seed, offset] = gen.draw(static_cast<uint64_t>(x.numel()));
  kernels::DropoutResult r = kernels::dropout(x.data(), p, seed, offset);
  if (!needs_grad({x})) return Variable(r.y);
  const Tensor mask = r.mask;
  return record("dropout", {x}, r.y, [=](const Tensor& g) -> std::vector<Tensor> {
    return {kernels::dropout_backward(g, mask, p)};
  });
}

}  // namespace pit::ops
