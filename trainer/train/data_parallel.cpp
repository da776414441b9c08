#include "trainer/train/data_parallel.h"

#include "ops/kernels.h"

namespace pit::train {

GradientAverager::GradientAverager(const std::vector<Variable>& params, Communicator& comm, int64_t bucket_elements,
                                   int divide_by)
    : params_(params),
      comm_(comm),
      scale_(1.0 / (divide_by > 0 ? divide_by : comm.size())),
      active_(comm.size() > 1 || divide_by > 1),
      mean_(divide_by <= 0 || divide_by == comm.size()),
      alone_(comm.size() == 1),
      alive_(std::make_shared<bool>(true)) {
  if (!active_ || alone_) return;
  bucket_of_.resize(params_.size());
  final_.assign(params_.size(), 0);
  grads_.resize(params_.size());
  // Last parameters first: backward finishes the last layers' gradients first.
  int64_t in_bucket = 0;
  for (size_t i = params_.size(); i-- > 0;) {
    const int64_t n = params_[i].numel();
    if (buckets_.empty() || (in_bucket + n > bucket_elements && !buckets_.back().params.empty())) {
      buckets_.emplace_back();
      in_bucket = 0;
    }
    buckets_.back().params.push_back(i);
    bucket_of_[i] = buckets_.size() - 1;
    in_bucket += n;
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    std::weak_ptr<bool> alive = alive_;
    params_[i].register_hook([this, i, alive](Tensor& g) {
      if (alive.expired()) return;
      grads_[i] = g;  // the engine stores this tensor (or adds it) into .grad after the hooks
      ready(i);
    });
  }
}

void GradientAverager::ready(size_t param) {
  final_[param] = 1;
  // Start every bucket that is complete, in order.
  while (next_ < buckets_.size()) {
    Bucket& b = buckets_[next_];
    for (const size_t i : b.params)
      if (!final_[i]) return;
    start(b);
    ++next_;
  }
}

void GradientAverager::start(Bucket& b) {
  std::vector<Tensor> flat;
  for (const size_t i : b.params) {
    const Variable& p = params_[i];
    // A parameter without a gradient this step (unused on this rank) counts as zeros.
    const Tensor g = final_[i] && grads_[i].defined() ? grads_[i] : zeros(p.shape(), p.dtype(), p.device());
    flat.push_back(g.contiguous().view({-1}));
  }
  b.buffer = flat.size() == 1 ? flat.front().clone() : kernels::cat(flat, 0);
  b.request = comm_.all_reduce_start(b.buffer, mean_ ? ReduceOp::mean : ReduceOp::sum);
}

void GradientAverager::finish() {
  if (!active_) return;
  if (alone_) {  // the sum over one rank is the gradient itself
    for (Variable& p : params_) {
      // As with several ranks, a parameter without a gradient this step gets zeros.
      p.set_grad(p.grad().defined() ? kernels::unary(UnaryOp::mul_scalar, p.grad(), scale_)
                                    : zeros(p.shape(), p.dtype(), p.device()));
    }
    return;
  }
  for (; next_ < buckets_.size(); ++next_) start(buckets_[next_]);
  for (Bucket& b : buckets_) {
    b.request->wait();
    if (!mean_) b.buffer = kernels::unary(UnaryOp::mul_scalar, b.buffer, scale_);
    int64_t at = 0;
    for (const size_t i : b.params) {
      Variable p = params_[i];
      const Tensor avg = b.buffer.slice(0, at, at + p.numel()).view(p.shape());
      at += p.numel();
      if (p.grad().defined()) {
        Tensor target = p.grad();  // a handle: copy_ fills the gradient's storage
        target.copy_(avg);
      } else {
        p.set_grad(avg.clone());
      }
    }
    b.request.reset();
    b.buffer = Tensor();
  }
  next_ = 0;
  final_.assign(params_.size(), 0);
  for (Tensor& g : grads_) g = Tensor();
}

}  // namespace pit::train
