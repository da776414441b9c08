#include "trainer/train/data_parallel.h"

#include "ops/kernels.h"

namespace pit::train {
namespace {

// All-reduces one bucket: the gradients flattened into one buffer, averaged, copied back.
void reduce_bucket(std::vector<Tensor>& grads, Communicator& comm) {
  if (grads.empty()) return;
  std::vector<Tensor> flat;
  for (const Tensor& g : grads) flat.push_back(g.contiguous().view({-1}));
  Tensor buffer = flat.size() == 1 ? flat.front().clone() : kernels::cat(flat, 0);
  comm.all_reduce(buffer, ReduceOp::mean);
  int64_t at = 0;
  for (Tensor& g : grads) {
    Tensor target = g;  // a handle: copy_ fills the gradient's storage
    target.copy_(buffer.slice(0, at, at + g.numel()).view(g.shape()));
    at += g.numel();
  }
  grads.clear();
}

}  // namespace

void average_gradients(const std::vector<Variable>& params, Communicator& comm, int64_t bucket_elements) {
  if (comm.size() == 1) return;
  std::vector<Tensor> bucket;
  int64_t in_bucket = 0;
  for (const Variable& p : params) {
    const Tensor& g = p.grad();
    if (!g.defined()) continue;
    const bool fits = bucket.empty() || (in_bucket + g.numel() <= bucket_elements && g.dtype() == bucket.front().dtype() &&
                                         g.device() == bucket.front().device());
    if (!fits) {
      reduce_bucket(bucket, comm);
      in_bucket = 0;
    }
    bucket.push_back(g);
    in_bucket += g.numel();
  }
  reduce_bucket(bucket, comm);
}

}  // namespace pit::train
